import { createHash, randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { PutRecordBatchCommand } from '@aws-sdk/client-firehose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ingestBatch } from '../../src/capture/ingest/ingestBatch.js';
import { ObjectStoreStagingSink } from '../../src/capture/ingest/ObjectStoreStagingSink.js';
import { cosmosDocumentChanges } from '../../src/capture/ingest/sources.js';
import { loadConfig } from '../../src/core/config.js';
import { stagingKey } from '../../src/core/staging/layout.js';
import { runCompaction } from '../../src/jobs/runCompaction.js';
import { StoreError } from '../../src/ports/store/errors.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { getBytes, listAll } from '../../src/ports/store/ObjectStore.js';
import { FirehoseDeliveryError } from '../../stream-ingest/errors.js';
import { type FirehoseSender, FirehoseStagingSink, firehoseBatches, putRecordBatches } from '../../stream-ingest/firehose.js';
import { ingestStreamEvent } from '../../stream-ingest/handler.js';
import { quietTelemetry } from '../../tools/quietTelemetry.js';
import { chatItem, cosmosDocument, dynamodbRecord, stagedRecord } from '../kit/factories.js';
import { readParquetRows } from '../kit/readParquet.js';
import { tempDir } from '../kit/tempDir.js';

type Answer = Awaited<ReturnType<FirehoseSender['send']>> | Error;

/** Firehose has no local stand-in: a stub that records every PutRecordBatch and answers from a script. */
class FirehoseStub implements FirehoseSender {
  readonly calls: string[][] = [];
  constructor(private readonly script: ((records: string[]) => Answer)[] = []) {}
  async send(command: PutRecordBatchCommand) {
    expect(command.input.DeliveryStreamName).toBe('makoto-staging');
    const records = (command.input.Records ?? []).map((r) => Buffer.from(r.Data as Uint8Array).toString('utf8'));
    this.calls.push(records);
    const answer = this.script[this.calls.length - 1]?.(records) ?? {
      FailedPutCount: 0,
      RequestResponses: records.map(() => ({ RecordId: 'r' })),
    };
    if (answer instanceof Error) throw answer;
    return answer;
  }
}
const NO_WAIT = { retry: { attempts: 4, baseDelayMs: 1, maxDelayMs: 2, deadlineMs: 5_000 }, sleep: async () => {} };
const record = (i: number, bytes = 10) => Buffer.from(`${String(i).padStart(bytes - 1, '0')}\n`);
const failSome = (failed: number[]) => (records: string[]) => ({
  FailedPutCount: failed.length,
  RequestResponses: records.map((_, i) =>
    failed.includes(i) ? { ErrorCode: 'ServiceUnavailableException', ErrorMessage: 'Slow down.' } : { RecordId: `r${i}` },
  ),
});

describe('Firehose batching', () => {
  it('splits at 500 records per call, keeping order', async () => {
    const stub = new FirehoseStub();
    const records = Array.from({ length: 1201 }, (_, i) => record(i));
    const { calls } = await putRecordBatches(stub, 'makoto-staging', records, NO_WAIT);
    expect(calls).toBe(3);
    expect(stub.calls.map((c) => c.length)).toStrictEqual([500, 500, 201]);
    expect(stub.calls.flat()).toStrictEqual(records.map((r) => r.toString()));
  });

  it('splits at 4 MiB per call and refuses a record over 1,000 KiB', () => {
    const big = Array.from({ length: 10 }, (_, i) => record(i, 900 * 1024));
    expect(firehoseBatches(big).map((b) => b.length)).toStrictEqual([4, 4, 2]);
    expect(() => firehoseBatches([record(1, 1000 * 1024 + 1)])).toThrow(StoreError);
    expect(firehoseBatches([record(1, 1000 * 1024)]).length).toBe(1);
  });

  it('sends again only the entries a call reported as failed', async () => {
    const stub = new FirehoseStub([failSome([1, 3]), failSome([0])]);
    const records = Array.from({ length: 5 }, (_, i) => record(i));
    await putRecordBatches(stub, 'makoto-staging', records, NO_WAIT);
    expect(stub.calls).toStrictEqual([records.map(String), [String(records[1]), String(records[3])], [String(records[1])]]);
  });

  it('retries a throttled call whole, then gives up with FirehoseDeliveryError when entries keep failing', async () => {
    const throttled = Object.assign(new Error('Rate exceeded'), {
      name: 'ServiceUnavailableException',
      $metadata: { httpStatusCode: 503 },
    });
    const stub = new FirehoseStub([() => throttled, failSome([0]), failSome([0]), failSome([0])]);
    const error = await putRecordBatches(stub, 'makoto-staging', [record(1), record(2)], NO_WAIT).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FirehoseDeliveryError);
    expect((error as Error).message).toBe('1 of 2 records refused by makoto-staging: ServiceUnavailableException');
    expect(stub.calls.map((c) => c.length)).toStrictEqual([2, 2, 1, 1]);
  });

  it('does not retry an error that will not go away (access denied)', async () => {
    const denied = Object.assign(new Error('not authorized'), {
      name: 'AccessDeniedException',
      $metadata: { httpStatusCode: 400 },
    });
    const stub = new FirehoseStub([() => denied]);
    const error = await putRecordBatches(stub, 'makoto-staging', [record(1)], NO_WAIT).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).not.toBeInstanceOf(FirehoseDeliveryError);
    expect((error as Error).message).toBe('PutRecordBatch to makoto-staging failed: AccessDeniedException (HTTP 400)');
    expect(stub.calls.length).toBe(1);
  });
});

