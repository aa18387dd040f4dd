import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ingestBatch } from '../../src/capture/ingest/ingestBatch.js';
import { dynamodbEventChanges } from '../../src/capture/ingest/sources.js';
import type { StagedRecord } from '../../src/core/schema/messageSchema.js';
import { stagingKey } from '../../src/core/staging/layout.js';
import { gzipNdjson } from '../../src/core/staging/ndjson.js';
import { type CompactionDeps, compactPartition, DEFAULT_COMPACTION_SETTINGS } from '../../src/engine/compactPartition.js';
import { compactTenants } from '../../src/engine/compactTenants.js';
import { readManifest } from '../../src/lake/manifest.js';
import { DeltaTable } from '../../src/lake/table/deltaTable.js';
import { openDuckDb } from '../../src/ports/duckdb/openDuckDb.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { getBytes, listAll, type ObjectStore } from '../../src/ports/store/ObjectStore.js';
import { chatItem, dynamodbRecord, stagedRecord } from '../kit/factories.js';
import { currentFiles, parquetPhysicalSchema, readParquetRows } from '../kit/readParquet.js';
import { tempDir } from '../kit/tempDir.js';

const DATE = '2025-08-11';
const NOW = Date.parse('2025-08-11T17:00:00Z');

let dir: Awaited<ReturnType<typeof tempDir>>;
let db: DuckDBInstance;
let store: LocalStore;
let deps: CompactionDeps;

beforeAll(async () => {
  dir = await tempDir();
  db = await openDuckDb({ memoryLimit: '1GB', threads: 2, workDirectory: join(dir.path, 'duck') });
});
afterAll(async () => {
  db.closeSync();
  await dir.cleanup();
});
let run = 0;
beforeEach(() => {
  run++;
  store = new LocalStore(join(dir.path, `data-${run}`));
  deps = { store, db, workDirectory: join(dir.path, `work-${run}`), now: () => NOW };
});

async function ingest(records: ReturnType<typeof dynamodbRecord>[], now = NOW - 3600_000): Promise<void> {
  const { changes, batchId } = dynamodbEventChanges({ Records: records });
  const result = await ingestBatch(store, changes, { source: 'dynamodb', batchId, now });
  expect(result.failed).toStrictEqual([]);
}

async function lake(tenant: string, date = DATE): Promise<Record<string, unknown>[]> {
  return readParquetRows(await currentFiles(store, tenant, date), { orderBy: 'message_id' });
}

const row = (overrides: Record<string, unknown>) => ({
  message_id: 'm1',
  conversation_id: 'c1',
  sender_id: 'u1',
  role: 'user',
  content: 'こんにちは',
  created_at: '2025-08-11T01:00:00.000Z',
  updated_at: null,
  attributes: '{}',
  source: 'dynamodb',
  source_seq: '1',
  ingested_at: '2025-08-11T16:00:00.000Z',
  ...overrides,
});

