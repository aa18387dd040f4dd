import type { DuckDBInstance } from '@duckdb/node-api';
import { errorMessage, PartitionLockedError, RunAbortedError } from '../errors.js';
import { isStagingDataKey, STAGING_ROOT, stagingPrefix } from '../staging/layout.js';
import { listAll, type ObjectStore } from '../store/ObjectStore.js';
import { tenantIdProblem } from '../tenant.js';
import { parseDate } from '../time/jst.js';
import { mapLimit, mapSettled } from '../util/concurrency.js';
import {
  type CompactionDeps,
  type CompactionSettings,
  compactPartition,
  emptyResult,
  type PartitionResult,
} from './compactPartition.js';
import { currentSnapshot } from './lakeTable.js';
import { findLatePartitions, type StalePartition } from './lateData.js';
import { removeDeadLeases } from './partitionLease.js';
import { runSplit, type SplitShape } from './splitPartition.js';
import { splitShapeFor } from './splitShape.js';

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
  const planned = await planPartitions(deps.store, date, named, options.lateLookbackDays ?? 0);
  // many partitions in one process: read the whole table once; each partition then brings it forward
  if (planned.length > 1) await currentSnapshot(deps);
  const threshold = options.splitThresholdBytes ?? 0;
  const jobs =
    threshold > 0
      ? await mapLimit(planned, 8, async (p) => withSplit(p, await measuredStagingBytes(deps.store, p), threshold))
      : planned;
  return summarise(date, await compactJobs(deps, jobs, options));
}

/** The job with its split shape when its staging bytes reach the threshold (splitShapeFor). */
export function withSplit<J extends PartitionJob>(job: J, stagingBytes: number, thresholdBytes: number): J {
  const split = splitShapeFor(stagingBytes, thresholdBytes);
  return split ? { ...job, split } : job;
}

/** Bytes of staging data a partition reads now (the late-data planner measured its partitions already). */
export async function measuredStagingBytes(store: ObjectStore, job: PartitionJob | StalePartition): Promise<number> {
  if ('stagingBytes' in job) return job.stagingBytes;
  if (tenantIdProblem(job.tenant)) return 0;
  const objects = await listAll(store, stagingPrefix(job.tenant, job.date));
  return objects.filter((o) => isStagingDataKey(o.key)).reduce((n, o) => n + o.size, 0);
}

/**
 * The partitions of one run, each once: the target day for every named tenant (or every tenant with staging),
 * then every earlier partition the planner finds (lateLookbackDays 0 = none; Infinity = no bound). The CLI,
 * the single-invocation Lambda and the fan-out's plan step (src/app/jobs.ts) all plan through this.
 */
export async function planPartitions(
  store: ObjectStore,
  date: string,
  tenants: readonly string[] | 'all',
  lateLookbackDays: number,
): Promise<(PartitionJob | StalePartition)[]> {
  const named = tenants === 'all' ? 'all' : [...new Set(tenants)];
  const targets = named === 'all' ? await tenantsWithStaging(store, date) : named;
  const jobs: (PartitionJob | StalePartition)[] = targets.map((tenant) => ({ tenant, date }));
  if (lateLookbackDays > 0) jobs.push(...(await findLatePartitions(store, named, date, lateLookbackDays)));
  return uniqueJobs(jobs);
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
}

/**
 * Compacts the jobs with bounded concurrency; a failure becomes that job's result and stops nothing.
 * Once `deps.signal` is aborted no job starts: each remaining one is reported failed as "not started".
 */
export async function compactJobs(
  deps: RunDeps,
  jobs: readonly PartitionJob[],
  options: Pick<CompactTenantsOptions, 'concurrency' | 'onResult'>,
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
      : await compactPartition(deps, job.tenant, job.date);
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
  const failed = results.filter((r) => r.status === 'failed' || r.status === 'locked').length;
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
 * Tenants that have staging objects for `date`: one folder listing, then one short listing per tenant.
 * Folders whose name is not a valid tenant id are returned too, so they fail loudly instead of vanishing.
 */
export async function tenantsWithStaging(store: ObjectStore, date: string): Promise<string[]> {
  const tenants: string[] = [];
  for await (const folder of store.listFolders(STAGING_ROOT)) {
    if (!folder.startsWith('tenant_id=')) continue;
    const tenant = folder.slice('tenant_id='.length);
    if (tenantIdProblem(tenant)) {
      tenants.push(tenant);
      continue;
    }
    for await (const _ of store.list(stagingPrefix(tenant, date))) {
      tenants.push(tenant);
      break;
    }
  }
  return tenants;
}
