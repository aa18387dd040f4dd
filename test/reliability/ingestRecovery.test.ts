import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ingestBatch } from '../../src/capture/ingest/ingestBatch.js';
import { dynamodbEventChanges } from '../../src/capture/ingest/sources.js';
import { compactTenants } from '../../src/engine/compactTenants.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { listAll, type ObjectStore } from '../../src/ports/store/ObjectStore.js';
import { duckDbFixture } from '../kit/duckDbFixture.js';
import { FaultInjectingStore } from '../kit/FaultInjectingStore.js';
import { chatItem, dynamodbRecord } from '../kit/factories.js';
import { readPartition } from '../kit/pipeline.js';

const fixture = duckDbFixture('makoto-lake-ingest-', { memoryLimit: '1GB' });

const DATE = '2025-08-11';
const NOW = Date.parse('2025-08-11T17:00:00Z');

let n = 0;

/** One shard batch touching three tenants: acme, globex, acme again, initech. */
const records = [
  dynamodbRecord({ seq: 1, item: chatItem({ tenantId: 'acme', messageId: 'a1' }) }),
  dynamodbRecord({ seq: 2, item: chatItem({ tenantId: 'globex', messageId: 'g1' }) }),
  dynamodbRecord({ seq: 3, item: chatItem({ tenantId: 'acme', messageId: 'a2', content: 'two' }) }),
  dynamodbRecord({ seq: 4, item: chatItem({ tenantId: 'initech', messageId: 'i1' }) }),
  dynamodbRecord({ seq: 5, item: chatItem({ tenantId: 'globex', messageId: 'g1', content: 'edited' }) }),
];
const TENANTS = ['acme', 'globex', 'initech'];

const deliver = (store: ObjectStore, batch: typeof records) => {
  const { changes, batchId } = dynamodbEventChanges({ Records: batch });
  return ingestBatch(store, changes, { source: 'dynamodb', batchId, now: NOW - 3_600_000 });
};

async function lake(store: ObjectStore) {
  await compactTenants({ store, db: fixture.db, workDirectory: join(fixture.path, `w-${++n}`), now: () => NOW }, DATE, {
    tenants: TENANTS,
    concurrency: 1,
  });
  const out: Record<string, unknown[]> = {};
  for (const t of TENANTS) {
    out[t] = (await readPartition(store, t, DATE, join(fixture.path, `r-${++n}`))).map((r) => [
      r.message_id,
      r.content,
      r.source_seq,
    ]);
  }
  return out;
}

describe('ingest: crashes and partial failures lose nothing and duplicate nothing', () => {
  it('a batch re-delivered after a crash mid-write rewrites the same objects, byte for byte', async () => {
    const store = new LocalStore(join(fixture.path, `d-${++n}`));
    const first = await deliver(store, records);
    const bytes = await Promise.all(first.written.map((w) => readFile(join(store.root, w.key))));
    const again = await deliver(store, records);
    expect(again.written.map((w) => w.key)).toStrictEqual(first.written.map((w) => w.key));
    expect(await Promise.all(again.written.map((w) => readFile(join(store.root, w.key))))).toStrictEqual(bytes);
    expect((await listAll(store, 'staging/')).length).toBe(3);
  });

  it('a failed group points at the first change not stored; re-delivering from there gives exactly the clean lake', async () => {
    const clean = new LocalStore(join(fixture.path, `d-${++n}`));
    await deliver(clean, records);
    const expected = await lake(clean);
    expect(expected).toStrictEqual({
      acme: [
        ['a1', 'こんにちは', '1'],
        ['a2', 'two', '3'],
      ],
      globex: [['g1', 'edited', '5']],
      initech: [['i1', 'こんにちは', '4']],
    });

    const local = new LocalStore(join(fixture.path, `d-${++n}`));
    const broken = new FaultInjectingStore(local, { permanent: [{ operation: 'putBytes', keyContains: 'tenant_id=globex/' }] });
    const partial = await deliver(broken, records);
    expect([
      partial.staged,
      partial.failed.map((f) => [f.key.split('/')[2], f.firstIndex, f.records]),
      partial.firstFailedIndex,
    ]).toStrictEqual([3, [['tenant_id=globex', 1, 2]], 1]);
    // Lambda's ReportBatchItemFailures: the shard is retried from the first failed record, the fault is gone
    const retried = await deliver(local, records.slice(partial.firstFailedIndex));
    expect(retried.failed).toStrictEqual([]);
    expect(await lake(local)).toStrictEqual(expected);
  });
});
