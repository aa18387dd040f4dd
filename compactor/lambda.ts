/**
 * Lambda entry point of the nightly compaction (template.yaml: `lambda.handler`, built from
 * compactor/lambda.ts). Thin: event → (date, tenants) → runCompaction → summaryJson.
 *
 * - EventBridge schedule (`cron(0 17 * * ? *)` = 02:00 JST): the day TARGET_DATE_OFFSET from the
 *   schedule's own time (so a late retry of the 02:00 event still compacts the same day), for TENANT_ID.
 * - Manual: `aws lambda invoke --payload '{"target_date": "2025-08-11", "tenants": ["acme"]}'`; every
 *   field optional (`"tenants": "*"` = every tenant found in staging; `"late": true` also re-compacts
 *   earlier days whose staging changed, as the schedule always does).
 * - One job of the nightly state machine (`{"job": {…}, "run": {…}}`, compactor/nightly.asl.json): one
 *   tenant-day, its result recorded under `runs/`; see runJobEvent.
 * - The nightly privacy step (`{"privacy": true}`, the state machine's first task): see runPrivacyEvent.
 * - One task of a split job (`{"split_task": {"action": "start" | "map" | "reduce" | "commit" | "abandon", …},
 *   "run": {…}}`, the state machine's split branch): see runSplitTaskEvent.
 *
 * A failed tenant never stops the others; once all finished the invocation fails (so the Errors alarm fires)
 * with the whole summary in its error message. Logs are Powertools JSON lines, metrics EMF (docs/AWS.md).
 */
import { availableParallelism } from 'node:os';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import {
  isJobPayload,
  isPrivacyPayload,
  parseCompactionPayload,
  parseJobPayload,
  parsePrivacyPayload,
} from '../src/app/compactionPayload.js';
import { recordJobResult, runJob, withCompactionDeps } from '../src/app/jobs.js';
import { engineLogFields, partitionLogFields } from '../src/app/logFields.js';
import {
  compactionMetrics,
  METRIC_NAMESPACE,
  METRIC_SERVICE,
  type MetricPoint,
  type MetricSource,
  SOURCE_DIMENSION,
  statusMetrics,
} from '../src/app/metrics.js';
import { PrivacyStepFailedError, privacyFailure, runNightlyPrivacy } from '../src/app/nightlyPrivacy.js';
import { partitionJson, summaryJson } from '../src/app/report.js';
import { runCompaction } from '../src/app/runCompaction.js';
import { isSplitTaskPayload, parseSplitTaskPayload, runSplitTask, splitTaskName } from '../src/app/splitTasks.js';
import { statusAfterRun } from '../src/app/status.js';
import type { PartitionResult } from '../src/compaction/compactPartition.js';
import { resultFailed } from '../src/compaction/resultFailed.js';
import type { SplitRef } from '../src/compaction/splitPartition.js';
import { type Config, type Env, loadConfig } from '../src/config.js';
import type { NightlyErasureReport } from '../src/erase/nightly.js';
import { CompactionError } from '../src/errors.js';
import type { ObjectStore } from '../src/store/ObjectStore.js';
import { targetDate } from '../src/time/jst.js';
import { newRunId } from '../src/time/runId.js';
import { createStore } from '../stores/createStore.js';

/** The manual payload (the seed's `{"target_date": ...}`, plus tenants and late); see parseCompactionPayload. */
export interface CompactorPayload {
  readonly target_date?: string;
  readonly tenants?: readonly string[] | '*';
  readonly late?: boolean;
  /** The intraday schedule's payload (template.yaml, CompactorFunction event `Intraday`): today's changed partitions. */
  readonly intraday?: boolean;
}

export type CompactionSummaryJson = ReturnType<typeof summaryJson>;

export interface CompactorDeps {
  readonly config: Config;
  readonly store: ObjectStore;
  readonly now?: () => number;
  /** JSON log lines (Powertools); default: one Logger per container. */
  readonly logger?: Logger;
  /** CloudWatch EMF (Powertools); default: one Metrics per container. */
  readonly metrics?: Metrics;
}

/** A compaction run in which at least one tenant failed; `summary` is what the run returned. */
export class CompactionRunFailedError extends CompactionError {}

