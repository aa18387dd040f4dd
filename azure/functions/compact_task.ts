/**
 * `compact_task`: runs one task of a split job (docs/AZURE.md "Fan-out"; the split itself: docs/SCALING.md)
 * from COMPACTION_TASK_QUEUE – `{"split_task": {"action": "map" | "reduce" | "commit", …}, "run": …}`.
 * compact_job started the split and enqueued its first map tasks; each finished task enqueues the next of
 * its stage (at most COMPACTION_TASK_CONCURRENCY queued or running), the map task that completes the set of
 * map reports enqueues the first reduce tasks, the reduce task that completes the set of reduce reports
 * enqueues the commit ("last" decided through the store: src/jobs/splitStages.ts); the commit records the
 * job's result and, if it is the run's last report, writes the run summary. A task delivered again after
 * its stage ended (or after the split was abandoned) does nothing.
 *
 * A failed attempt throws (the tasks are idempotent; commitSplit publishes nothing when it fails), so the
 * host retries the message; the last attempt (dequeueCount = COMPACTION_MAX_DEQUEUE_COUNT) abandons the split first (lease released, work removed, the job recorded
 * as failed). `compact_task_poison` abandons it for a task whose last attempt died without doing so.
 */
import { app, type InvocationContext } from '@azure/functions';
import { errorMessage, UsageError } from '../../src/core/errors.js';
import type { PartitionResult } from '../../src/engine/compactPartition.js';
import { resultFailed } from '../../src/engine/resultFailed.js';
import { type RunRef, recordJobResult } from '../../src/jobs/fanOut.js';
import { decideAbandon, nextInWindow, reportTaskDone, splitStage, stageStartedBy } from '../../src/jobs/splitStages.js';
import {
  parseSplitTaskPayload,
  type SplitTask,
  type SplitTaskOutcome,
  type SplitTaskPayload,
  splitTaskName,
  stageTask,
  stageTasks,
} from '../../src/jobs/splitTasks.js';
import { runTask } from '../../src/jobs/task.js';
import { CompactionJobError } from '../errors.js';
import { storageTaskQueue } from '../jobQueue.js';
import { type AzureRuntime, azureRuntime } from '../runtime.js';
import { triggerSettings } from '../settings.js';
import { summariseIfLast } from '../summariseRun.js';
import { functionLog, logPartition } from '../telemetry.js';

const settings = triggerSettings(process.env);

type QueuedTask = Extract<SplitTask, { action: 'map' | 'reduce' | 'commit' }>;
type StageTask = Extract<SplitTask, { action: 'map' | 'reduce' }>;

/** How a task attempt ended: what it did, the stage it enqueued, and whether the job ended here. */
export interface TaskOutcome {
  readonly task: string;
  /** `done`; `skipped` (the split was abandoned, or is past this task's stage); the job's status (commit, abandon). */
  readonly status: string;
  /** The stage this task enqueued (it completed its stage), if any. */
  readonly enqueued?: 'reduce' | 'commit';
  readonly summaryWritten: boolean;
}

