/**
 * Lambda entry point of the nightly compaction (template.yaml: `lambda.handler`, built from
 * compactor/lambda.ts). Thin: event → a task of the job model (src/jobs/task.ts) → its outcome; a whole run
 * ends in endRun (src/jobs/endRun.ts), as every driver's does. Each invocation runs under Powertools' Logger
 * middleware (withInvocation).
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
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { type Config, type Env, loadConfig } from '../src/core/config.js';
import { CompactionError } from '../src/core/errors.js';
import { newRunId } from '../src/core/time/runId.js';
import type { PartitionResult } from '../src/engine/compactPartition.js';
import { resultFailed } from '../src/engine/resultFailed.js';
import type { SplitRef } from '../src/engine/splitPartition.js';
import { isJobPayload, isPrivacyPayload, parseJobPayload, parsePrivacyPayload } from '../src/jobs/compactionPayload.js';
import { endRun, type RunSink } from '../src/jobs/endRun.js';
import type { NightlyErasureReport } from '../src/jobs/erase/nightly.js';
import { recordJobResult } from '../src/jobs/fanOut.js';
import { PrivacyStepFailedError } from '../src/jobs/nightlyPrivacy.js';
import { privacyFailure } from '../src/jobs/privacyOutcome.js';
import { isSplitTaskPayload, parseSplitTaskPayload, type SplitTaskOutcome, splitTaskName } from '../src/jobs/splitTasks.js';
import { type RunRequest, runRequest, runTask, type TaskEnv } from '../src/jobs/task.js';
import { engineLogFields } from '../src/ops/logFields.js';
import { METRIC_NAMESPACE, METRIC_SERVICE, type MetricPoint, type MetricSource, SOURCE_DIMENSION } from '../src/ops/metrics.js';
import { type PartitionJson, partitionJson, partitionLine } from '../src/ops/partitionView.js';
import type { summaryJson } from '../src/ops/report.js';
import type { ObjectStore } from '../src/ports/store/ObjectStore.js';
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

/** What an invocation asks for: the date, the tenants and whether late days are re-checked (src/jobs/task.ts). */
export const compactionRequest: (event: unknown, config: Config, now: number) => RunRequest = runRequest;

/**
 * Runs the compaction an event asks for in this invocation (a `run` task) and ends it with endRun: throws
 * CompactionRunFailedError after all tenants finished if any failed. Logs one JSON line per partition
 * (tenant_id, dt, run_id, status, rows, duration) with the request id of `context`, and publishes the run's
 * metrics (src/ops/metrics.ts) as EMF.
 */
export async function runCompactorEvent(event: unknown, deps: CompactorDeps, context?: Context): Promise<CompactionSummaryJson> {
  const now = deps.now ?? Date.now;
  const logger = deps.logger ?? defaultLogger();
  return withInvocation(logger, event, context, async () => {
    const started = now();
    logger.appendKeys({ run_id: newRunId(started) });
    const request = compactionRequest(event, deps.config, started);
    const { date, tenants, late, intraday } = request;
    logger.info('compaction started', { dt: date, tenants, late, ...(intraday ? { intraday } : {}), store: deps.store.location });
    const run = await runTask(
      { ...taskEnv(deps), onResult: (r) => logPartition(logger, r), log: (name, fields) => logEngineEvent(logger, name, fields) },
      { kind: 'run', request },
    );
    const end = await endRun(run, {
      store: deps.store,
      sink: lambdaSink(logger, deps.metrics ?? defaultMetrics()),
      startedAt: started,
      now,
    });
    if (end.failure) throw new CompactionRunFailedError(end.failure, { context: { date, failed: end.failed } });
    return end.json;
  });
}

/**
 * One invocation under Powertools' Logger middleware (`injectLambdaContext` of
 * @aws-lambda-powertools/logger/middleware, run without middy): the Lambda context on every line, the
 * invocation's own keys (its run_id) appended by `work`, and reset when it ends, returned or thrown.
 */
export async function withInvocation<T>(
  logger: Logger,
  event: unknown,
  context: Context | undefined,
  work: () => Promise<T>,
): Promise<T> {
  const middleware = injectLambdaContext(logger, { resetKeys: true });
  const request: Parameters<NonNullable<typeof middleware.before>>[0] = {
    event,
    context: context as Context,
    response: undefined,
    error: undefined,
    internal: {},
  };
  // a direct call (a test, a replay) has no Lambda context to add
  if (context) await middleware.before?.(request);
  try {
    request.response = await work();
    await middleware.after?.(request);
    return request.response as T;
  } catch (error) {
    request.error = error as Error;
    await middleware.onError?.(request);
    throw error;
  }
}

/** Where a Lambda's run lines and metrics go: the Powertools Logger and EMF (one blob per source). */
export function lambdaSink(logger: Logger, metrics: Metrics): RunSink {
  return {
    log: (level, message, fields = {}) => logger[level](message, { ...fields }),
    metrics: (source, points) => publishMetrics(metrics, points, source),
  };
}