/** What an invocation asks for: the date, the tenants and whether late days are re-checked. */
export function compactionRequest(
  event: unknown,
  config: Config,
  now: number,
): { date: string; tenants: readonly string[] | 'all'; late: boolean; intraday?: boolean } {
  const e = event as Record<string, unknown> | null | undefined;
  if (e && typeof e === 'object' && (e.source === 'aws.events' || e['detail-type'] === 'Scheduled Event')) {
    // the nightly run: the day before the schedule's own time, plus any late data of the days before it
    const at = typeof e.time === 'string' ? Date.parse(e.time) : Number.NaN;
    return { date: targetDate(Number.isFinite(at) ? at : now, config.targetDateOffset), tenants: config.tenants, late: true };
  }
  const payload = parseCompactionPayload(event);
  if (payload.intraday)
    return { date: targetDate(now, 0), tenants: payload.tenants ?? config.tenants, late: false, intraday: true };
  return {
    date: payload.date ?? targetDate(now, config.targetDateOffset),
    tenants: payload.tenants ?? config.tenants,
    late: payload.late,
  };
}

/**
 * Runs the compaction an event asks for; throws CompactionRunFailedError after all tenants finished if any
 * failed. Logs one JSON line per partition (tenant_id, dt, run_id, status, rows, duration) with the request
 * id of `context`, and publishes the run's metrics (src/app/metrics.ts) as one EMF blob.
 */
export async function runCompactorEvent(event: unknown, deps: CompactorDeps, context?: Context): Promise<CompactionSummaryJson> {
  const now = deps.now ?? Date.now;
  const logger = deps.logger ?? defaultLogger();
  const metrics = deps.metrics ?? defaultMetrics();
  if (context) logger.addContext(context);
  const started = now();
  logger.resetKeys();
  logger.appendKeys({ run_id: newRunId(started) });
  const { date, tenants, late, intraday } = compactionRequest(event, deps.config, started);
  logger.info('compaction started', { dt: date, tenants, late, ...(intraday ? { intraday } : {}), store: deps.store.location });
  const summary = await runCompaction({
    store: deps.store,
    config: deps.config,
    date,
    tenants,
    late,
    ...(intraday ? { intraday } : {}),
    now,
    onResult: (r) => logPartition(logger, r),
    log: (name, fields) =>
      WARNING_EVENTS.has(name) ? logger.warn(name, engineLogFields(fields)) : logger.debug(name, engineLogFields(fields)),
  });
  const json = summaryJson(summary);
  publishMetrics(metrics, compactionMetrics(summary, now() - started));
  // `makoto-lake status` over the partitions just run (failed ones are counted above) feeds PartitionsNeedingAttention
  await checkStatus(deps.store, summary.results, now(), logger, metrics);
  const failed = json.tenants.filter(resultFailed).map((t) => t.tenant_id);
  logger[summary.ok ? 'info' : 'error']('compaction finished', { dt: date, ok: summary.ok, totals: json.totals, failed });
  if (!summary.ok) {
    throw new CompactionRunFailedError(
      `compaction of ${date} failed for ${failed.length} of ${json.totals.tenants} tenants (${failed.join(', ')}): ${JSON.stringify(json)}`,
      { context: { date, failed } },
    );
  }
  return json;
}

/**
 * `makoto-lake status` over the partitions just run (failed ones are counted by the run) feeds
 * PartitionsNeedingAttention. A status check that cannot finish (the store refuses a read) is logged as an
 * error and skipped: it never fails a run whose partitions all committed.
 */
export async function checkStatus(
  store: ObjectStore,
  results: readonly PartitionResult[],
  at: number,
  logger: Logger,
  metrics: Metrics,
): Promise<void> {
  const checked = await statusAfterRun(store, results, at);
  if ('error' in checked) {
    logger.error('status check failed', { error: checked.error, partitions: checked.checked });
    return;
  }
  publishMetrics(metrics, statusMetrics(checked.status), 'status');
  const needs = checked.status.needs_attention;
  logger[needs > 0 ? 'warn' : 'info']('status checked', { needs_attention: needs });
}

/** Engine events worth a warning; the rest are debug detail (the partition line already says it). */
const WARNING_EVENTS = new Set(['manifest.unreadable']);

function logPartition(logger: Logger, r: PartitionResult): void {
  const level = r.status === 'failed' ? 'error' : r.status === 'locked' ? 'warn' : 'info';
  logger[level]('partition finished', partitionLogFields(r));
}

