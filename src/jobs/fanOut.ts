/**
 * The nightly run as a plan and independent jobs, for the orchestrators that fan it out (Step Functions,
 * Azure queues): `planJobs` lists the tenant-days to compact, `runJob` compacts one, each job reports its
 * result under `runs/<date>/<run>/results/`, and `summariseRun` turns the plan and the reports into one run
 * summary (`runs/<date>/<run>.json`). The CLI keeps running everything in one process (runCompaction).
 */
import { createHash } from 'node:crypto';
import { UsageError } from '../core/errors.js';
import { assertSplitShape, DEFAULT_SPLIT_THRESHOLD_BYTES } from '../core/splitShape.js';
import { RUN_ID_PATTERN, runJobsKey, runResultKey, runResultsPrefix, runSummaryKey } from '../core/staging/layout.js';
import { tenantIdProblem } from '../core/tenant.js';
import { parseDate } from '../core/time/jst.js';
import { newRunId } from '../core/time/runId.js';
import { mapLimit } from '../core/util/concurrency.js';
import { type CompactionDeps, emptyResult, type PartitionResult } from '../engine/compactPartition.js';
import {
  compactJobs,
  measuredStagingBytes,
  planPartitions,
  type RunSummary,
  summarise,
  withSplit,
} from '../engine/compactTenants.js';
import type { SplitShape } from '../engine/splitPartition.js';
import type { PrivacyOutcome } from '../ops/privacyOutcome.js';
import { summaryJson } from '../ops/report.js';
import { ObjectNotFoundError, PreconditionFailedError, StoreError } from '../ports/store/errors.js';
import { getBytes, listAll, type ObjectStore } from '../ports/store/ObjectStore.js';
import { requireJson } from '../ports/store/readJson.js';
import { readPrivacyOutcome } from './privacyOutcome.js';

/** One tenant-day to compact; `reason` says why a day other than the target is included (late data). */
export interface CompactionJob {
  readonly tenant: string;
  readonly date: string;
  readonly reason?: string;
  /** Bytes of staging data the job reads (at planning time): how big the job is. */
  readonly stagingBytes: number;
  /**
   * Set when the job is big enough to split (stagingBytes ≥ the split threshold): K map tasks and B reduce
   * tasks (src/engine/splitPartition.ts). runJob runs them all in one process; an orchestrator may fan
   * them out instead.
   */
  readonly split?: SplitShape;
}

/** One fan-out run: its id and the JST day it was planned for. */
export interface RunRef {
  readonly runId: string;
  readonly date: string;
}

export interface PlanRequest {
  /** The target JST day. */
  readonly date: string;
  /** Tenant ids, or 'all' for every tenant with staging objects on that date. */
  readonly tenants: readonly string[] | 'all';
  /** Also plan the days this far back whose staging changed after their manifest (late data); 0 = none. */
  readonly lateLookbackDays: number;
  /**
   * Jobs with at least this many staging bytes get a `split` (SPLIT_THRESHOLD_BYTES); 0 = never split;
   * unset = DEFAULT_SPLIT_THRESHOLD_BYTES.
   */
  readonly splitThresholdBytes?: number;
}

/**
 * The jobs of one run: the target day for every requested tenant (or every tenant with staging), then
 * every earlier partition the late-data check finds, each with its staging bytes. The same partitions
 * compactTenants would compact, in the same order. A folder whose name is not a valid tenant id becomes a
 * job too, so that it fails loudly in its own result instead of vanishing.
 */
export async function planJobs(store: ObjectStore, request: PlanRequest): Promise<CompactionJob[]> {
  const partitions = await planPartitions(store, parseDate(request.date), request.tenants, request.lateLookbackDays);
  const threshold = request.splitThresholdBytes ?? DEFAULT_SPLIT_THRESHOLD_BYTES;
  return mapLimit(partitions, 8, async (p) => {
    const stagingBytes = await measuredStagingBytes(store, p);
    return withSplit({ ...p, stagingBytes }, stagingBytes, threshold);
  });
}

/**
 * The order an orchestrator should start the jobs in: largest first (ties keep the plan's order). With a
 * bounded number of workers this keeps one big tenant-day from starting last and stretching the night.
 */
export function largestFirst(jobs: readonly CompactionJob[]): CompactionJob[] {
  return jobs
    .map((job, i) => ({ job, i }))
    .sort((a, b) => b.job.stagingBytes - a.job.stagingBytes || a.i - b.i)
    .map(({ job }) => job);
}

/** A planned run: its id, its jobs (largest first) and where the job list was written. */
export interface RunPlan {
  readonly run: RunRef;
  readonly jobs: readonly CompactionJob[];
  readonly key: string;
}

