/**
 * The tasks of a split job (docs/SCALING.md, "Splitting one huge tenant-day"), as both orchestrators hand
 * them over – a Step Functions Task's payload, an Azure queue message:
 *
 *   {"split_task": {"action": "start", "job": {…}}, "run": {"run_id": "…", "target_date": "…"}}
 *   {"split_task": {"action": "map", "job": {…}, "ref": {…}, "range": 0}, "run": {…}}
 *   {"split_task": {"action": "reduce", "job": {…}, "ref": {…}, "bucket": 3}, "run": {…}}
 *   {"split_task": {"action": "commit", "job": {…}, "ref": {…}}, "run": {…}}
 *   {"split_task": {"action": "abandon", "job": {…}, "ref": {…}, "reason": "…"}, "run": {…}}
 *
 * `job` is the planned job (its `split` shape on start), `ref` what start returned. `runSplitTask` runs one
 * task; when the job ended (start found nothing to split or the partition locked, commit, abandon) the entry
 * point records its result with `recordJobResult` under `runs/<date>/<run>/results/`, exactly where a
 * single-pass job reports, so the run summary counts it.
 */

import { UsageError } from '../core/errors.js';
import { RUN_ID_PATTERN } from '../core/staging/layout.js';
import { parseDate } from '../core/time/jst.js';
import type { CompactionDeps, PartitionResult } from '../engine/compactPartition.js';
import {
  abandonSplit,
  commitSplit,
  committedSplitResult,
  mapRange,
  reduceBucket,
  type SplitRef,
  type SplitShape,
  startSplit,
} from '../engine/splitPartition.js';
import { catchCauseMessage } from './catchCause.js';
import { type CompactionJob, parseJob, parseRunRef, type RunRef } from './fanOut.js';

export type SplitAction = 'start' | 'map' | 'reduce' | 'commit' | 'abandon';

export type SplitTask =
  | { readonly action: 'start'; readonly job: CompactionJob; readonly shape: SplitShape }
  | { readonly action: 'map'; readonly job: CompactionJob; readonly ref: SplitRef; readonly range: number }
  | { readonly action: 'reduce'; readonly job: CompactionJob; readonly ref: SplitRef; readonly bucket: number }
  | { readonly action: 'commit'; readonly job: CompactionJob; readonly ref: SplitRef }
  | { readonly action: 'abandon'; readonly job: CompactionJob; readonly ref: SplitRef; readonly reason: string };

export interface SplitTaskPayload {
  readonly task: SplitTask;
  readonly run: RunRef;
}

/** What a task did: start began a split (`ref`) or ended the job (`result`); commit and abandon end it. */
export type SplitTaskOutcome = { readonly ref: SplitRef } | { readonly result: PartitionResult } | { readonly done: string };

/** Whether a payload is a split task (it has a `split_task` field). */
export function isSplitTaskPayload(body: unknown): boolean {
  return typeof body === 'object' && body !== null && !Array.isArray(body) && 'split_task' in body;
}

const FIELDS: Record<SplitAction, readonly string[]> = {
  start: ['action', 'job'],
  map: ['action', 'job', 'ref', 'range'],
  reduce: ['action', 'job', 'ref', 'bucket'],
  commit: ['action', 'job', 'ref'],
  // Step Functions hands over the Catch's `{Error, Cause}` as `failure`; the queue handlers give a `reason`
  abandon: ['action', 'job', 'ref', 'reason', 'failure'],
};

/** Validates a split task payload (see the module comment). Throws UsageError naming the field. */
export function parseSplitTaskPayload(body: unknown): SplitTaskPayload {
  if (!isSplitTaskPayload(body)) throw new UsageError('a split task payload must be a JSON object with "split_task" and "run"');
  const { split_task: raw, run, ...rest } = body as Record<string, unknown>;
  if (Object.keys(rest).length > 0)
    throw new UsageError(`unknown field(s) ${Object.keys(rest).join(', ')}; expected split_task, run`);
  return { task: parseSplitTask(raw), run: parseRunRef(run) };
}

function parseSplitTask(value: unknown): SplitTask {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(`split_task must be an object like {"action": "map", …}, got ${JSON.stringify(value)}`);
  }
  const fields = value as Record<string, unknown>;
  const action = fields.action as SplitAction;
  const allowed = FIELDS[action];
  if (typeof action !== 'string' || !allowed) {
    throw new UsageError(
      `split_task.action must be one of ${Object.keys(FIELDS).join(', ')}, got ${JSON.stringify(fields.action)}`,
    );
  }
  const unknown = Object.keys(fields).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) throw new UsageError(`split_task (${action}): unknown field(s) ${unknown.join(', ')}`);
  const job = parseJob(fields.job);
  if (action === 'start') {
    const shape = job.split;
    if (!shape) throw new UsageError(`split_task (start): job ${job.tenant} ${job.date} has no split shape`);
    return { action, job, shape };
  }
  const ref = parseSplitRef(fields.ref, job);
  switch (action) {
    case 'map':
      return { action, job, ref, range: index(fields.range, ref.ranges, 'split_task.range') };
    case 'reduce':
      return { action, job, ref, bucket: index(fields.bucket, ref.buckets, 'split_task.bucket') };
    case 'commit':
      return { action, job, ref };
    case 'abandon':
      return { action, job, ref, reason: abandonReason(fields.reason, fields.failure) };
  }
}