/** The queue-triggered handler; `context.triggerMetadata.dequeueCount` says which attempt this is. */
export async function compactTask(message: unknown, context: InvocationContext): Promise<TaskOutcome> {
  const { task, run } = parseMessage(message);
  const attempt = Number(context.triggerMetadata?.dequeueCount ?? 1);
  const runtime = await azureRuntime();
  const name = `${splitTaskName(task)} of split ${task.ref.splitId} (${task.job.tenant} ${task.job.date}, run ${run.runId})`;
  const stage = await splitStage(runtime.store, run, task.ref);
  if (stage !== task.action) {
    // abandoned meanwhile, or delivered again after its stage ended: if it started the next stage, its
    // enqueue may have failed, so it enqueues again; otherwise there is nothing left for it to do
    const started = stage !== 'abandon' && task.action !== 'commit' ? await stageStartedBy(runtime.store, run, task) : undefined;
    if (started) {
      await enqueue(runtime, stageTasks(started, task.job, task.ref, run, settings.compactionTaskConcurrency));
      return { task: splitTaskName(task), status: 'done', enqueued: started, summaryWritten: false };
    }
    context.warn(`${name} skipped: the split ${stage === 'abandon' ? 'was abandoned' : 'is past this stage'}`);
    return { task: splitTaskName(task), status: 'skipped', summaryWritten: false };
  }
  const last = attempt >= settings.compactionMaxDequeueCount;
  let outcome: SplitTaskOutcome;
  try {
    outcome = await runTask({ ...runtime, now: Date.now }, { kind: 'split', task, run });
    if ('result' in outcome && resultFailed(outcome.result)) {
      throw new CompactionJobError(`${name}: ${outcome.result.status}: ${outcome.result.error ?? ''}`, {
        context: { run: run.runId, tenant: task.job.tenant, date: task.job.date, attempt },
      });
    }
  } catch (error) {
    // the last attempt gives the split up, with the error that ended it, before the host poisons the message
    if (last)
      await abandon(runtime, run, task, `${splitTaskName(task)} failed ${attempt} times: ${errorMessage(error)}`, context);
    throw error;
  }
  if ('result' in outcome) {
    // the commit: the job's result, reported like a single-pass job's
    logPartition(functionLog(context, run.runId), outcome.result, { split_id: task.ref.splitId });
    await recordJobResult(runtime.store, run, outcome.result);
    const summaryWritten = await summariseIfLast(runtime, run, context);
    return { task: splitTaskName(task), status: outcome.result.status, summaryWritten };
  }
  const done = task as StageTask;
  const following = await nextInWindow(runtime.store, run, done, settings.compactionTaskConcurrency, Date.now());
  const next = await reportTaskDone(runtime.store, run, done, Date.now());
  await enqueue(runtime, [
    ...(following === undefined ? [] : [stageTask(done.action, task.job, task.ref, run, following)]),
    ...(next ? stageTasks(next, task.job, task.ref, run, settings.compactionTaskConcurrency) : []),
  ]);
  context.info(`${name} done (attempt ${attempt})${next ? `: the stage is complete, ${next} enqueued` : ''}`);
  return { task: splitTaskName(task), status: 'done', ...(next ? { enqueued: next } : {}), summaryWritten: false };
}

async function enqueue(runtime: AzureRuntime, tasks: readonly SplitTaskPayload[]): Promise<void> {
  if (tasks.length > 0) await storageTaskQueue(runtime.config, settings.compactionTaskQueue).enqueue(tasks);
}

/**
 * Triggered by `<task queue>-poison`: a task the host gave up on. If its last attempt died before it could
 * abandon the split (killed, timed out), the split is abandoned here and the job recorded as failed.
 */
export async function compactTaskPoison(message: unknown, context: InvocationContext): Promise<TaskOutcome> {
  const { task, run } = parseMessage(message);
  const runtime = await azureRuntime();
  const reason = `${splitTaskName(task)} moved to the poison queue after ${settings.compactionMaxDequeueCount} attempts`;
  const abandoned = await abandon(runtime, run, task, reason, context);
  context.warn(`${splitTaskName(task)} of split ${task.ref.splitId} poisoned${abandoned ? '' : ' (nothing left to abandon)'}`);
  return { task: splitTaskName(task), status: abandoned ? 'failed' : 'skipped', summaryWritten: abandoned === 'summary' };
}

/**
 * Abandons the split once (splitStages.decideAbandon), records the job as failed and writes the summary if
 * that was the run's last report. Returns false when there was nothing to abandon (the split ended, or
 * another task is abandoning it); 'summary' when this call wrote the run summary.
 */
async function abandon(
  runtime: AzureRuntime,
  run: RunRef,
  task: QueuedTask,
  reason: string,
  context: InvocationContext,
): Promise<boolean | 'summary'> {
  const { store } = runtime;
  if (!(await decideAbandon(store, run, task, reason, Date.now()))) return false;
  const outcome = await runTask(
    { ...runtime, now: Date.now },
    { kind: 'split', task: { action: 'abandon', job: task.job, ref: task.ref, reason }, run },
  );
  const { result } = outcome as { result: PartitionResult };
  await recordJobResult(store, run, result);
  context.error(`split ${task.ref.splitId} (${task.job.tenant} ${task.job.date}, run ${run.runId}) abandoned: ${reason}`);
  return (await summariseIfLast(runtime, run, context)) ? 'summary' : true;
}

function parseMessage(message: unknown): { task: QueuedTask; run: RunRef } {
  const { task, run } = parseSplitTaskPayload(typeof message === 'string' ? JSON.parse(message) : message);
  if (task.action === 'start' || task.action === 'abandon') {
    throw new UsageError(`compact_task runs map, reduce and commit tasks, got ${task.action}`);
  }
  return { task, run };
}

app.storageQueue('compact_task', {
  queueName: settings.compactionTaskQueue,
  connection: settings.compactionQueueConnection,
  handler: compactTask,
});

app.storageQueue('compact_task_poison', {
  queueName: `${settings.compactionTaskQueue}-poison`,
  connection: settings.compactionQueueConnection,
  handler: compactTaskPoison,
});