/** What the task handlers need from the Lambda's deps. */
export const taskEnv = (deps: CompactorDeps): TaskEnv => ({ config: deps.config, store: deps.store, now: deps.now ?? Date.now });

/** Engine events worth a warning; the rest are debug detail (the partition line already says it). */
const WARNING_EVENTS = new Set(['manifest.unreadable']);

function logEngineEvent(logger: Logger, name: string, fields: Record<string, unknown>): void {
  if (WARNING_EVENTS.has(name)) logger.warn(name, engineLogFields(fields));
  else logger.debug(name, engineLogFields(fields));
}

function logPartition(logger: Logger, r: PartitionResult): void {
  const [level, message, fields] = partitionLine(r);
  logger[level](message, fields);
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
 * One job of the nightly Step Functions run (`{"job": {…}, "run": {…}}`, docs/AWS.md): a `compact` task; its
 * result is recorded under `runs/<date>/<run>/results/` (each attempt replaces the last), logged with the
 * fan-out run id, and thrown as CompactionJobFailedError when it failed, so the state machine's Retry runs it
 * again. The run's metrics are published once, by the summary step.
 */
export async function runJobEvent(event: unknown, deps: CompactorDeps, context?: Context): Promise<PartitionJson> {
  const logger = deps.logger ?? defaultLogger();
  return withInvocation(logger, event, context, async () => {
    const { job, run } = parseJobPayload(event);
    logger.appendKeys({ run_id: run.runId });
    const result = await runTask(taskEnv(deps), { kind: 'compact', job, run });
    await recordJobResult(deps.store, run, result);
    logPartition(logger, result);
    if (resultFailed(result)) {
      throw new CompactionJobFailedError(`compaction of ${job.tenant} ${job.date} ${result.status}: ${result.error ?? ''}`, {
        context: { run: run.runId, tenant: job.tenant, date: job.date },
      });
    }
    return partitionJson(result);
  });
}

/** What a split task returns to the state machine (its Payload). */
export type SplitTaskJson =
  | { readonly ref: SplitRef }
  | { readonly done: string }
  | { readonly result: PartitionJson }
  | PartitionJson;

/**
 * One task of a split job (`{"split_task": {…}, "run": {…}}`, src/jobs/splitTasks.ts), as the state
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
  const logger = deps.logger ?? defaultLogger();
  return withInvocation(logger, event, context, async () => {
    const { task, run } = parseSplitTaskPayload(event);
    logger.appendKeys({ run_id: run.runId });
    const outcome: SplitTaskOutcome = await runTask(taskEnv(deps), { kind: 'split', task, run });
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
  });
}

/**
 * The nightly privacy step (`{"privacy": true}`, the state machine's first state, before the plan): a
 * `privacy` task – re-applies the erases of the last ERASE_STANDING_DAYS days, offboards again a refused
 * tenant that has objects, applies LAKE_RETENTION_DAYS (src/jobs/erase/nightly.ts). Returns the report; throws
 * PrivacyStepFailedError (after all three were tried) when any could not finish, so the Errors alarm fires and
 * the state machine's Catch hands the error to the summary step – the night's compaction runs either way.
 */
export async function runPrivacyEvent(event: unknown, deps: CompactorDeps, context?: Context): Promise<NightlyErasureReport> {
  const logger = deps.logger ?? defaultLogger();
  return withInvocation(logger, event, context, async () => {
    parsePrivacyPayload(event);
    const report = await runTask(
      { ...taskEnv(deps), log: (name, fields) => logger[name.endsWith('_failed') ? 'warn' : 'debug'](name, fields) },
      { kind: 'privacy' },
    );
    const failure = privacyFailure(report);
    logger[failure ? 'error' : 'info']('privacy step finished', { ...report });
    if (failure) throw new PrivacyStepFailedError(failure, { context: { errors: report.errors } });
    return report;
  });
}

/**
 * The Lambda handler: config from the function's environment, the store it selects, one run – or one job
 * or split task when Step Functions passes one (the manual `{"target_date": …}` payload works as before).
 */
export async function handler(event: { job: unknown; run: unknown }, context?: Context): Promise<PartitionJson>;
export async function handler(event: { split_task: unknown; run: unknown }, context?: Context): Promise<SplitTaskJson>;
export async function handler(event: { privacy: true }, context?: Context): Promise<NightlyErasureReport>;
export async function handler(event: unknown, context?: Context): Promise<CompactionSummaryJson>;
export async function handler(
  event: unknown,
  context?: Context,
): Promise<CompactionSummaryJson | PartitionJson | SplitTaskJson | NightlyErasureReport> {
  const config = lambdaConfig(process.env);
  const deps = { config, store: await createStore(config) };
  if (isPrivacyPayload(event)) return runPrivacyEvent(event, deps, context);
  if (isSplitTaskPayload(event)) return runSplitTaskEvent(event, deps, context);
  return isJobPayload(event) ? runJobEvent(event, deps, context) : runCompactorEvent(event, deps, context);
}
