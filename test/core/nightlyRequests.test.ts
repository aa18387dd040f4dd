/**
 * The store requests of a nightly run over every tenant in staging, by area, exactly: each partition's plan
 * uses the staging listing the planner took (one LIST per tenant-day, not two), and the partition lease costs
 * four requests (create; one read before the upload, as the lease is fresh; read and delete at release).
 * Objects staged or erased between the planner's listing and the partition's plan: the rows stay exact.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { StagedRecord } from '../../src/core/schema/messageSchema.js';
import { stagingKey } from '../../src/core/staging/layout.js';
import { gzipNdjson } from '../../src/core/staging/ndjson.js';
import type { CompactionDeps } from '../../src/engine/compactPartition.js';
import { compactTenants } from '../../src/engine/compactTenants.js';
import { readManifest } from '../../src/lake/manifest.js';
import type { LocalStore } from '../../src/ports/store/LocalStore.js';
import type { ObjectStore } from '../../src/ports/store/ObjectStore.js';
import { CountingStore } from '../../tools/CountingStore.js';
import { duckDbFixture, lakesIn } from '../kit/duckDbFixture.js';
import { stagedRecord } from '../kit/factories.js';
import { readPartition } from '../kit/pipeline.js';

const DATE = '2025-08-11';

const fixture = duckDbFixture('makoto-lake-nightly-requests-');
const { newStore, depsOf } = lakesIn(fixture);

/** One staging object of `tenant` on DATE, named `name`. */
async function stage(store: LocalStore, tenant: string, name: string, records: Partial<StagedRecord>[]): Promise<string> {
  const key = stagingKey(tenant, DATE, `${name}.ndjson.gz`);
  await store.putBytes(key, gzipNdjson(records.map((r) => stagedRecord({ tenant_id: tenant, dt: DATE, ...r }))));
  return key;
}

/** A nightly run over every tenant in staging: each result's tenant, status, objects read and rows written. */
async function nightly(deps: CompactionDeps) {
  const summary = await compactTenants(deps, DATE, { tenants: 'all', concurrency: 2 });
  return summary.results.map((r) => [r.tenant, r.status, r.inputs, r.rowsWritten]).sort();
}

/** The partition's messages as a reader sees them: id and content. */
async function contents(store: ObjectStore, tenant: string) {
  const rows = await readPartition(store, tenant, DATE, join(fixture.path, 'read'));
  return rows.map((r) => [r.message_id, r.content]).sort();
}

describe('a nightly run over every tenant in staging', () => {
  it('lists each tenant-day once (the plan uses the planner listing) and pays four lease requests a partition', async () => {
    const store = newStore();
    await stage(store, 'acme', 'a1', [{ message_id: 'm1', content: 'one', source_seq: '10' }]);
    await stage(store, 'acme', 'a2', [{ message_id: 'm2', content: 'two', source_seq: '11' }]);
    await stage(store, 'globex', 'g1', [{ message_id: 'g1', content: 'hello', source_seq: '5' }]);
    await stage(store, 'initech', 'i1', [
      { message_id: 'i1', content: 'first', source_seq: '7' },
      { message_id: 'i1', content: 'edited', source_seq: '8' },
    ]);
    const counting = new CountingStore(store);

    expect(await nightly(depsOf(counting))).toStrictEqual([
      ['acme', 'compacted', 2, 2],
      ['globex', 'compacted', 1, 1],
      ['initech', 'compacted', 1, 1],
    ]);

    const areas = counting.byArea();
    // the planner's LIST of tenant folders and one LIST per tenant-day; the GET of each object
    expect(areas['staging/messages']).toStrictEqual({ LIST: 1 + 3, HEAD: 0, GET: 4, PUT: 0, DELETE: 0 });
    // the dead-lease sweep's LIST; per partition: the create, one read before the upload (fresh: no renewal),
    // the read and the conditional delete of the release
    expect(areas['locks/messages']).toStrictEqual({ LIST: 1, HEAD: 3 * 2, GET: 0, PUT: 3, DELETE: 3 });
    expect(await contents(store, 'acme')).toStrictEqual([
      ['m1', 'one'],
      ['m2', 'two'],
    ]);
    expect(await contents(store, 'globex')).toStrictEqual([['g1', 'hello']]);
    expect(await contents(store, 'initech')).toStrictEqual([['i1', 'edited']]);
    expect(await store.head('locks/messages/tenant_id=acme/dt=2025-08-11.lock')).toBeUndefined();
  }, 120_000);

  it('an object staged after the planner listed the day waits for the next run; one erased since is planned around', async () => {
    const store = newStore();
    await stage(store, 'acme', 'a1', [{ message_id: 'm1', content: 'one', source_seq: '10' }]);
    await stage(store, 'globex', 'g1', [{ message_id: 'g1', content: 'kept', source_seq: '5' }]);
    const erased = await stage(store, 'globex', 'g2', [{ message_id: 'g2', content: 'erased', source_seq: '6' }]);
    const events: string[] = [];
    const deps = depsOf(store, {
      log: (event, fields) => {
        if (event === 'partition.relist') events.push(`${event} ${fields.tenant}`);
      },
      // between the planner's listing and each partition's plan
      onPhase: async (phase, { tenant }) => {
        if (phase !== 'locked') return;
        if (tenant === 'acme') await stage(store, 'acme', 'a2', [{ message_id: 'm2', content: 'late', source_seq: '11' }]);
        if (tenant === 'globex') await store.delete(erased);
      },
    });

    expect(await nightly(deps)).toStrictEqual([
      ['acme', 'compacted', 1, 1],
      ['globex', 'compacted', 1, 1],
    ]);
    expect(events).toStrictEqual(['partition.relist globex']);
    // the manifest lists only what the run read, so the next run sees the late object as not folded in
    expect((await readManifest(store, 'acme', DATE))?.inputs.map((i) => i.key)).toStrictEqual([
      stagingKey('acme', DATE, 'a1.ndjson.gz'),
    ]);
    expect(await contents(store, 'acme')).toStrictEqual([['m1', 'one']]);
    expect(await contents(store, 'globex')).toStrictEqual([['g1', 'kept']]);

    expect(await nightly(depsOf(store))).toStrictEqual([
      ['acme', 'compacted', 2, 2],
      ['globex', 'compacted', 1, 1],
    ]);
    expect(await contents(store, 'acme')).toStrictEqual([
      ['m1', 'one'],
      ['m2', 'late'],
    ]);
  }, 120_000);
});