export function publishMetrics(metrics: Metrics, points: readonly MetricPoint[], source: MetricSource = 'compaction'): void {
  metrics.addDimension(SOURCE_DIMENSION, source);
  for (const p of points) metrics.addMetric(p.name, p.unit, p.value);
  metrics.publishStoredMetrics();
}

let logger: Logger | undefined;
let metrics: Metrics | undefined;
export const defaultLogger = (): Logger => {
  logger ??= new Logger({ serviceName: METRIC_SERVICE });
  return logger;
};
export const defaultMetrics = (): Metrics => {
  metrics ??= new Metrics({ namespace: METRIC_NAMESPACE, serviceName: METRIC_SERVICE });
  return metrics;
};

/** Lambda gives one vCPU per 1,769 MB of memory, up to six. */
const MB_PER_VCPU = 1769;

/**
 * The config as the compactor runs it on Lambda: unless DUCKDB_MEMORY_LIMIT / DUCKDB_THREADS / TEMP_DIR
 * are set, DuckDB gets most of the function's memory (the Node runtime and SDK keep the rest), a thread per
 * vCPU, and its work directories under /tmp (the only writable place).
 */
export function lambdaConfig(env: Env, cpus = availableParallelism()): Config {
  const config = loadConfig(env);
  const memoryMb = Number(env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE);
  if (!Number.isInteger(memoryMb) || memoryMb <= 0) return config;
  const set = (name: string) => (env[name] ?? '').trim() !== '';
  const duckdbMb = Math.max(128, Math.min(Math.floor(memoryMb * 0.75), memoryMb - 256));
  return {
    ...config,
    tempDir: set('TEMP_DIR') ? config.tempDir : '/tmp',
    duckdb: {
      memoryLimit: set('DUCKDB_MEMORY_LIMIT') ? config.duckdb.memoryLimit : `${duckdbMb}MB`,
      threads: set('DUCKDB_THREADS') ? config.duckdb.threads : Math.max(1, Math.min(cpus, 6, Math.ceil(memoryMb / MB_PER_VCPU))),
    },
  };
}

/** A fan-out job whose compaction failed (or found the partition locked); Step Functions retries it. */
export class CompactionJobFailedError extends CompactionError {}

/**
 * One job of the nightly Step Functions run (`{"job": {…}, "run": {…}}`, docs/AWS.md): compacts the
 * tenant-day, records the result under `runs/<date>/<run>/results/` (each attempt replaces the last), logs
 * the partition line with the fan-out run id, and throws CompactionJobFailedError when it failed, so the
 * state machine's Retry runs it again. The run's metrics are published once, by the summary step.
 */
export async function runJobEvent(
  event: unknown,
  deps: CompactorDeps,
  context?: Context,
): Promise<ReturnType<typeof partitionJson>> {
  const now = deps.now ?? Date.now;
  const logger = deps.logger ?? defaultLogger();
  if (context) logger.addContext(context);
  const { job, run } = parseJobPayload(event);
  logger.resetKeys();
  logger.appendKeys({ run_id: run.runId });
  const result = await withCompactionDeps(deps.config, deps.store, now, (compaction) => runJob(compaction, job));
  await recordJobResult(deps.store, run, result);
  logPartition(logger, result);
  if (resultFailed(result)) {
    throw new CompactionJobFailedError(`compaction of ${job.tenant} ${job.date} ${result.status}: ${result.error ?? ''}`, {
      context: { run: run.runId, tenant: job.tenant, date: job.date },
    });
  }
  return partitionJson(result);
}

/** What a split task returns to the state machine (its Payload). */
export type SplitTaskJson =
  | { readonly ref: SplitRef }
  | { readonly done: string }
  | { readonly result: ReturnType<typeof partitionJson> }
  | ReturnType<typeof partitionJson>;

/**
 * One task of a split job (`{"split_task": {…}, "run": {…}}`, src/app/splitTasks.ts), as the state
 * machine's split branch invokes it:
 *
 * - `start` returns `{"ref": {…}}` – the Map states iterate over its ranges and buckets – or, when it ended
 *   the job itself (no staging; partition locked), records the result and returns `{"result": {…}}`, or
 *   throws CompactionJobFailedError for a locked or failed one, retried like a compaction job;
 * - `map` / `reduce` return `{"done": "range 2 of 4"}`; a failure throws as it is (the task is idempotent,
 *   the definition retries it, then catches it and abandons the split);
 * - `commit` records the job's result and returns it (the partition JSON); a failed or locked commit is
 *   recorded too and throws CompactionJobFailedError (retried, then abandoned);
 * - `abandon` releases the split (lease, work folder), records the job as failed and returns its result.
 */