/** A split as start returned it: `{"tenant", "date", "splitId", "ranges", "buckets"}`, for the task's own job. */
export function parseSplitRef(value: unknown, job: Pick<CompactionJob, 'tenant' | 'date'>): SplitRef {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(`split_task.ref must be the object start returned, got ${JSON.stringify(value)}`);
  }
  const { tenant, date, splitId, ranges, buckets, ...rest } = value as Record<string, unknown>;
  if (Object.keys(rest).length > 0) throw new UsageError(`split_task.ref: unknown field(s) ${Object.keys(rest).join(', ')}`);
  if (tenant !== job.tenant || typeof date !== 'string' || parseDate(date, 'split_task.ref.date') !== job.date) {
    throw new UsageError(
      `split_task.ref is for ${JSON.stringify(tenant)} ${JSON.stringify(date)}, the job for ${job.tenant} ${job.date}`,
    );
  }
  if (typeof splitId !== 'string' || !RUN_ID_PATTERN.test(splitId)) {
    throw new UsageError(`split_task.ref.splitId: invalid split id ${JSON.stringify(splitId)}`);
  }
  return {
    tenant: job.tenant,
    date: job.date,
    splitId,
    ranges: count(ranges, 'split_task.ref.ranges'),
    buckets: count(buckets, 'split_task.ref.buckets'),
  };
}

const count = (value: unknown, name: string): number => {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new UsageError(`${name} must be a whole number from 1, got ${JSON.stringify(value)}`);
  }
  return value;
};

const index = (value: unknown, of: number, name: string): number => {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value >= of) {
    throw new UsageError(`${name} must be a whole number from 0 to ${of - 1}, got ${JSON.stringify(value)}`);
  }
  return value;
};

/**
 * Why a split is abandoned: the poison handler's `reason`, or the Step Functions Catch output `{Error, Cause}`
 * whose Cause, for a Lambda error, is the function's error as JSON (`{"errorType", "errorMessage", …}`).
 */
function abandonReason(reason: unknown, failure: unknown): string {
  if (typeof reason === 'string' && reason !== '') return reason;
  if (typeof failure === 'object' && failure !== null) {
    const { Error: name, Cause: cause } = failure as Record<string, unknown>;
    return `${typeof name === 'string' ? name : 'Error'}: ${catchCauseMessage(cause)}`;
  }
  throw new UsageError('split_task (abandon) needs a "reason" string or a "failure" {Error, Cause}');
}

/** The payload of a task as both orchestrators carry it (the inverse of parseSplitTaskPayload). */
export function splitTaskWire({ task, run }: SplitTaskPayload) {
  const { action, job } = task;
  const extra =
    task.action === 'start'
      ? {}
      : {
          ref: task.ref,
          ...(task.action === 'map' ? { range: task.range } : {}),
          ...(task.action === 'reduce' ? { bucket: task.bucket } : {}),
          ...(task.action === 'abandon' ? { reason: task.reason } : {}),
        };
  return { split_task: { action, job, ...extra }, run: { run_id: run.runId, target_date: run.date } };
}

/**
 * The tasks of one stage of a started split to enqueue: K map tasks, B reduce tasks, or the one commit; with
 * `window`, only the first that many of a stage (the others follow as tasks finish: splitStages.nextInWindow).
 */
export function stageTasks(
  stage: 'map' | 'reduce' | 'commit',
  job: CompactionJob,
  ref: SplitRef,
  run: RunRef,
  window = Number.POSITIVE_INFINITY,
): SplitTaskPayload[] {
  if (stage === 'commit') return [{ task: { action: 'commit', job, ref }, run }];
  const count = Math.min(window, stage === 'map' ? ref.ranges : ref.buckets);
  return Array.from({ length: count }, (_, i) => stageTask(stage, job, ref, run, i));
}

/** Task `index` of a map or reduce stage. */
export function stageTask(
  stage: 'map' | 'reduce',
  job: CompactionJob,
  ref: SplitRef,
  run: RunRef,
  index: number,
): SplitTaskPayload {
  return stage === 'map'
    ? { task: { action: 'map', job, ref, range: index }, run }
    : { task: { action: 'reduce', job, ref, bucket: index }, run };
}

/**
 * Runs one task. Map and reduce throw when they fail (they are idempotent: the orchestrator retries them);
 * start returns the split's ref, or the job's result when it ended there; commit and abandon the job's result.
 */
export async function runSplitTask(deps: CompactionDeps, task: SplitTask): Promise<SplitTaskOutcome> {
  switch (task.action) {
    case 'start': {
      const started = await startSplit(deps, task.job.tenant, task.job.date, task.shape);
      return 'ref' in started ? started : { result: withReason(started.result, task.job) };
    }
    case 'map':
      await mapRange(deps, task.ref, task.range);
      return { done: `range ${task.range} of ${task.ref.ranges}` };
    case 'reduce':
      await reduceBucket(deps, task.ref, task.bucket);
      return { done: `bucket ${task.bucket} of ${task.ref.buckets}` };
    case 'commit':
      return {
        result: withReason((await committedSplitResult(deps, task.ref)) ?? (await commitSplit(deps, task.ref)), task.job),
      };
    case 'abandon':
      // a commit that went through before its attempt died (timed out, reply lost) is never undone
      return {
        result: withReason(
          (await committedSplitResult(deps, task.ref)) ?? (await abandonSplit(deps, task.ref, task.reason)),
          task.job,
        ),
      };
  }
}

/** A split job's result as runJob's carries it: with the planned job's reason (late data). */
const withReason = (result: PartitionResult, job: CompactionJob): PartitionResult =>
  job.reason ? { ...result, reason: job.reason } : result;

/** What a task is called in logs and stage markers: `start`, `range 2`, `bucket 0`, `commit`, `abandon`. */
export function splitTaskName(task: SplitTask): string {
  if (task.action === 'map') return `range ${task.range}`;
  if (task.action === 'reduce') return `bucket ${task.bucket}`;
  return task.action;
}
