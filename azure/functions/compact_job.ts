/**
 * `compact_job`: compacts one tenant-day job that daily_batch enqueued (`{"job": …, "run": …}`), records
 * its result under `runs/<date>/<run>/results/`, and – when it is the last job of the run to report –
 * writes the run summary. A job the plan split (`job.split`) is started here instead: its first map tasks
 * (COMPACTION_TASK_CONCURRENCY of them) go to COMPACTION_TASK_QUEUE, where `compact_task` runs the split's
 * stages and its commit reports the job. A failed attempt throws, so the host retries the message; the last attempt
 * (dequeueCount = COMPACTION_MAX_DEQUEUE_COUNT, host.json's maxDequeueCount) records the failure first, then
 * the host moves the message to `<queue>-poison`, where `compact_job_poison` records a job whose last
 * attempt died without reporting (docs/AZURE.md "Fan-out").
 */
import { app, type InvocationContext } from '@azure/functions';
import { errorMessage } from '../../src/core/errors.js';
import { emptyResult, type PartitionResult } from '../../src/engine/compactPartition.js';
import { resultFailed } from '../../src/engine/resultFailed.js';
import type { SplitShape } from '../../src/engine/splitPartition.js';
import { type JobPayload, parseJobPayload } from '../../src/jobs/compactionPayload.js';
import { type CompactionJob, jobResultKey, type RunRef, recordJobResult } from '../../src/jobs/fanOut.js';
import { markAbandoned } from '../../src/jobs/splitStages.js';
import { stageTasks } from '../../src/jobs/splitTasks.js';
import { runTask } from '../../src/jobs/task.js';
import { partitionLogFields } from '../../src/ops/partitionView.js';
import { CompactionJobError } from '../errors.js';
import { storageTaskQueue } from '../jobQueue.js';
import { type AzureRuntime, azureRuntime } from '../runtime.js';
import { triggerSettings } from '../settings.js';
import { summariseIfLast } from '../summariseRun.js';
import { functionLog, logPartition } from '../telemetry.js';

const settings = triggerSettings(process.env);

/** How a job attempt ended: its result's status, whether it was recorded, and the summary if it wrote one. */
export interface JobOutcome {
  readonly status: string;
  readonly recorded: boolean;
  readonly summaryWritten: boolean;
}

/** The queue-triggered handler; `context.triggerMetadata.dequeueCount` says which attempt this is. */
export async function compactJob(message: unknown, context: InvocationContext): Promise<JobOutcome> {
  const { job, run } = parseMessage(message);
  const attempt = Number(context.triggerMetadata?.dequeueCount ?? 1);
  const runtime = await azureRuntime();
  const { store } = runtime;
  const result = job.split
    ? await startSplitJob(runtime, { job, run }, context)
    : await runTask({ ...runtime, now: Date.now }, { kind: 'compact', job, run });
  if (result === 'split') return { status: 'split', recorded: false, summaryWritten: false };
  const failed = resultFailed(result);
  // a failure is recorded only on the last attempt: until then the run is not complete
  const last = !failed || attempt >= settings.compactionMaxDequeueCount;
  const log = functionLog(context, run.runId);
  const attempts = { attempt, max_attempts: settings.compactionMaxDequeueCount };
  // `partition finished` once per job, as compact_http writes it; an attempt the host will retry is a warning
  if (last) logPartition(log, result, attempts);
  else log('warn', 'partition attempt failed', { ...partitionLogFields(result), ...attempts });
  let summaryWritten = false;
  if (last) {
    await recordJobResult(store, run, result);
    summaryWritten = await summariseIfLast(runtime, run, context);
  }
  if (failed) {
    throw new CompactionJobError(`job ${job.tenant} ${job.date} of run ${run.runId} ${result.status}: ${result.error ?? ''}`, {
      context: { run: run.runId, tenant: job.tenant, date: job.date, attempt },
    });
  }
  return { status: result.status, recorded: last, summaryWritten };
}

/**
 * Triggered by `<queue>-poison`: a job the host gave up on. If its last attempt reported, nothing is left
 * to do but the summary check; if it died without reporting (killed, timed out), its failure is recorded.
 */
export async function compactJobPoison(message: unknown, context: InvocationContext): Promise<JobOutcome> {
  const { job, run } = parseMessage(message);
  const runtime = await azureRuntime();
  const { store } = runtime;
  const reported = (await store.head(jobResultKey(run, job))) !== undefined;
  if (!reported) {
    const error = `moved to the poison queue after ${settings.compactionMaxDequeueCount} attempts without a report (the worker crashed or timed out)`;
    await recordJobResult(store, run, {
      ...emptyResult({ tenant: job.tenant, date: job.date, runId: '' }, 'failed', 0, {}, error),
      ...(job.reason ? { reason: job.reason } : {}),
    });
  }
  context.warn(`job ${job.tenant} ${job.date} of run ${run.runId} poisoned${reported ? '' : ' without a report'}`);
  return { status: 'failed', recorded: !reported, summaryWritten: await summariseIfLast(runtime, run, context) };
}

/**
 * Starts a split job and enqueues its first map tasks ('split'); or the job's result when start ended it (no
 * staging, partition locked), handled like a compaction's. A split whose tasks could not all be enqueued is
 * abandoned (lease released, work removed) before the error is thrown, so the retry starts afresh.
 */
async function startSplitJob(
  runtime: AzureRuntime,
  { job, run }: { job: CompactionJob; run: RunRef },
  context: InvocationContext,
): Promise<PartitionResult | 'split'> {
  const { config, store } = runtime;
  const env = { ...runtime, now: Date.now };
  const shape = job.split as SplitShape;
  const started = await runTask(env, { kind: 'split', task: { action: 'start', job, shape }, run });
  if (!('ref' in started)) return (started as { result: PartitionResult }).result;
  const { ref } = started;
  try {
    const window = settings.compactionTaskConcurrency;
    await storageTaskQueue(config, settings.compactionTaskQueue).enqueue(stageTasks('map', job, ref, run, window));
  } catch (error) {
    // map tasks already sent find the split abandoned and do nothing
    const reason = `enqueueing its map tasks failed: ${errorMessage(error)}`;
    await markAbandoned(store, run, ref, 'start', reason, Date.now());
    await runTask(env, { kind: 'split', task: { action: 'abandon', job, ref, reason }, run });
    throw error;
  }
  context.info(
    `split ${job.tenant} ${job.date} started as ${ref.ranges} ranges × ${ref.buckets} buckets (split ${ref.splitId}, run ${run.runId}): map tasks enqueued on ${settings.compactionTaskQueue}, ${settings.compactionTaskConcurrency} at a time`,
  );
  return 'split';
}

function parseMessage(message: unknown): JobPayload {
  return parseJobPayload(typeof message === 'string' ? JSON.parse(message) : message);
}

app.storageQueue('compact_job', {
  queueName: settings.compactionQueue,
  connection: settings.compactionQueueConnection,
  handler: compactJob,
});

app.storageQueue('compact_job_poison', {
  queueName: `${settings.compactionQueue}-poison`,
  connection: settings.compactionQueueConnection,
  handler: compactJobPoison,
});
