import { join } from 'node:path';
import type { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CompactionDeps, compactPartition } from '../../src/compaction/compactPartition.js';
import { compactTenants } from '../../src/compaction/compactTenants.js';
import { findLatePartitions, planCompaction } from '../../src/compaction/lateData.js';
import { readManifest } from '../../src/compaction/manifest.js';
import { openDuckDb, withConnection } from '../../src/duckdb/openDuckDb.js';
import { quoteLiteral } from '../../src/sql/quote.js';
import { analyticsKey, manifestIndexKey, stagingKey, stagingPrefix } from '../../src/staging/layout.js';
import { gzipNdjson } from '../../src/staging/ndjson.js';
import { LocalStore } from '../../src/store/LocalStore.js';
import { getBytes, listAll } from '../../src/store/ObjectStore.js';
import { CountingStore, S3_REQUEST_MODEL } from '../kit/CountingStore.js';
import { stagedRecord } from '../kit/factories.js';
import { readPartition } from '../kit/pipeline.js';
import { tempDir } from '../kit/tempDir.js';

const TARGET = '2025-08-20';
let dir: Awaited<ReturnType<typeof tempDir>>;
let db: DuckDBInstance;
let store: LocalStore;
let n = 0;

beforeAll(async () => {
  dir = await tempDir('makoto-lake-planner-');
  db = await openDuckDb({ memoryLimit: '512MB', threads: 2, workDirectory: join(dir.path, 'duckdb') });
  store = new LocalStore(join(dir.path, 'data'));
});
afterAll(async () => {
  db.closeSync();
  await dir.cleanup();
});

const deps = (): CompactionDeps => ({ store, db, workDirectory: join(dir.path, `work-${++n}`) });

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
  it('finds late staging of any age and folders that differ from their manifest, exactly, and repairs them', async () => {
    // acme: an old day whose staging expired and then got a late correction; a stale extra part; a missing
    // part; a clean day. globex: a never compacted day and a part replaced behind the manifest's back.
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
    await store.putBytes(analyticsKey('acme', '2025-08-01', 7), await getBytes(store, analyticsKey('acme', '2025-08-01', 0)));
    await store.delete(analyticsKey('acme', '2025-08-02', 0));
    await stage('globex', '2025-08-05', 'a', ['f-1', 'f-2'], 1);
    // the same rows written again with other settings (as by a run that crashed after uploading it)
    const part = join(store.root, analyticsKey('globex', '2025-08-06', 0));
    const rewritten = join(dir.path, 'rewritten.parquet');
    await withConnection(db, (c) =>
      c.run(
        `COPY (SELECT * FROM read_parquet(${quoteLiteral(part)})) TO ${quoteLiteral(rewritten)} (FORMAT parquet, COMPRESSION zstd)`,
      ),
    );
    await store.putFile(analyticsKey('globex', '2025-08-06', 0), rewritten);

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
        tenant: 'acme',
        date: '2025-08-01',
        reason: `folder differs from run ${await runOf('acme', '2025-08-01')}: 1 stale part`,
        stagingBytes: await stagingBytes('acme', '2025-08-01'),
      },
      {
        tenant: 'acme',
        date: '2025-08-02',
        reason: `folder differs from run ${await runOf('acme', '2025-08-02')}: 1 missing part`,
        stagingBytes: await stagingBytes('acme', '2025-08-02'),
      },
      {
        tenant: 'globex',
        date: '2025-08-05',
        reason: 'never compacted: 1 staging objects',
        stagingBytes: await stagingBytes('globex', '2025-08-05'),
      },
      {
        tenant: 'globex',
        date: '2025-08-06',
        reason: `folder differs from run ${await runOf('globex', '2025-08-06')}: 1 changed part`,
        stagingBytes: await stagingBytes('globex', '2025-08-06'),
      },
    ]);
    // cold cache, per tenant: 3 LIST, the cache GET (missing), one GET per manifest, one PUT of the cache
    expect(counting.counts().operations).toStrictEqual({ LIST: 9, HEAD: 0, GET: 3 + 6, PUT: 3, DELETE: 0 });

    counting.reset();
    expect(await planCompaction(counting, ['acme', 'globex', 'initech'])).toStrictEqual(jobs);
    // warm cache: 3 LIST and 1 GET per tenant, nothing else
    expect(counting.counts().operations).toStrictEqual({ LIST: 9, HEAD: 0, GET: 3, PUT: 0, DELETE: 0 });
    expect(counting.requests(S3_REQUEST_MODEL)).toStrictEqual({ LIST: 9, HEAD: 0, GET: 3, PUT: 0, DELETE: 0 });

    // a look-back bound only narrows the check; the caller's own target day is never a late job
    expect(await findLatePartitions(store, ['acme', 'globex'], TARGET, 10)).toStrictEqual([]);
    expect((await findLatePartitions(store, ['acme'], '2025-08-02', 0)).map((j) => j.date)).toStrictEqual([
      '2025-03-01',
      '2025-08-01',
    ]);
    // a wrong cache entry only costs a GET
    await store.putBytes(
      manifestIndexKey('globex'),
      '{"version":1,"manifests":{"2025-08-06":{"etag":"x","run_id":"r","outputs":[]}}}',
    );
    expect(await planCompaction(store, ['globex'])).toStrictEqual(jobs.filter((j) => j.tenant === 'globex'));

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
      ['acme', '2025-08-01', 'compacted', 2],
      ['acme', '2025-08-02', 'compacted', 1],
      ['globex', '2025-08-05', 'compacted', 2],
      ['globex', '2025-08-06', 'compacted', 1],
    ]);
    expect(await planCompaction(store, 'all')).toStrictEqual([]);
    const ids = async (tenant: string, date: string) =>
      (await readPartition(store, tenant, date, join(dir.path, `read-${++n}`))).map((r) => [r.message_id, r.source_seq]);
    expect(await ids('acme', '2025-03-01')).toStrictEqual([
      ['old-1', '1'],
      ['old-2', '9'],
    ]);
    expect(await ids('acme', '2025-08-01')).toStrictEqual([
      ['b-1', '1'],
      ['b-2', '2'],
    ]);
    expect(await ids('acme', '2025-08-02')).toStrictEqual([['c-1', '1']]);
    // the part that was gone is recorded in the repairing run's manifest (its rows came back from staging)
    expect((await readManifest(store, 'acme', '2025-08-02'))?.missing_inputs).toStrictEqual([
      analyticsKey('acme', '2025-08-02', 0),
    ]);
    expect(await ids('globex', '2025-08-06')).toStrictEqual([['g-1', '1']]);
  });
});
