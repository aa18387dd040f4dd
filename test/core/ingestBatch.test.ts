import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ingestBatch } from '../../src/capture/ingest/ingestBatch.js';
import { dynamodbEventChanges } from '../../src/capture/ingest/sources.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { getBytes, listAll, type ObjectStore } from '../../src/ports/store/ObjectStore.js';
import { chatItem, dynamodbRecord } from '../kit/factories.js';
import { tempDir } from '../kit/tempDir.js';

const NOW = Date.parse('2025-08-11T03:00:00Z');

async function lines(store: ObjectStore, key: string): Promise<Record<string, unknown>[]> {
  return gunzipSync(await getBytes(store, key))
    .toString('utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

describe('ingestBatch', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let store: LocalStore;
  beforeEach(async () => {
    dir = await tempDir();
    store = new LocalStore(join(dir.path, 'data'));
  });
  afterEach(() => dir.cleanup());

  const event = {
    Records: [
      dynamodbRecord({ seq: 11, item: chatItem({ messageId: 'a1' }) }),
      dynamodbRecord({ seq: 12, item: chatItem({ tenantId: 'globex', messageId: 'g1' }) }),
      dynamodbRecord({ seq: 13, item: chatItem({ messageId: 'a2', createdAt: '2025-08-11T15:00:00Z' }) }),
      dynamodbRecord({ seq: 14, item: chatItem({ tenantId: undefined, messageId: 'lost' }) }),
      dynamodbRecord({ seq: 15, item: chatItem({ messageId: 'a3' }) }),
    ],
  };

  it('writes one object per tenant and JST day, named by first/last position, and quarantines bad records', async () => {
    const { changes, batchId } = dynamodbEventChanges(event);
    const result = await ingestBatch(store, changes, { source: 'dynamodb', batchId, now: NOW });
    expect(batchId).toBe('ddb-9eb1d3542306');
    expect(result).toStrictEqual({
      received: 5,
      staged: 4,
      quarantined: 1,
      quarantine: [
        {
          reason: 'no tenant id (looked for tenant_id, tenantId)',
          count: 1,
          example: 'position 14',
          object: 'quarantine/ingest/source=dynamodb/dt=2025-08-11/ddb-9eb1d3542306_14_14.ndjson.gz',
        },
      ],
      written: [
        { key: 'staging/messages/tenant_id=acme/dt=2025-08-11/ddb-9eb1d3542306_11_15.ndjson.gz', records: 2, firstIndex: 0 },
        { key: 'staging/messages/tenant_id=globex/dt=2025-08-11/ddb-9eb1d3542306_12_12.ndjson.gz', records: 1, firstIndex: 1 },
        { key: 'staging/messages/tenant_id=acme/dt=2025-08-12/ddb-9eb1d3542306_13_13.ndjson.gz', records: 1, firstIndex: 2 },
        { key: 'quarantine/ingest/source=dynamodb/dt=2025-08-11/ddb-9eb1d3542306_14_14.ndjson.gz', records: 1, firstIndex: 3 },
      ],
      failed: [],
      firstFailedIndex: undefined,
    });
    expect((await lines(store, result.written[0]?.key as string)).map((l) => [l.message_id, l.source_seq])).toStrictEqual([
      ['a1', '11'],
      ['a3', '15'],
    ]);
    const [quarantined] = await lines(store, result.written[3]?.key as string);
    expect([quarantined?.reason, quarantined?.position, quarantined?.raw]).toStrictEqual([
      'no tenant id (looked for tenant_id, tenantId)',
      '14',
      event.Records[3],
    ]);
  });

  it('rewrites the same objects when the batch is delivered again', async () => {
    const { changes, batchId } = dynamodbEventChanges(event);
    await ingestBatch(store, changes, { source: 'dynamodb', batchId, now: NOW });
    const before = (await listAll(store, '')).map((o) => o.key);
    await ingestBatch(store, changes, { source: 'dynamodb', batchId, now: NOW + 60_000 });
    expect((await listAll(store, '')).map((o) => o.key)).toStrictEqual(before);
  });

  it('reports the first change of the first group it could not write, and writes the others', async () => {
    const failing: ObjectStore = Object.create(store);
    failing.putBytes = async (key, body, options) => {
      if (key.includes('tenant_id=globex')) throw new Error('disk full');
      return store.putBytes(key, body, options);
    };
    const { changes, batchId } = dynamodbEventChanges(event);
    const result = await ingestBatch(failing, changes, { source: 'dynamodb', batchId, now: NOW });
    expect(result.firstFailedIndex).toBe(1);
    expect(result.failed.map((f) => [f.key, f.firstIndex, (f.error as Error).message])).toStrictEqual([
      ['staging/messages/tenant_id=globex/dt=2025-08-11/ddb-9eb1d3542306_12_12.ndjson.gz', 1, 'disk full'],
    ]);
    expect(result.written.length).toBe(3);
  });

  it('refuses input that is not a stream event', () => {
    expect(() => dynamodbEventChanges([])).toThrow('a DynamoDB Streams event must be a JSON object {"Records": [...]}');
  });
});

describe('ingestBatch with hostile input', () => {
  it('quarantines an item nested too deeply to serialise, and keeps the rest of the batch', async () => {
    const dir = await tempDir();
    try {
      const store = new LocalStore(join(dir.path, 'data'));
      let deep: Record<string, unknown> = { leaf: true };
      for (let i = 0; i < 20_000; i++) deep = { a: deep };
      const changes = [
        {
          item: { tenantId: 'acme', messageId: 'deep', createdAt: 1754874000, nested: deep },
          op: 'upsert' as const,
          sourceSeq: '1',
          raw: { id: 'deep', nested: deep },
        },
        { item: { tenantId: 'acme', messageId: 'fine', createdAt: 1754874000 }, op: 'upsert' as const, sourceSeq: '2', raw: {} },
      ];
      const result = await ingestBatch(store, changes, { source: 'cosmos', batchId: 'b', now: NOW });
      expect([result.staged, result.quarantined, result.failed]).toStrictEqual([1, 1, []]);
      const [entry] = await lines(store, result.written[1]?.key as string);
      expect(entry?.reason).toBe('cannot normalise the item: Maximum call stack size exceeded');
      // the raw record is kept as far down as it can be written, then described
      expect(entry?.raw).toStrictEqual({
        id: 'deep',
        nested: { a: { unserialisable: 'Maximum call stack size exceeded', type: 'object' } },
      });
    } finally {
      await dir.cleanup();
    }
  });
});