export async function runSplitTaskEvent(event: unknown, deps: CompactorDeps, context?: Context): Promise<SplitTaskJson> {
  const now = deps.now ?? Date.now;
  const logger = deps.logger ?? defaultLogger();
  if (context) logger.addContext(context);
  const { task, run } = parseSplitTaskPayload(event);
  logger.resetKeys();
  logger.appendKeys({ run_id: run.runId });
  const outcome = await withCompactionDeps(deps.config, deps.store, now, (compaction) => runSplitTask(compaction, task));
  const fields = { tenant_id: task.job.tenant, dt: task.job.date, task: splitTaskName(task) };
  if ('ref' in outcome) {
    logger.info('split started', {
      ...fields,
      split_id: outcome.ref.splitId,
      ranges: outcome.ref.ranges,
      buckets: outcome.ref.buckets,
    });
    return { ref: outcome.ref };
  }
  if ('done' in outcome) {
    logger.info('split task finished', { ...fields, done: outcome.done });
    return { done: outcome.done };
  }
  const { result } = outcome;
  await recordJobResult(deps.store, run, result);
  logPartition(logger, result);
  if (task.action !== 'abandon' && resultFailed(result)) {
    throw new CompactionJobFailedError(
      `${task.action} of the split of ${task.job.tenant} ${task.job.date} ${result.status}: ${result.error ?? ''}`,
      { context: { run: run.runId, tenant: task.job.tenant, date: task.job.date } },
    );
  }
  return task.action === 'start' ? { result: partitionJson(result) } : partitionJson(result);
}

/**
 * The nightly privacy step (`{"privacy": true}`, the state machine's first state, before the plan): re-applies
 * the erases of the last ERASE_STANDING_DAYS days, offboards again a refused tenant that has objects, applies
 * LAKE_RETENTION_DAYS (src/erase/nightly.ts). Returns the report; throws PrivacyStepFailedError (after all
 * three were tried) when any could not finish, so the Errors alarm fires and the state machine's Catch hands
 * the error to the summary step – the night's compaction runs either way.
 */
export async function runPrivacyEvent(event: unknown, deps: CompactorDeps, context?: Context): Promise<NightlyErasureReport> {
  const now = deps.now ?? Date.now;
  const logger = deps.logger ?? defaultLogger();
  if (context) logger.addContext(context);
  parsePrivacyPayload(event);
  logger.resetKeys();
  const report = await runNightlyPrivacy(deps.config, deps.store, now, (name, fields) =>
    logger[name.endsWith('_failed') ? 'warn' : 'debug'](name, fields),
  );
  const failure = privacyFailure(report);
  logger[failure ? 'error' : 'info']('privacy step finished', { ...report });
  if (failure) throw new PrivacyStepFailedError(failure, { context: { errors: report.errors } });
  return report;
}

/**
 * The Lambda handler: config from the function's environment, the store it selects, one run – or one job
 * or split task when Step Functions passes one (the manual `{"target_date": …}` payload works as before).
 */
export async function handler(
  event: { job: unknown; run: unknown },
  context?: Context,
): Promise<ReturnType<typeof partitionJson>>;
export async function handler(event: { split_task: unknown; run: unknown }, context?: Context): Promise<SplitTaskJson>;
export async function handler(event: { privacy: true }, context?: Context): Promise<NightlyErasureReport>;
export async function handler(event: unknown, context?: Context): Promise<CompactionSummaryJson>;
export async function handler(
  event: unknown,
  context?: Context,
): Promise<CompactionSummaryJson | ReturnType<typeof partitionJson> | SplitTaskJson | NightlyErasureReport> {
  const config = lambdaConfig(process.env);
  const deps = { config, store: await createStore(config) };
  if (isPrivacyPayload(event)) return runPrivacyEvent(event, deps, context);
  if (isSplitTaskPayload(event)) return runSplitTaskEvent(event, deps, context);
  return isJobPayload(event) ? runJobEvent(event, deps, context) : runCompactorEvent(event, deps, context);
}