/** Plans a run (planJobs, largest first) under a new run id and writes its job list; what every orchestrator starts with. */
export async function planRun(store: ObjectStore, request: PlanRequest, now: number): Promise<RunPlan> {
  const run = { runId: newRunId(now), date: parseDate(request.date) };
  const jobs = largestFirst(await planJobs(store, request));
  return { run, jobs, key: await writeRunPlan(store, run, jobs) };
}

/** Compacts one job. A failure becomes the result (status failed or locked); it is never thrown. */
export async function runJob(deps: CompactionDeps, job: CompactionJob): Promise<PartitionResult> {
  const partition = { tenant: job.tenant, date: job.date, reason: job.reason, ...(job.split ? { split: job.split } : {}) };
  const [result] = await compactJobs(deps, [partition], { concurrency: 1 });
  return result as PartitionResult;
}

/**
 * Validates a job as an orchestrator hands it over (a Map item, a queue message):
 * `{"tenant": "acme", "date": "2025-08-11", "reason": "…", "stagingBytes": 123, "split": {"ranges": 4, "buckets": 4}}`
 * (`split` optional).
 */
export function parseJob(value: unknown): CompactionJob {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(`a job must be an object like {"tenant": "acme", "date": "2025-08-11"}, got ${JSON.stringify(value)}`);
  }
  const { tenant, date, reason, stagingBytes, split, ...rest } = value as Record<string, unknown>;
  if (Object.keys(rest).length > 0) throw new UsageError(`unknown job field(s) ${Object.keys(rest).join(', ')}`);
  if (typeof tenant !== 'string' || tenant === '' || tenant.length > 1024) {
    throw new UsageError(`job.tenant must be a tenant id, got ${JSON.stringify(tenant)}`);
  }
  if (typeof date !== 'string') throw new UsageError(`job.date must be YYYY-MM-DD, got ${JSON.stringify(date)}`);
  if (reason !== undefined && typeof reason !== 'string') throw new UsageError(`job.reason must be a string`);
  const bytes = stagingBytes ?? 0;
  if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 0) {
    throw new UsageError(`job.stagingBytes must be a whole number of bytes, got ${JSON.stringify(stagingBytes)}`);
  }
  if (split !== undefined && (typeof split !== 'object' || split === null || Array.isArray(split))) {
    throw new UsageError(`job.split must be an object like {"ranges": 4, "buckets": 4}, got ${JSON.stringify(split)}`);
  }
  const { ranges, buckets, ...splitRest } = (split ?? {}) as Record<string, unknown>;
  if (Object.keys(splitRest).length > 0) throw new UsageError(`unknown job.split field(s) ${Object.keys(splitRest).join(', ')}`);
  return {
    tenant,
    date: parseDate(date, 'job.date'),
    ...(reason === undefined ? {} : { reason }),
    stagingBytes: bytes,
    ...(split === undefined ? {} : { split: assertSplitShape({ ranges, buckets } as SplitShape, 'job.split') }),
  };
}

/** Validates a run reference `{"run_id": "…", "target_date": "…"}` as the orchestrators pass it. */
export function parseRunRef(value: unknown): RunRef {
  const { run_id: runId, target_date: date } = (typeof value === 'object' && value !== null ? value : {}) as Record<
    string,
    unknown
  >;
  if (typeof runId !== 'string' || !RUN_ID_PATTERN.test(runId))
    throw new UsageError(`run_id: invalid run id ${JSON.stringify(runId)}`);
  if (typeof date !== 'string') throw new UsageError(`target_date must be YYYY-MM-DD, got ${JSON.stringify(date)}`);
  return { runId, date: parseDate(date, 'target_date') };
}

/** Writes the run's job list (a JSON array, as a Distributed Map's ItemReader reads it); returns its key. */
export async function writeRunPlan(store: ObjectStore, run: RunRef, jobs: readonly CompactionJob[]): Promise<string> {
  const key = runJobsKey(run.date, run.runId);
  await store.putBytes(key, JSON.stringify(jobs), { contentType: 'application/json' });
  return key;
}

export async function readRunPlan(store: ObjectStore, run: RunRef): Promise<CompactionJob[]> {
  const parsed = await requireJson<unknown>(store, runJobsKey(run.date, run.runId), 'job list');
  if (!Array.isArray(parsed)) throw new UsageError(`${runJobsKey(run.date, run.runId)} is not a JSON array of jobs`);
  return parsed.map(parseJob);
}