describe('Firehose staging sink', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    await dir.cleanup();
  });
  const denied = () =>
    Object.assign(new Error('not authorized'), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 400 } });

  it('sends one record per staged record: byte for byte the lines the object-store sink gzips', async () => {
    const key = stagingKey('acme', '2025-08-11', 'ddb-9eb1d3542306_101_102');
    const records = [
      stagedRecord({ message_id: 'm1', source_seq: '101', content: 'two\nlines, "quoted", 秘密' }),
      stagedRecord({ message_id: 'm2', source_seq: '102', content: null, op: 'delete' }),
    ];
    const stub = new FirehoseStub();
    const store = new LocalStore(join(dir.path, 'lake'));

    await new FirehoseStagingSink(stub, 'makoto-staging', NO_WAIT).put(key, records);
    await new ObjectStoreStagingSink(store).put(key, records);

    expect(new FirehoseStagingSink(stub, 'makoto-staging').location).toBe('firehose:makoto-staging');
    expect(stub.calls).toStrictEqual([records.map((r) => `${JSON.stringify(r)}\n`)]);
    expect(gunzipSync(await getBytes(store, key)).toString('utf8')).toBe(stub.calls.flat().join(''));
  });

  it('takes only the tenant-days of a batch: quarantine and pending deletes are written to the store', async () => {
    const store = new LocalStore(join(dir.path, 'lake'));
    const stub = new FirehoseStub();
    const { changes, batchId } = cosmosDocumentChanges([
      cosmosDocument(11, { id: 'm1' }),
      { metadata: { operationType: 'delete', lsn: 12, crts: 1754881200, id: 'ghost', partitionKey: { tenantId: 'acme' } } },
      cosmosDocument(13, { id: 'm3', tenantId: '' }),
    ]);
    const now = Date.parse('2025-08-11T03:00:00Z');

    const result = await ingestBatch(store, changes, {
      source: 'cosmos',
      batchId,
      now,
      sink: new FirehoseStagingSink(stub, 'makoto-staging', NO_WAIT),
    });

    const staging = stagingKey('acme', '2025-08-11', `${batchId}_11_11`);
    const pending = `pending/deletes/messages/tenant_id=acme/${batchId}_12_12.ndjson.gz`;
    const quarantine = `quarantine/ingest/source=cosmos/dt=2025-08-11/${batchId}_13_13.ndjson.gz`;
    expect([result.received, result.staged, result.waiting, result.quarantined, result.failed]).toStrictEqual([3, 2, 1, 1, []]);
    expect(result.written).toStrictEqual([
      { key: staging, records: 1, firstIndex: 0 },
      { key: pending, records: 1, firstIndex: 1 },
      { key: quarantine, records: 1, firstIndex: 2 },
    ]);
    const sent = stub.calls.flat().map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(sent.map((r) => [r.tenant_id, r.dt, r.message_id, r.source_seq, r.op, r.ingested_at])).toStrictEqual([
      ['acme', '2025-08-11', 'm1', '11', 'upsert', now],
    ]);
    expect((await listAll(store, '')).map((o) => o.key)).toStrictEqual([pending, quarantine]);
    const pendingLines = gunzipSync(await getBytes(store, pending))
      .toString('utf8')
      .trim()
      .split('\n');
    expect(pendingLines.map((l) => JSON.parse(l).message_id)).toStrictEqual(['ghost']);
  });

  it('a tenant-day Firehose refuses is a failed group (the retry point); the others are still written', async () => {
    const store = new LocalStore(join(dir.path, 'lake'));
    const stub = new FirehoseStub([denied]);
    const { changes, batchId } = cosmosDocumentChanges([cosmosDocument(21, { id: 'm1' }), cosmosDocument(22, { tenantId: '' })]);

    const result = await ingestBatch(store, changes, {
      source: 'cosmos',
      batchId,
      now: Date.parse('2025-08-11T03:00:00Z'),
      sink: new FirehoseStagingSink(stub, 'makoto-staging', NO_WAIT),
    });

    const quarantine = `quarantine/ingest/source=cosmos/dt=2025-08-11/${batchId}_22_22.ndjson.gz`;
    expect(result.written).toStrictEqual([{ key: quarantine, records: 1, firstIndex: 1 }]);
    expect(result.failed.map((f) => [f.key, f.records, f.firstIndex, (f.error as Error).message])).toStrictEqual([
      [
        stagingKey('acme', '2025-08-11', `${batchId}_21_21`),
        1,
        0,
        'PutRecordBatch to makoto-staging failed: AccessDeniedException (HTTP 400)',
      ],
    ]);
    expect(result.failed[0]?.error).toBeInstanceOf(StoreError);
    expect([result.staged, result.quarantined, result.firstFailedIndex]).toStrictEqual([0, 1, 0]);
    expect(stub.calls.length).toBe(1);
    expect((await listAll(store, '')).map((o) => o.key)).toStrictEqual([quarantine]);
  });
});

