import type { InvocationContext } from '@azure/functions';
import { runStartedAt } from '../src/core/time/runId.js';
import { endRun } from '../src/jobs/endRun.js';
import type { RunRef } from '../src/jobs/fanOut.js';
import { runTask } from '../src/jobs/task.js';
import type { AzureRuntime } from './runtime.js';
import { functionLog, runSink } from './telemetry.js';

/**
 * After a job of the run reported (compact_job, compact_task, their poison handlers; daily_batch for a night
 * without jobs): a `summary` task that writes the run summary if every job has reported and nobody wrote it
 * yet (with the privacy step's outcome daily_batch kept under the run), and then the end of the run every
 * driver shares (src/jobs/endRun.ts): the run's `metrics` line (Source `compaction`, so the alerts of
 * docs/AZURE.md see either mode), the status check from the run's own results (`status checked` with a
 * `metrics` line of Source `status`; `status check failed` when the store refuses it, never a failure of the
 * run), `run finished` with the summary (an error when a job failed) and `privacy step failed` when it did.
 * Returns whether this call wrote the summary.
 */
export async function summariseIfLast(
  { config, store }: AzureRuntime,
  run: RunRef,
  context: InvocationContext,
  now: () => number = Date.now,
): Promise<boolean> {
  const outcome = await runTask({ config, store, now }, { kind: 'summary', run, whenComplete: true });
  if (!outcome?.written) return false;
  await endRun(outcome.summary, {
    store,
    sink: runSink(functionLog(context, run.runId)),
    startedAt: runStartedAt(run.runId, now()),
    now,
    finishedWithSummary: true,
  });
  return true;
}