/** Where a job reports. A tenant id that cannot be a path segment is filed under a hash of itself. */
export function jobResultKey(run: RunRef, job: Pick<CompactionJob, 'tenant' | 'date'>): string {
  if (!tenantIdProblem(job.tenant)) return runResultKey(run.date, run.runId, job.tenant, job.date);
  const hash = createHash('sha256').update(job.tenant).digest('hex').slice(0, 16);
  return `${runResultsPrefix(run.date, run.runId)}invalid-tenant-${hash}/dt=${parseDate(job.date)}.json`;
}

/** Records a job's outcome for the run (a retried job replaces its earlier report). */
export async function recordJobResult(store: ObjectStore, run: RunRef, result: PartitionResult): Promise<string> {
  const key = jobResultKey(run, result);
  await store.putBytes(key, JSON.stringify(result), { contentType: 'application/json' });
  return key;
}

/** The run summary: every planned job with its reported result, or failed when it never reported. */
export interface FanOutSummary extends RunSummary {
  readonly runId: string;
  readonly planned: number;
  /** Planned jobs that never reported (their invocation crashed or timed out every time). */
  readonly missing: number;
  /** The night's privacy step, when the run had one (src/jobs/privacyOutcome.ts). */
  readonly privacy?: PrivacyOutcome;
}

export const NO_REPORT = 'no result reported: every attempt of the job crashed or timed out (see the orchestrator)';

/** Pairs the plan with the reports, in plan order; a job without a report counts as failed. */
export function summariseRun(
  run: RunRef,
  jobs: readonly CompactionJob[],
  reports: ReadonlyMap<string, PartitionResult>,
): FanOutSummary {
  let missing = 0;
  const results = jobs.map((job) => {
    const report = reports.get(jobResultKey(run, job));
    if (report) return report;
    missing++;
    return {
      ...emptyResult({ tenant: job.tenant, date: job.date, runId: '' }, 'failed', 0, {}, NO_REPORT),
      ...(job.reason ? { reason: job.reason } : {}),
    };
  });
  return { ...summarise(run.date, results), runId: run.runId, planned: jobs.length, missing };
}

/** The reports of a run so far, by key. */
export async function readJobResults(store: ObjectStore, run: RunRef): Promise<Map<string, PartitionResult>> {
  const objects = await listAll(store, runResultsPrefix(run.date, run.runId));
  const reports = await mapLimit(objects, 8, (o) => requireJson<PartitionResult>(store, o.key, 'job result'));
  return new Map(objects.map((o, i) => [o.key, reports[i] as PartitionResult]));
}

/** The summary object as written to `runs/<date>/<run>.json` (the summaryJson shape plus the run). */
export function runSummaryJson(summary: FanOutSummary) {
  return { run_id: summary.runId, jobs_planned: summary.planned, jobs_missing: summary.missing, ...summaryJson(summary) };
}

/**
 * Reads the plan and the reports and writes the run summary. `whenComplete`: only if every job reported
 * (the queue workers call this after each report; the last one writes it), else undefined. The summary
 * records the night's privacy step: `privacy` as the driver hands it over (the state machine's), else the one
 * kept under the run (Azure's daily_batch), else none. The summary is created once (ifNoneMatch): of two last
 * reporters racing, one writes it (`written: true`); a summary step retried after its write went through
 * finds it written (`written: false`).
 */
export async function writeRunSummary(
  store: ObjectStore,
  run: RunRef,
  options: { whenComplete: boolean; privacy?: PrivacyOutcome },
): Promise<{ summary: FanOutSummary; written: boolean } | undefined> {
  const [jobs, reports] = await Promise.all([readRunPlan(store, run), readJobResults(store, run)]);
  const paired = summariseRun(run, jobs, reports);
  if (options.whenComplete && paired.missing > 0) return undefined;
  const privacy = options.privacy ?? (await readPrivacyOutcome(store, run));
  const summary: FanOutSummary = privacy ? { ...paired, privacy } : paired;
  const body = `${JSON.stringify(runSummaryJson(summary), null, 2)}\n`;
  const key = runSummaryKey(run.date, run.runId);
  try {
    await store.putBytes(key, body, { ifNoneMatch: '*', contentType: 'application/json' });
    return { summary, written: true };
  } catch (error) {
    if (error instanceof PreconditionFailedError) return { summary, written: false };
    if (!(error instanceof StoreError)) throw error;
    // the outcome is unknown (a lost reply): settled by reading the summary back, never guessed
    const stored = await getBytes(store, key).catch((readError: unknown) => {
      if (readError instanceof ObjectNotFoundError) throw error;
      throw readError;
    });
    return { summary, written: stored.toString('utf8') === body };
  }
}
