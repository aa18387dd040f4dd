import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import { UsageError } from '../../src/core/errors.js';
import { runJobsKey, runSummaryKey, stagingKey } from '../../src/core/staging/layout.js';
import { gzipNdjson } from '../../src/core/staging/ndjson.js';
import { isJobPayload, parseJobPayload } from '../../src/jobs/compactionPayload.js';
import {
  type CompactionJob,
  largestFirst,
  NO_REPORT,
  parseJob,
  planJobs,
  planRun,
  readRunPlan,
  recordJobResult,
  runJob,
  writeRunSummary,
} from '../../src/jobs/fanOut.js';
import { runCompaction } from '../../src/jobs/runCompaction.js';
import { withCompactionDeps } from '../../src/jobs/workspace.js';
import { readManifest } from '../../src/lake/manifest.js';
import { TransientStoreError } from '../../src/ports/store/errors.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { getBytes, type ObjectStore, type PutOptions } from '../../src/ports/store/ObjectStore.js';
import { stagedRecord } from '../kit/factories.js';
import { tempDir } from '../kit/tempDir.js';

const DATE = '2025-08-11';
let dir: Awaited<ReturnType<typeof tempDir>>;
let store: LocalStore;
let config: ReturnType<typeof loadConfig>;
const bytes: Record<string, number> = {};

async function stage(tenant: string, date: string, name: string, count: number) {
  const body = gzipNdjson(
    Array.from({ length: count }, (_, i) =>
      stagedRecord({
        tenant_id: tenant,
        dt: date,
        message_id: `${name}-${i}`,
        created_at: Date.parse(`${date}T03:00:00.000Z`) + i,
        source_seq: String(i + 1),
      }),
    ),
  );
  const key = /^[A-Za-z0-9_-]+$/.test(tenant)
    ? stagingKey(tenant, date, name)
    : `staging/messages/tenant_id=${tenant}/dt=${date}/${name}.ndjson.gz`;
  await store.putBytes(key, body);
  bytes[`${tenant} ${date}`] = (bytes[`${tenant} ${date}`] ?? 0) + body.length;
}
const size = (tenant: string, date: string) => bytes[`${tenant} ${date}`] as number;

beforeAll(async () => {
  dir = await tempDir();
  store = new LocalStore(join(dir.path, 'lake'));
  config = loadConfig({
    DATA_DIR: join(dir.path, 'lake'),
    TEMP_DIR: dir.path,
    DUCKDB_THREADS: '1',
    DUCKDB_MEMORY_LIMIT: '512MB',
  });
  // twelve tenants on the target day, of different sizes
  for (let t = 0; t < 12; t++) await stage(`t${String(t).padStart(2, '0')}`, DATE, 'day', 1 + ((t * 7) % 12));
  // t01: a day before, never compacted
  await stage('t01', '2025-08-10', 'lag', 2);
  // t02: compacted three days before, then a late object arrives
  await stage('t02', '2025-08-08', 'first', 3);
  // t03: compacted two days before, unchanged since
  await stage('t03', '2025-08-09', 'first', 2);
  // t04: changed, but nine days before: outside LATE_DATA_LOOKBACK_DAYS (7)
  await stage('t04', '2025-08-02', 'old', 2);
  for (const [tenant, date] of [
    ['t02', '2025-08-08'],
    ['t03', '2025-08-09'],
  ] as const) {
    expect((await runCompaction({ store, config, date, tenants: [tenant] })).ok).toBe(true);
  }
  await stage('t02', '2025-08-08', 'late', 1);
  // a folder whose name is not a tenant id
  await stage('bad.tenant', DATE, 'x', 1);
});
afterAll(async () => {
  await dir?.cleanup();
});

describe('planJobs', () => {
  it('lists every tenant in staging for the day, then every late partition in the look-back, with staging bytes (exact)', async () => {
    const manifestRun = (await readManifest(store, 't02', '2025-08-08'))?.run_id;
    const jobs = await planJobs(store, { date: DATE, tenants: 'all', lateLookbackDays: 7 });
    expect(jobs).toStrictEqual([
      { tenant: 'bad.tenant', date: DATE, stagingBytes: 0 },
      ...Array.from({ length: 12 }, (_, t) => {
        const tenant = `t${String(t).padStart(2, '0')}`;
        return { tenant, date: DATE, stagingBytes: size(tenant, DATE) };
      }),
      {
        tenant: 't01',
        date: '2025-08-10',
        reason: 'never compacted: 1 staging objects',
        stagingBytes: size('t01', '2025-08-10'),
      },
      {
        tenant: 't02',
        date: '2025-08-08',
        reason: `1 staging object newer than run ${manifestRun}`,
        stagingBytes: size('t02', '2025-08-08'),
      },
    ]);
  });

  it('with a tenant list: those tenants (even without staging) and their late partitions only; no look-back when asked', async () => {
    expect(await planJobs(store, { date: DATE, tenants: ['t02', 'nobody', 't02'], lateLookbackDays: 7 })).toStrictEqual([
      { tenant: 't02', date: DATE, stagingBytes: size('t02', DATE) },
      { tenant: 'nobody', date: DATE, stagingBytes: 0 },
      expect.objectContaining({ tenant: 't02', date: '2025-08-08', stagingBytes: size('t02', '2025-08-08') }),
    ]);
    expect(await planJobs(store, { date: DATE, tenants: ['t01'], lateLookbackDays: 0 })).toStrictEqual([
      { tenant: 't01', date: DATE, stagingBytes: size('t01', DATE) },
    ]);
  });

  it('orders a run largest first, ties in plan order', () => {
    const job = (tenant: string, stagingBytes: number): CompactionJob => ({ tenant, date: DATE, stagingBytes });
    expect(largestFirst([job('a', 5), job('b', 9), job('c', 5), job('d', 0), job('e', 9)]).map((j) => j.tenant)).toStrictEqual([
      'b',
      'e',
      'a',
      'c',
      'd',
    ]);
  });
});