describe('Firehose transport end to end (stub delivery stream → staging layout → compactor)', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    await dir.cleanup();
  });

  it('sends one NDJSON line per staged record and quarantines through the bucket; the compactor reads what Firehose writes', async () => {
    const store = new LocalStore(join(dir.path, 'lake'));
    const stub = new FirehoseStub();
    const firehose = new FirehoseStagingSink(stub, 'makoto-staging', NO_WAIT);
    const config = loadConfig({ TEMP_DIR: dir.path, DUCKDB_THREADS: '1', DUCKDB_MEMORY_LIMIT: '256MB' });
    const now = Date.parse('2025-08-12T00:00:00Z');
    const event = {
      Records: [
        dynamodbRecord({ seq: 101, item: chatItem({ messageId: 'm1', content: 'one' }) }),
        dynamodbRecord({ seq: 102, item: chatItem({ tenantId: 'beta', messageId: 'b1', content: 'beta' }) }),
        dynamodbRecord({ seq: 103, item: chatItem({ messageId: 'm1', content: 'one, edited' }), event: 'MODIFY' }),
        dynamodbRecord({ seq: 104, item: chatItem({ messageId: 'm2', content: 'gone' }) }),
        dynamodbRecord({ seq: 105, item: chatItem({ messageId: 'm2', content: 'gone' }), event: 'REMOVE' }),
        dynamodbRecord({ seq: 106, item: chatItem({ tenantId: '' }) }),
      ],
    };

    const answer = await ingestStreamEvent(event as never, {
      store,
      sink: firehose,
      config,
      now: () => now,
      ...quietTelemetry(),
    });

    expect(answer).toStrictEqual({ batchItemFailures: [] });
    const sent = stub.calls.flat();
    expect(sent.every((line) => line.endsWith('\n') && !line.slice(0, -1).includes('\n'))).toBe(true);
    const parsed = sent.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(parsed.map((r) => [r.tenant_id, r.dt, r.message_id, r.source_seq, r.op])).toStrictEqual([
      ['acme', '2025-08-11', 'm1', '101', 'upsert'],
      ['acme', '2025-08-11', 'm1', '103', 'upsert'],
      ['acme', '2025-08-11', 'm2', '104', 'upsert'],
      ['acme', '2025-08-11', 'm2', '105', 'delete'],
      ['beta', '2025-08-11', 'b1', '102', 'upsert'],
    ]);
    // Nothing staged in the bucket directly; the bad record went to quarantine there.
    expect((await listAll(store, '')).map((o) => o.key)).toStrictEqual([
      `quarantine/ingest/source=dynamodb/dt=2025-08-12/ddb-${sha12(String(event.Records[0]?.eventSourceARN))}_106_106.ndjson.gz`,
    ]);

    // What the delivery stream writes: per dynamic partition (tenant_id, dt from each record), the records
    // of a buffer concatenated and gzipped, under Firehose's own object names with the .ndjson.gz extension.
    // A re-delivered batch arrives twice: the compactor must keep one version of each message.
    for (const copy of [1, 2]) {
      for (const tenant of ['acme', 'beta']) {
        const lines = sent.filter((l) => JSON.parse(l).tenant_id === tenant);
        const name = `makoto-staging-${copy}-2025-08-11-03-00-00-${randomUUID()}.ndjson.gz`;
        await store.putBytes(`staging/messages/tenant_id=${tenant}/dt=2025-08-11/${name}`, gzipSync(lines.join('')));
      }
    }
    const summary = await runCompaction({ store, config, date: '2025-08-11', tenants: ['acme', 'beta'] });
    expect(summary.ok).toBe(true);
    const parquet = async (tenant: string) => {
      const folder = join(dir.path, 'lake', `analytics/messages/tenant_id=${tenant}/dt=2025-08-11`);
      return (await readdir(folder)).map((f) => join(folder, f));
    };
    const pick = (rows: Record<string, unknown>[]) => rows.map((r) => [r.message_id, r.content, r.source_seq]);
    expect(pick(await readParquetRows(await parquet('acme'), { orderBy: 'message_id' }))).toStrictEqual([
      ['m1', 'one, edited', '103'],
    ]);
    expect(pick(await readParquetRows(await parquet('beta'), { orderBy: 'message_id' }))).toStrictEqual([['b1', 'beta', '102']]);
  });
});

function sha12(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}
