import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ingestBatch } from '../../src/capture/ingest/ingestBatch.js';
import { dynamodbEventChanges } from '../../src/capture/ingest/sources.js';
import { type CompactionDeps, compactPartition } from '../../src/engine/compactPartition.js';
import { DeltaTable, partitionFiles, tableKey } from '../../src/lake/table/deltaTable.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { duckDbFixture } from '../kit/duckDbFixture.js';
import { chatItem, dynamodbRecord } from '../kit/factories.js';
import { readPartition } from '../kit/pipeline.js';

const fixture = duckDbFixture('makoto-lake-conflict-', { threads: 1 });

const D = '2025-08-11';
let n = 0;

async function deliver(store: LocalStore, tenant: string, records: [number, string, string][]): Promise<void> {
  const { changes, batchId } = dynamodbEventChanges({
    Records: records.map(([seq, id, content]) =>
      dynamodbRecord({ seq, item: chatItem({ tenantId: tenant, messageId: id, content, createdAt: '2025-08-11T01:00:00Z' }) }),
    ),
  });
  await ingestBatch(store, changes, { source: 'dynamodb', batchId });
}

const rows = async (store: LocalStore, tenant: string) =>
  (await readPartition(store, tenant, D, join(fixture.path, `read-${++n}`))).map((r) => [r.message_id, r.content]);

describe('a commit that meets a newer version of its partition', () => {
  it('re-plans from the new version and commits after it; its first attempt is referenced by no version', async () => {
    const store = new LocalStore(join(fixture.path, `lake-${++n}`));
    const events: [string, Record<string, unknown>][] = [];
    const deps = (extra: Partial<CompactionDeps> = {}): CompactionDeps => ({
      store,
      db: fixture.db,
      workDirectory: join(fixture.path, `work-${++n}`),
      log: (event, fields) => events.push([event, fields]),
      ...extra,
    });
    await deliver(store, 'acme', [
      [1, 'm1', 'one'],
      [2, 'm2', 'two'],
    ]);
    expect((await compactPartition(deps(), 'acme', D)).status).toBe('compacted');
    await deliver(store, 'acme', [[9, 'm1', 'one, edited']]);

    // while the run is about to commit, another writer (an engine that ignores our lease, e.g. a Spark
    // OPTIMIZE) replaces the partition's files with the same rows under a new version
    let other: number | undefined;
    const rewriteByAnotherEngine = async (phase: string) => {
      if (phase !== 'committing' || other !== undefined) return;
      const table = new DeltaTable(store, {});
      const snapshot = await table.snapshot();
      const files = partitionFiles(snapshot, 'acme', D);
      other = await table.commit(
        {
          partitions: ['tenant_id=acme/dt=2025-08-11'],
          removes: files.map((f) => ({
            path: f.path,
            deletionTimestamp: Date.now(),
            dataChange: false,
            partitionValues: f.partitionValues,
          })),
          adds: files.map((f) => ({ ...f, dataChange: false })),
          txns: [],
          info: { operation: 'OPTIMIZE' },
        },
        snapshot.version,
        () => {
          throw new Error('the table exists');
        },
      );
    };
    const result = await compactPartition(deps({ onPhase: rewriteByAnotherEngine }), 'acme', D);

    expect(other).toBe(1);
    expect(events.filter(([e]) => e === 'partition.commit_conflict').map(([, f]) => f.error)).toStrictEqual([
      'table version 1 changed partition tenant_id=acme/dt=2025-08-11 since this run read it',
    ]);
    expect([result.status, result.runId.endsWith('-r1'), result.rowsWritten, result.versionsSuperseded]).toStrictEqual([
      'compacted',
      true,
      2,
      1,
    ]);
    const table = new DeltaTable(store, {});
    const now = await table.snapshot();
    expect(now.version).toBe(2);
    expect(partitionFiles(now, 'acme', D).map((f) => tableKey(f.path))).toStrictEqual(result.outputFiles);
    // the first attempt's part was uploaded under its own name and is referenced by no version
    const firstAttempt = `analytics/messages/tenant_id=acme/dt=${D}/part-0-${result.runId.replace(/-r1$/, '')}.parquet`;
    expect(await store.head(firstAttempt)).toBeDefined();
    for (const v of [0, 1, 2]) expect([...(await table.snapshot({ version: v })).files.keys()]).not.toContain(firstAttempt);
    expect(await rows(store, 'acme')).toStrictEqual([
      ['m1', 'one, edited'],
      ['m2', 'two'],
    ]);
  });

  it('N writers on disjoint tenant-days at once, and two on the same one: every commit lands, the shared one ends exact', async () => {
    const store = new LocalStore(join(fixture.path, `lake-${++n}`));
    const tenants = Array.from({ length: 8 }, (_, i) => `t${i}`);
    for (const [i, tenant] of tenants.entries()) await deliver(store, tenant, [[i + 1, `${tenant}-m`, `hello ${tenant}`]]);
    const deps = (): CompactionDeps => ({
      store: new LocalStore(store.root),
      db: fixture.db,
      workDirectory: join(fixture.path, `work-${++n}`),
    });
    // every writer its own table object (as separate processes would have), all starting from no table
    const results = await Promise.allSettled([...tenants, 't0'].map((tenant) => compactPartition(deps(), tenant, D)));
    // the two runs of t0: one commits, the other finds the lease taken (it does not do the same work twice)
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value.status : (r.reason as Error).name)).sort()).toStrictEqual(
      [...Array(8).fill('compacted'), 'PartitionLockedError'].sort(),
    );
    const snapshot = await new DeltaTable(store, {}).snapshot();
    expect(snapshot.version).toBe(7);
    expect(snapshot.files.size).toBe(8);
    for (const tenant of tenants) expect(await rows(store, tenant)).toStrictEqual([[`${tenant}-m`, `hello ${tenant}`]]);
  });
});