describe('parseJob', () => {
  it('takes a job as the orchestrators pass it and refuses anything else, saying why', () => {
    expect(parseJob({ tenant: 'a', date: DATE, stagingBytes: 3 })).toStrictEqual({ tenant: 'a', date: DATE, stagingBytes: 3 });
    expect(parseJob({ tenant: 'a', date: DATE, reason: 'late' })).toStrictEqual({
      tenant: 'a',
      date: DATE,
      reason: 'late',
      stagingBytes: 0,
    });
    expect(() => parseJob({ tenant: 'a', date: '2025-02-30' })).toThrow(UsageError);
    expect(() => parseJob({ tenant: 'a', date: DATE, size: 1 })).toThrow('unknown job field(s) size');
    expect(() => parseJob({ tenant: '', date: DATE })).toThrow('job.tenant must be a tenant id, got ""');
    expect(() => parseJob({ tenant: 'a', date: DATE, stagingBytes: -1 })).toThrow(
      'job.stagingBytes must be a whole number of bytes, got -1',
    );
    expect(() => parseJob('a')).toThrow(UsageError);
  });
});

describe('parseJobPayload', () => {
  it('tells a job from a manual payload and validates both halves', () => {
    const run = { run_id: '20250811T170000000Z-1a2b3c4d', target_date: DATE };
    expect([isJobPayload({ job: {}, run }), isJobPayload({ target_date: DATE }), isJobPayload(null)]).toStrictEqual([
      true,
      false,
      false,
    ]);
    expect(parseJobPayload({ job: { tenant: 'a', date: DATE, stagingBytes: 7 }, run })).toStrictEqual({
      job: { tenant: 'a', date: DATE, stagingBytes: 7 },
      run: { runId: '20250811T170000000Z-1a2b3c4d', date: DATE },
    });
    expect(() => parseJobPayload({ job: { tenant: 'a', date: DATE }, run: { ...run, run_id: '../x' } })).toThrow(
      'run_id: invalid run id "../x"',
    );
    expect(() => parseJobPayload({ job: { tenant: 'a', date: DATE }, run, extra: 1 })).toThrow(
      'unknown field(s) extra; expected job, run',
    );
  });
});

describe('a run: plan, jobs report, summary', () => {
  it('writes the summary only once every job reported, exactly once, with unreported jobs failed when forced', async () => {
    const plan = await planRun(
      store,
      { date: DATE, tenants: ['t00', 't05', 'bad.tenant'], lateLookbackDays: 0 },
      Date.parse('2025-08-11T17:00:00Z'),
    );
    expect(plan.run.runId).toMatch(/^20250811T170000000Z-[0-9a-f]{8}$/);
    expect(await readRunPlan(store, plan.run)).toStrictEqual(plan.jobs);
    expect(plan.jobs.map((j) => j.tenant)).toStrictEqual(
      size('t05', DATE) > size('t00', DATE) ? ['t05', 't00', 'bad.tenant'] : ['t00', 't05', 'bad.tenant'],
    );

    const results = await withCompactionDeps(config, store, Date.now, async (deps) => {
      const out = [];
      for (const job of plan.jobs) out.push(await runJob(deps, job));
      return out;
    });
    expect(results.map((r) => [r.tenant, r.status, r.rowsWritten])).toStrictEqual(
      plan.jobs.map((j) => [
        j.tenant,
        j.tenant === 'bad.tenant' ? 'failed' : 'compacted',
        j.tenant === 'bad.tenant' ? 0 : expect.any(Number),
      ]),
    );
    // two of three reported: not complete
    await recordJobResult(store, plan.run, results[0] as (typeof results)[0]);
    await recordJobResult(store, plan.run, results[2] as (typeof results)[0]);
    expect(await writeRunSummary(store, plan.run, { whenComplete: true })).toBeUndefined();
    expect(await store.head(runSummaryKey(DATE, plan.run.runId))).toBeUndefined();
    // the summary step of a run whose job never reported: written, that job failed
    const forced = await writeRunSummary(store, plan.run, { whenComplete: false });
    expect([forced?.written, forced?.summary.missing, forced?.summary.results[1]?.error]).toStrictEqual([true, 1, NO_REPORT]);
    // a second writer finds it written
    await recordJobResult(store, plan.run, results[1] as (typeof results)[0]);
    const again = await writeRunSummary(store, plan.run, { whenComplete: true });
    expect([again?.written, again?.summary.missing]).toStrictEqual([false, 0]);
    // a summary write whose reply is lost (written, then the connection resets) is reported written, once
    const other = { ...plan.run, runId: `${plan.run.runId.slice(0, -1)}x` };
    const lossy = Object.assign(Object.create(store), {
      putBytes: async (key: string, body: Uint8Array | string, options?: PutOptions) => {
        const info = await store.putBytes(key, body, options);
        if (key === runSummaryKey(DATE, other.runId)) throw new TransientStoreError(`connection reset after writing ${key}`);
        return info;
      },
    }) as ObjectStore;
    await store.putBytes(runJobsKey(DATE, other.runId), await getBytes(store, runJobsKey(DATE, plan.run.runId)));
    const settled = await writeRunSummary(lossy, other, { whenComplete: false });
    expect(settled?.written).toBe(true);
    const written = JSON.parse((await getBytes(store, runSummaryKey(DATE, plan.run.runId))).toString());
    expect([written.run_id, written.jobs_planned, written.jobs_missing, written.ok, written.totals.failed]).toStrictEqual([
      plan.run.runId,
      3,
      1,
      false,
      2,
    ]);
  });
});
