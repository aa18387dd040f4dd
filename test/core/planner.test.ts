import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { analyticsPrefix, manifestIndexKey, STAGING_ROOT, stagingKey, stagingPrefix } from '../../src/core/staging/layout.js';
import { gzipNdjson } from '../../src/core/staging/ndjson.js';
import { type CompactionDeps, compactPartition } from '../../src/engine/compactPartition.js';
import { compactTenants } from '../../src/engine/compactTenants.js';
import { findLatePartitions, PLAN_CONCURRENCY, planCompaction } from '../../src/lake/lateData.js';
import { readManifest } from '../../src/lake/manifest.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { listAll, type ObjectInfo, type ObjectStore } from '../../src/ports/store/ObjectStore.js';
import { LatencyStore } from '../../tools/LatencyStore.js';
import { CountingStore, S3_REQUEST_MODEL } from '../kit/CountingStore.js';
import { duckDbFixture } from '../kit/duckDbFixture.js';
import { stagedRecord } from '../kit/factories.js';
import { readPartition } from '../kit/pipeline.js';

const TARGET = '2025-08-20';
let store: LocalStore;
let n = 0;

const fixture = duckDbFixture('makoto-lake-planner-');
beforeAll(async () => {
  store = new LocalStore(join(fixture.path, 'data'));
});

const deps = (): CompactionDeps => ({ store, db: fixture.db, workDirectory: join(fixture.path, `work-${++n}`) });

/** One staging object of `tenant`'s day with the given messages (created at 10:00 JST that day). */
async function stage(tenant: string, date: string, name: string, ids: string[], seq: number): Promise<void> {
  const createdAt = Date.parse(`${date}T01:00:00Z`);
  const records = ids.map((id, i) =>
    stagedRecord({ tenant_id: tenant, dt: date, message_id: id, created_at: createdAt, source_seq: String(seq + i) }),
  );
  await store.putBytes(stagingKey(tenant, date, name), gzipNdjson(records));
}

const stagingBytes = async (tenant: string, date: string) =>
  (await listAll(store, stagingPrefix(tenant, date))).reduce((sum, o) => sum + o.size, 0);
const runOf = async (tenant: string, date: string) => (await readManifest(store, tenant, date))?.run_id;

