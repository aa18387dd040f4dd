import type { DuckDBInstance } from '@duckdb/node-api';
import { errorMessage, PartitionLockedError, RunAbortedError } from '../core/errors.js';
import { splitShapeFor } from '../core/splitShape.js';
import { isStagingDataKey, STAGING_ROOT, stagingPrefix } from '../core/staging/layout.js';
import { tenantIdProblem } from '../core/tenant.js';
import { addDays, parseDate, targetDate } from '../core/time/jst.js';
import { mapLimit, mapSettled } from '../core/util/concurrency.js';
import { currentSnapshot } from '../lake/lakeTable.js';
import { findLatePartitions, planCompaction, type StalePartition } from '../lake/lateData.js';
import { removeDeadLeases } from '../lake/partitionLease.js';
import { type RunReads, runReads, runReadsKey } from '../lake/planPartition.js';
import type { TableSnapshot } from '../lake/table/deltaTable.js';
import { withConnection } from '../ports/duckdb/openDuckDb.js';
import { listAll, type ObjectInfo, type ObjectStore } from '../ports/store/ObjectStore.js';
import {
  type CompactionDeps,
  type CompactionSettings,
  compactPartition,
  emptyResult,
  type PartitionResult,
} from './compactPartition.js';
import { resultFailed } from './resultFailed.js';
import { runSplit, type SplitShape } from './splitPartition.js';

export interface RunSummary {
  readonly date: string;
  readonly ok: boolean;
  readonly results: PartitionResult[];
  readonly totals: {
    readonly tenants: number;
    readonly failed: number;
    readonly rowsRead: number;
    readonly rowsWritten: number;
    readonly rowsRejected: number;
  };
}

export interface CompactTenantsOptions {
  /** Tenant ids, or 'all' for every tenant with staging objects on that date. */
  readonly tenants: readonly string[] | 'all';
  readonly concurrency: number;
  /** Called as each tenant finishes (progress). */
  readonly onResult?: (result: PartitionResult) => void;
  /** Also re-compact the days this far back whose staging changed after their manifest (late data). */
  readonly lateLookbackDays?: number;
  /** Split a tenant-day with at least this many staging bytes across tasks (splitShapeFor); 0 or unset: never. */
  readonly splitThresholdBytes?: number;
  /**
   * An intraday run (planIntraday): only the open days' partitions that gained staging since their last
   * commit; `dateInput` is then today in JST.
   */
  readonly intraday?: boolean;
}

/** The run's abort (SIGINT/SIGTERM): no partition starts after it; running ones see it through their lease. */
export type RunDeps = CompactionDeps & { readonly signal?: AbortSignal };

/**
 * Compacts one JST day for many tenants, at most `concurrency` at a time on one DuckDB instance.
 * A tenant that fails is reported in its result; it never stops the others.
 */
export async function compactTenants(
  deps: RunDeps & { db: DuckDBInstance; settings?: CompactionSettings },
  dateInput: string,
  options: CompactTenantsOptions,
): Promise<RunSummary> {
  const date = parseDate(dateInput);
  const named = options.tenants === 'all' ? 'all' : [...new Set(options.tenants)];
  await removeDeadLeases(deps.store, named, (deps.now ?? Date.now)());
  // what the planner reads (intraday: run manifests and staging listings; every tenant: the staging listings)
  // each partition's plan would read again moments later
  const reads = options.intraday || named === 'all' ? runReads() : undefined;
  const planned = options.intraday
    ? await planIntraday(deps.store, named, (deps.now ?? Date.now)(), await currentSnapshot(deps), reads)
    : await planPartitions(deps.store, date, named, options.lateLookbackDays ?? 0, reads);
  // many partitions in one process: read the whole table once; each partition then brings it forward
  if (planned.length > 1 && !options.intraday) await currentSnapshot(deps);
  const threshold = options.splitThresholdBytes ?? 0;
  const jobs =
    threshold > 0
      ? await mapLimit(planned, 8, async (p) => {
          const stagingBytes = await measuredStagingBytes(deps.store, p);
          return withSplit({ ...p, stagingBytes }, stagingBytes, threshold);
        })
      : planned;
  const restoreThreads = await threadsForSmallPartitions(deps.db, jobs, options.concurrency);
  try {
    return summarise(date, await compactJobs(deps, jobs, { ...options, ...(reads ? { reads } : {}) }));
  } finally {
    await restoreThreads();
  }
}

/** A partition with at most this many bytes of staging is small: one DuckDB thread merges it in about a second. */
export const SMALL_PARTITION_BYTES = 64 * 1024 * 1024;