describe('compactPartition', () => {
  it('keeps the latest version, drops user deletes, keeps TTL expiries, removes duplicates', async () => {
    await ingest([
      dynamodbRecord({ seq: 9, item: chatItem({ messageId: 'm1', content: 'v1' }) }),
      dynamodbRecord({ seq: 10, item: chatItem({ messageId: 'm1', content: 'v2 編集', updatedAt: '2025-08-11T02:00:00Z' }) }),
      dynamodbRecord({ seq: 11, item: chatItem({ messageId: 'm2', content: 'bye' }) }),
      dynamodbRecord({ seq: 12, item: chatItem({ messageId: 'm2', content: 'bye edited' }) }),
      dynamodbRecord({ seq: 13, event: 'REMOVE', item: chatItem({ messageId: 'm2', content: 'bye edited' }) }),
      dynamodbRecord({ seq: 14, item: chatItem({ messageId: 'm3', content: '🍣', ttl: 1754874000 }) }),
      dynamodbRecord({
        seq: 15,
        event: 'REMOVE',
        ttl: true,
        item: chatItem({ messageId: 'm3', content: '🍣', ttl: 1754874000 }),
      }),
    ]);
    // a retried delivery of the first two records (same positions, later ingestion)
    await ingest([dynamodbRecord({ seq: 9, item: chatItem({ messageId: 'm1', content: 'v1' }) })], NOW - 1800_000);

    const result = await compactPartition(deps, 'acme', DATE);
    expect({ ...result, runId: 'x', durationMs: 0, timingsMs: {} }).toStrictEqual({
      tenant: 'acme',
      date: DATE,
      runId: 'x',
      status: 'compacted',
      inputs: 2,
      rowsRead: 8,
      rowsCarried: 0,
      deletesRemembered: 0,
      rowsRejected: 0,
      objectsRejected: 0,
      duplicatesRemoved: 1,
      versionsSuperseded: 4,
      deletesApplied: 1,
      rowsWritten: 2,
      outputFiles: [`analytics/messages/tenant_id=acme/dt=2025-08-11/part-0-${result.runId}.parquet`],
      bytesWritten: result.bytesWritten,
      durationMs: 0,
      timingsMs: {},
    });
    expect(await lake('acme')).toStrictEqual([
      row({ content: 'v2 編集', source_seq: '10', updated_at: '2025-08-11T02:00:00.000Z' }),
      row({ message_id: 'm3', content: '🍣', source_seq: '15', attributes: '{"ttl":1754874000}' }),
    ]);
  });

  it('orders feed positions as numbers, whatever order the batches arrive in', async () => {
    await ingest([dynamodbRecord({ seq: '100000000000000000000010', item: chatItem({ content: 'newest' }) })]);
    await ingest([dynamodbRecord({ seq: '99999999999999999999999', item: chatItem({ content: 'older' }) })]);
    await compactPartition(deps, 'acme', DATE);
    expect((await lake('acme')).map((r) => [r.content, r.source_seq])).toStrictEqual([['newest', '100000000000000000000010']]);
  });

  it('splits on the JST day boundary: 15:00Z belongs to the next day', async () => {
    await ingest([
      dynamodbRecord({ seq: 1, item: chatItem({ messageId: 'late', createdAt: '2025-08-10T14:59:59.999Z' }) }),
      dynamodbRecord({ seq: 2, item: chatItem({ messageId: 'early', createdAt: '2025-08-10T15:00:00.000Z' }) }),
    ]);
    await compactPartition(deps, 'acme', '2025-08-10');
    await compactPartition(deps, 'acme', '2025-08-11');
    expect((await lake('acme', '2025-08-10')).map((r) => [r.message_id, r.created_at])).toStrictEqual([
      ['late', '2025-08-10T14:59:59.999Z'],
    ]);
    expect((await lake('acme', '2025-08-11')).map((r) => [r.message_id, r.created_at])).toStrictEqual([
      ['early', '2025-08-10T15:00:00.000Z'],
    ]);
  });

  it('gives the same rows when run again, never writes a key twice, and the new version names only its own parts', async () => {
    await ingest(
      Array.from({ length: 30 }, (_, i) =>
        dynamodbRecord({ seq: i + 1, item: chatItem({ messageId: `m${i}`, content: randomBytes(1500).toString('base64') }) }),
      ),
    );
    // one thread: with several, DuckDB's writers roll over in parallel and the file count varies
    const oneThread = await openDuckDb({ memoryLimit: '256MB', threads: 1, workDirectory: join(dir.path, 'duck1') });
    const small = {
      ...deps,
      db: oneThread,
      settings: { ...DEFAULT_COMPACTION_SETTINGS, targetFileBytes: 20_000, rowGroupSize: 5 },
    };
    const first = await compactPartition(small, 'acme', DATE).finally(() => oneThread.closeSync());
    // 30 rows of ~2 KB in row groups of 5: DuckDB rolls over to a new file once the file passes ~20 KB
    expect(first.outputFiles.map((k) => k.slice(k.lastIndexOf('/') + 1))).toStrictEqual([
      `part-0-${first.runId}.parquet`,
      `part-1-${first.runId}.parquet`,
    ]);
    const rows = await lake('acme');
    expect(rows.length).toBe(30);

    // the re-run merges the 30 published rows with the same 30 staging rows: each published copy is a duplicate
    const second = await compactPartition(deps, 'acme', DATE);
    expect([second.rowsRead, second.rowsCarried, second.duplicatesRemoved, second.rowsWritten]).toStrictEqual([30, 30, 30, 30]);
    // its part is a new key of its own; the first run's parts stay (unchanged) until vacuum, named by version 0 only
    expect(second.outputFiles).toStrictEqual([`analytics/messages/tenant_id=acme/dt=2025-08-11/part-0-${second.runId}.parquet`]);
    expect((await listAll(store, 'analytics/messages/tenant_id=')).map((o) => o.key).sort()).toStrictEqual(
      [...first.outputFiles, ...second.outputFiles].sort(),
    );
    const table = new DeltaTable(store, {});
    const current = (await table.snapshot()).files;
    expect([...current.values()].map((f) => `analytics/messages/${f.path}`)).toStrictEqual(second.outputFiles);
    expect([...(await table.snapshot({ version: 0 })).files.values()].map((f) => `analytics/messages/${f.path}`)).toStrictEqual(
      first.outputFiles,
    );
    expect(await lake('acme')).toStrictEqual(rows);
    const manifest = await readManifest(store, 'acme', DATE);
    expect([
      manifest?.run_id,
      manifest?.previous_run_id,
      manifest?.rows_written,
      manifest?.outputs.map((o) => o.key),
    ]).toStrictEqual([second.runId, first.runId, 30, second.outputFiles]);
  });

  it('writes INT64 millisecond timestamps and plain UTF-8 strings, snappy by default', async () => {
    await ingest([dynamodbRecord({ seq: 1 })]);
    const result = await compactPartition(deps, 'acme', DATE);
    const schema = await parquetPhysicalSchema(join(store.root, result.outputFiles[0] as string));
    const ts =
      'INT64 | TIMESTAMP_MILLIS | TimestampType(isAdjustedToUTC=0, unit=TimeUnit(MILLIS=MilliSeconds(), MICROS=<null>, NANOS=<null>))';
    const text = 'BYTE_ARRAY | UTF8';
    expect(schema).toStrictEqual({
      message_id: text,
      conversation_id: text,
      sender_id: text,
      role: text,
      content: text,
      created_at: ts,
      updated_at: ts,
      attributes: text,
      source: text,
      source_seq: text,
      ingested_at: ts,
    });
  });

  it('quarantines malformed lines, truncated and empty objects, and rows of the wrong partition, keeping the rest', async () => {
    const line = (r: StagedRecord) => JSON.stringify(r);
    const good = stagedRecord({ message_id: 'good', source_seq: '1' });
    await store.putBytes(
      stagingKey('acme', DATE, 'mixed'),
      gzipSync(
        `${line(good)}\n{"message_id": "broken"\n${line(stagedRecord({ message_id: 'typed', created_at: 'noon' as unknown as number }))}\n`,
      ),
    );
    const whole = gzipSync(
      `${line(stagedRecord({ message_id: 'before-cut', source_seq: '2' }))}\n${line(stagedRecord({ message_id: 'cut', source_seq: '3' }))}\n`,
    );
    await store.putBytes(stagingKey('acme', DATE, 'truncated'), whole.subarray(0, whole.length - 12));
    await store.putBytes(stagingKey('acme', DATE, 'empty'), Buffer.alloc(0));
    await store.putBytes(
      stagingKey('acme', DATE, 'wrong'),
      gzipNdjson([
        stagedRecord({ message_id: 'other', tenant_id: 'globex', source_seq: '4' }),
        stagedRecord({ message_id: 'ok2', source_seq: '5' }),
      ]),
    );

    const result = await compactPartition(deps, 'acme', DATE);
    expect((await lake('acme')).map((r) => r.message_id)).toStrictEqual(['before-cut', 'good', 'ok2']);
    expect([result.rowsRejected, result.objectsRejected, result.rowsWritten]).toStrictEqual([3, 2, 3]);
    const quarantine = gunzipSync(
      await getBytes(store, `quarantine/compaction/tenant_id=acme/dt=${DATE}/${result.runId}.ndjson.gz`),
    )
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const key = (name: string) => `staging/messages/tenant_id=acme/dt=${DATE}/${name}.ndjson.gz`;
    expect(quarantine.map((q) => [q.object_key, q.line ?? null, q.reason])).toStrictEqual([
      [key('empty'), null, 'empty object (0 bytes, not gzip)'],
      [key('mixed'), 2, expect.stringMatching(/^malformed JSON: /)],
      [key('mixed'), 3, 'field created_at must be an integer, got "noon"'],
      [key('truncated'), null, 'unreadable gzip after 1 complete lines: unexpected end of file'],
      [key('wrong'), null, 'tenant_id globex does not match the partition'],
    ]);
    expect(quarantine[4].raw).toMatchObject({ message_id: 'other', tenant_id: 'globex' });
  });

  it('keeps one row of a delivery written twice into one staging object, and counts the other as a duplicate', async () => {
    const copy = stagedRecord({ message_id: 'twice', content: 'same', source_seq: '7' });
    await store.putBytes(
      stagingKey('acme', DATE, 'copies'),
      gzipNdjson([copy, stagedRecord({ message_id: 'once', source_seq: '8' }), copy, copy]),
    );

    const result = await compactPartition(deps, 'acme', DATE);

    expect([result.rowsRead, result.rowsWritten, result.duplicatesRemoved, result.versionsSuperseded]).toStrictEqual([
      4, 2, 2, 0,
    ]);
    expect((await lake('acme')).map((r) => [r.message_id, r.content, r.source_seq])).toStrictEqual([
      ['once', 'こんにちは', '8'],
      ['twice', 'same', '7'],
    ]);
  });

  it('leaves a compacted partition alone when its staging is gone', async () => {
    await ingest([dynamodbRecord({ seq: 1 })]);
    await compactPartition(deps, 'acme', DATE);
    for (const o of await listAll(store, 'staging/')) await store.delete(o.key);
    const result = await compactPartition(deps, 'acme', DATE);
    expect(result.status).toBe('no-input');
    expect((await lake('acme')).length).toBe(1);
  });

  it('refuses tenant ids and dates that may not become a path', async () => {
    await expect(compactPartition(deps, '../x', DATE)).rejects.toThrow(
      `tenant id "../x" may contain only letters, digits, '-' and '_'`,
    );
    await expect(compactPartition(deps, 'acme', '2025-02-30')).rejects.toThrow(
      'date must be a calendar date YYYY-MM-DD, got "2025-02-30"',
    );
  });
});