describe('the nightly planner', () => {
  it('finds late staging of any age and never-compacted days from the table and the staging listing, exactly', async () => {
    // acme: an old day whose staging expired and then got a late correction; a foreign file planted in a
    // folder; clean days. globex: a never compacted day. initech: a clean day.
    await stage('acme', '2025-03-01', 'a', ['old-1', 'old-2'], 1);
    await stage('acme', '2025-08-01', 'a', ['b-1', 'b-2'], 1);
    await stage('acme', '2025-08-02', 'a', ['c-1'], 1);
    await stage('acme', '2025-08-03', 'a', ['e-1'], 1);
    await stage('globex', '2025-08-06', 'a', ['g-1'], 1);
    await stage('initech', '2025-08-07', 'a', ['i-1'], 1);
    for (const [tenant, date] of [
      ['acme', '2025-03-01'],
      ['acme', '2025-08-01'],
      ['acme', '2025-08-02'],
      ['acme', '2025-08-03'],
      ['globex', '2025-08-06'],
      ['initech', '2025-08-07'],
    ] as const) {
      expect((await compactPartition(deps(), tenant, date)).status).toBe('compacted');
    }
    for (const o of await listAll(store, stagingPrefix('acme', '2025-03-01'))) await store.delete(o.key);
    await stage('acme', '2025-03-01', 'late', ['old-2'], 9); // an edit of a five-month-old message
    // a file no version names (a crashed run's upload, a file copied in by hand): no reader reads it, no run needs it
    await store.putBytes(`${analyticsPrefix('acme', '2025-08-01')}part-9-foreign.parquet`, 'not parquet at all');
    await stage('globex', '2025-08-05', 'a', ['f-1', 'f-2'], 1);

    const counting = new CountingStore(store);
    const jobs = await planCompaction(counting, ['acme', 'globex', 'initech', 'acme']);
    expect(jobs).toStrictEqual([
      {
        tenant: 'acme',
        date: '2025-03-01',
        reason: `1 staging object newer than run ${await runOf('acme', '2025-03-01')}`,
        stagingBytes: await stagingBytes('acme', '2025-03-01'),
      },
      {
        tenant: 'globex',
        date: '2025-08-05',
        reason: 'never compacted: 1 staging objects',
        stagingBytes: await stagingBytes('globex', '2025-08-05'),
      },
    ]);
    // cold cache: the snapshot (one LIST of the log's first ten versions, the missing _last_checkpoint and
    // the 6 commits), one LIST of pending/deletes/ (empty), then per tenant one LIST of its staging, the cache GET (missing), one GET per run
    // manifest of a day with staging, one PUT of the cache (its entries: the days that need no compaction)
    expect(counting.counts().operations).toStrictEqual({ LIST: 1 + 1 + 3, HEAD: 0, GET: 1 + 6 + 3 + 6, PUT: 3, DELETE: 0 });

    counting.reset();
    expect(await planCompaction(counting, ['acme', 'globex', 'initech'])).toStrictEqual(jobs);
    // warm cache: the snapshot, the pending-deletes LIST, then 1 LIST and 1 GET per tenant, and the run
    // manifest of the one planned day that has one (acme's 2025-03-01): the cache keeps no entry for a planned
    // day, whose compaction replaces that manifest at once
    expect(counting.counts().operations).toStrictEqual({ LIST: 1 + 1 + 3, HEAD: 0, GET: 1 + 6 + 3 + 1, PUT: 0, DELETE: 0 });
    expect(counting.requests(S3_REQUEST_MODEL)).toStrictEqual({
      LIST: 1 + 1 + 3,
      HEAD: 0,
      GET: 1 + 6 + 3 + 1,
      PUT: 0,
      DELETE: 0,
    });

    // a look-back bound only narrows the check; the caller's own target day is never a late job
    expect(await findLatePartitions(store, ['acme', 'globex'], TARGET, 10)).toStrictEqual([]);
    expect((await findLatePartitions(store, ['acme'], '2025-08-02', 0)).map((j) => j.date)).toStrictEqual(['2025-03-01']);
    // a wrong cache entry only costs a GET
    await store.putBytes(
      manifestIndexKey('acme'),
      '{"version":2,"manifests":{"2025-03-01":{"key":"manifests/messages/x.json","run_id":"r","inputs":{}}}}',
    );
    expect(await planCompaction(store, ['acme'])).toStrictEqual(jobs.filter((j) => j.tenant === 'acme'));

    const night = await compactTenants(deps(), TARGET, {
      tenants: ['acme', 'globex', 'initech'],
      concurrency: 2,
      lateLookbackDays: Number.POSITIVE_INFINITY,
    });
    expect(night.results.map((r) => [r.tenant, r.date, r.status, r.rowsWritten])).toStrictEqual([
      ['acme', TARGET, 'no-input', 0],
      ['globex', TARGET, 'no-input', 0],
      ['initech', TARGET, 'no-input', 0],
      ['acme', '2025-03-01', 'compacted', 2],
      ['globex', '2025-08-05', 'compacted', 2],
    ]);
    expect(await planCompaction(store, 'all')).toStrictEqual([]);
    const ids = async (tenant: string, date: string) =>
      (await readPartition(store, tenant, date, join(fixture.path, `read-${++n}`))).map((r) => [r.message_id, r.source_seq]);
    expect(await ids('acme', '2025-03-01')).toStrictEqual([
      ['old-1', '1'],
      ['old-2', '9'],
    ]);
    // the foreign file is not part of the table
    expect(await ids('acme', '2025-08-01')).toStrictEqual([
      ['b-1', '1'],
      ['b-2', '2'],
    ]);
    expect(await ids('globex', '2025-08-05')).toStrictEqual([
      ['f-1', '1'],
      ['f-2', '2'],
    ]);
  });

  it('checks the tenants PLAN_CONCURRENCY at a time, and returns their jobs in tenant order', async () => {
    const lake = new LocalStore(join(fixture.path, 'many-tenants'));
    const tenants = Array.from({ length: 20 }, (_, i) => `t${String(i).padStart(2, '0')}`);
    for (const tenant of tenants) {
      const record = stagedRecord({ tenant_id: tenant, dt: TARGET, created_at: Date.parse(`${TARGET}T01:00:00Z`) });
      await lake.putBytes(stagingKey(tenant, TARGET, 'a'), gzipNdjson([record]));
    }
    // every request takes 5 ms; the tenants' staging listings in flight at once are counted
    const slow = new LatencyStore(lake, 5);
    const listings = { now: 0, max: 0 };
    async function* counted(prefix: string): AsyncIterable<ObjectInfo> {
      const tenantListing = prefix.startsWith(`${STAGING_ROOT}tenant_id=`);
      if (tenantListing) listings.max = Math.max(listings.max, ++listings.now);
      try {
        yield* slow.list(prefix);
      } finally {
        if (tenantListing) listings.now--;
      }
    }
    const store: ObjectStore = new Proxy(slow, {
      get: (target, name) => {
        if (name === 'list') return counted;
        const value = Reflect.get(target, name);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const jobs = await planCompaction(store, 'all');
    expect(jobs.map((j) => [j.tenant, j.date, j.reason])).toStrictEqual(
      tenants.map((t) => [t, TARGET, 'never compacted: 1 staging objects']),
    );
    expect([PLAN_CONCURRENCY, listings.max, listings.now]).toStrictEqual([16, 16, 0]);
  });
});