/**
 * When a run compacts at least `concurrency` partitions and every one is small, each statement gets
 * ⌈threads / concurrency⌉ DuckDB threads instead of all of them: the partitions running side by side keep
 * the cores busy, and a small statement split across threads spends more CPU on handing work between them
 * than it saves (measured: 100 partitions of 1,000 messages took ~20% less CPU with 1 thread than with 2 at
 * concurrency 4; docs/PERFORMANCE.md 6h). Returns the step that restores the instance's setting.
 */
async function threadsForSmallPartitions(
  db: DuckDBInstance,
  jobs: readonly PartitionJob[],
  concurrency: number,
): Promise<() => Promise<void>> {
  const small = jobs.every((j) => j.stagingBytes !== undefined && j.stagingBytes <= SMALL_PARTITION_BYTES && !j.split);
  if (jobs.length < Math.max(2, concurrency) || !small) return async () => undefined;
  const setThreads = (threads: number) =>
    withConnection(db, (connection) => connection.run(`SET threads = ${Math.max(1, Math.floor(threads))}`).then(() => undefined));
  const configured = await withConnection(db, async (connection) =>
    Number((await connection.runAndReadAll("SELECT current_setting('threads')")).getRows()[0]?.[0]),
  );
  const narrowed = Math.ceil(configured / Math.max(1, concurrency));
  if (!Number.isSafeInteger(configured) || narrowed >= configured) return async () => undefined;
  await setThreads(narrowed);
  return () => setThreads(configured);
}

/** The job with its split shape when its staging bytes reach the threshold (splitShapeFor). */
export function withSplit<J extends PartitionJob>(job: J, stagingBytes: number, thresholdBytes: number): J {
  const split = splitShapeFor(stagingBytes, thresholdBytes);
  return split ? { ...job, split } : job;
}

/** Bytes of staging data a partition reads now (the late-data planner measured its partitions already). */
export async function measuredStagingBytes(store: ObjectStore, job: PartitionJob | StalePartition): Promise<number> {
  if (job.stagingBytes !== undefined) return job.stagingBytes;
  if (tenantIdProblem(job.tenant)) return 0;
  const objects = await listAll(store, stagingPrefix(job.tenant, job.date));
  return objects.filter((o) => isStagingDataKey(o.key)).reduce((n, o) => n + o.size, 0);
}

/**
 * The partitions of one run, each once: the target day for every named tenant (or every tenant with staging),
 * then every earlier partition the planner finds (lateLookbackDays 0 = none; Infinity = no bound). The CLI,
 * the single-invocation Lambda and the fan-out's plan step (src/jobs/fanOut.ts) all plan through this. With
 * `reads`, the staging listing of each tenant's target day (every tenant in staging) is kept there for the
 * partition's plan (RunReads: an object staged after it is folded in by the next run).
 */
export async function planPartitions(
  store: ObjectStore,
  date: string,
  tenants: readonly string[] | 'all',
  lateLookbackDays: number,
  reads?: RunReads,
): Promise<(PartitionJob | StalePartition)[]> {
  const named = tenants === 'all' ? 'all' : [...new Set(tenants)];
  // every tenant in staging: its listing already gave the bytes, so the split check lists nothing again
  const jobs: (PartitionJob | StalePartition)[] =
    named === 'all' ? await stagedTenantDays(store, date, reads) : named.map((tenant) => ({ tenant, date }));
  if (lateLookbackDays > 0) jobs.push(...(await findLatePartitions(store, named, date, lateLookbackDays)));
  return uniqueJobs(jobs);
}

const JST_OFFSET_MS = 9 * 3_600_000;
const DAY_MS = 24 * 3_600_000;

/** 02:00 JST, when the nightly run closes the previous day, in minutes after JST midnight. */
export const NIGHTLY_CLOSE_MINUTES = 2 * 60;

/**
 * The JST days an intraday run at `now` compacts: today, and yesterday until the nightly run (02:00 JST) has
 * closed it. Oldest first.
 */
export function openDays(now: number): string[] {
  const today = targetDate(now, 0);
  const jstMinutes = Math.floor(((now + JST_OFFSET_MS) % DAY_MS) / 60_000);
  return jstMinutes < NIGHTLY_CLOSE_MINUTES ? [addDays(today, -1), today] : [today];
}

/**
 * The partitions an intraday run compacts (`makoto-lake compact --today`, the scheduled intraday runs): the
 * open days' partitions (openDays) whose staging holds an object their current table version has not folded
 * in, or that are not in the table yet — the nightly planner's test (planCompaction), on those days only.
 */