describe('compactTenants', () => {
  it('keeps tenants apart and finishes every tenant when one fails', async () => {
    await ingest([
      dynamodbRecord({ seq: 1, item: chatItem({ tenantId: 'acme', messageId: 'same-id', content: 'acme' }) }),
      dynamodbRecord({ seq: 2, item: chatItem({ tenantId: 'globex', messageId: 'same-id', content: 'globex' }) }),
      dynamodbRecord({ seq: 3, item: chatItem({ tenantId: 'broken', messageId: 'x' }) }),
    ]);
    const failing: ObjectStore = Object.create(store);
    failing.getToFile = async (key, path) => {
      if (key.includes('tenant_id=broken')) throw new Error(`permission denied reading ${key}`);
      return store.getToFile(key, path);
    };
    const summary = await compactTenants({ ...deps, store: failing }, DATE, { tenants: 'all', concurrency: 2 });
    expect(summary.results.map((r) => [r.tenant, r.status, r.rowsWritten])).toStrictEqual([
      ['acme', 'compacted', 1],
      ['broken', 'failed', 0],
      ['globex', 'compacted', 1],
    ]);
    expect(summary.ok).toBe(false);
    expect(summary.results[1]?.error).toMatch(
      /^compaction of tenant broken for 2025-08-11 failed: permission denied reading staging\/messages\/tenant_id=broken/,
    );
    expect((await lake('acme')).map((r) => r.content)).toStrictEqual(['acme']);
    expect((await lake('globex')).map((r) => r.content)).toStrictEqual(['globex']);
  });
});