export async function planIntraday(
  store: ObjectStore,
  tenants: readonly string[] | 'all',
  now: number,
  snapshot?: TableSnapshot,
  reads?: RunReads,
): Promise<(StalePartition & { readonly incremental: true })[]> {
  const days = openDays(now);
  const jobs = await planCompaction(store, tenants, {
    earliest: days[0],
    ...(snapshot ? { snapshot } : {}),
    ...(reads ? { reads } : {}),
  });
  // an hourly run costs what was captured since the last one: only the staging not folded in yet is read
  return uniqueJobs(jobs.filter((job) => days.includes(job.date))).map((job) => ({ ...job, incremental: true as const }));
}

/** One job per tenant-day (a tenant named twice, or a late day also planned as the target): the first wins. */
export function uniqueJobs<J extends PartitionJob>(jobs: readonly J[]): J[] {
  const seen = new Set<string>();
  return jobs.filter((job) => {
    const key = `${job.tenant}\u0000${job.date}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** One partition to compact; `reason` says why a day other than the target is included. */
export interface PartitionJob {
  readonly tenant: string;
  readonly date: string;
  readonly reason?: string;
  /** Compact it as a split (runSplit, all tasks in this process) instead of one pass. */
  readonly split?: SplitShape;
  /** Bytes of its staging data when the planner listed them (measuredStagingBytes then lists nothing). */
  readonly stagingBytes?: number;
  /** Read only the staging its current version has not folded in (an intraday run; compactPartition). */
  readonly incremental?: boolean;
}

/**
 * Compacts the jobs with bounded concurrency; a failure becomes that job's result and stops nothing.
 * Once `deps.signal` is aborted no job starts: each remaining one is reported failed as "not started".
 */
export async function compactJobs(
  deps: RunDeps,
  jobs: readonly PartitionJob[],
  options: Pick<CompactTenantsOptions, 'concurrency' | 'onResult'> & { readonly reads?: RunReads },
): Promise<PartitionResult[]> {
  const settled = await mapSettled(jobs, options.concurrency, async (job) => {
    if (deps.signal?.aborted) {
      const reason = deps.signal.reason;
      throw new RunAbortedError(`not started: ${reason instanceof Error ? reason.message : String(reason)}`, {
        context: { tenant: job.tenant, date: job.date },
      });
    }
    const compacted = job.split
      ? await runSplit(deps, job.tenant, job.date, job.split)
      : await compactPartition(deps, job.tenant, job.date, {
          ...(job.incremental ? { incremental: true } : {}),
          ...(options.reads ? { reads: options.reads } : {}),
        });
    const result = { ...compacted, ...(job.reason ? { reason: job.reason } : {}) };
    options.onResult?.(result);
    return result;
  });
  return settled.map((outcome, i): PartitionResult => {
    if (outcome.status === 'fulfilled') return outcome.value;
    const job = jobs[i] as PartitionJob;
    const status = outcome.reason instanceof PartitionLockedError ? 'locked' : 'failed';
    const failed = {
      ...emptyResult({ tenant: job.tenant, date: job.date, runId: '' }, status, 0, {}, errorMessage(outcome.reason)),
      ...(job.reason ? { reason: job.reason } : {}),
    };
    options.onResult?.(failed);
    return failed;
  });
}

export function summarise(date: string, results: PartitionResult[]): RunSummary {
  const failed = results.filter(resultFailed).length;
  return {
    date,
    ok: failed === 0,
    results,
    totals: {
      tenants: results.length,
      failed,
      rowsRead: results.reduce((n, r) => n + r.rowsRead, 0),
      rowsWritten: results.reduce((n, r) => n + r.rowsWritten, 0),
      rowsRejected: results.reduce((n, r) => n + r.rowsRejected, 0),
    },
  };
}

/**
 * The tenant-days with staging data objects on `date`, each with their bytes: one folder listing, then one
 * listing per tenant (a folder whose name is not a valid tenant id is returned unmeasured, to fail loudly).
 * With `reads`, each listed tenant-day's staging data objects are kept there (RunReads.staging).
 */
export async function stagedTenantDays(store: ObjectStore, date: string, reads?: RunReads): Promise<PartitionJob[]> {
  const jobs: PartitionJob[] = [];
  for await (const folder of store.listFolders(STAGING_ROOT)) {
    if (!folder.startsWith('tenant_id=')) continue;
    const tenant = folder.slice('tenant_id='.length);
    if (tenantIdProblem(tenant)) {
      jobs.push({ tenant, date });
      continue;
    }
    let objects = 0;
    let stagingBytes = 0;
    const data: ObjectInfo[] = [];
    for await (const o of store.list(stagingPrefix(tenant, date))) {
      objects++;
      if (!isStagingDataKey(o.key)) continue;
      stagingBytes += o.size;
      data.push(o);
    }
    if (objects > 0) jobs.push({ tenant, date, stagingBytes });
    if (objects > 0) reads?.staging.set(runReadsKey(tenant, date), data);
  }
  return jobs;
}
