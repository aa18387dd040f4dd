import type { InvocationContext } from '@azure/functions';
import { type RunRef, runSummaryJson, writeRunSummary } from '../src/app/jobs.js';
import { compactionMetrics, statusMetrics } from '../src/app/metrics.js';
import { statusAfterRun } from '../src/app/status.js';
import type { ObjectStore } from '../src/store/ObjectStore.js';
import { runStartedAt } from '../src/time/runId.js';
import { functionLog } from './telemetry.js';

/**
 * After a job of the run reported (compact_job, compact_task, their poison handlers): writes the run summary
 * if every job has reported and nobody wrote it yet, and then ends the run as compact_http's does: the run's
 * `metrics` line (Source `compaction`, so the alerts of docs/AZURE.md see either mode), `run finished` (an
 * error when a job failed) and the status check over the partitions it ran (`status checked` with a
 * `metrics` line of Source `status`; `status check failed` when the store refuses it, never a failure of the
 * run). Returns whether this call wrote the summary.
 */
export async function summariseIfLast(
  store: ObjectStore,
  run: RunRef,
  context: InvocationContext,
  now: () => number = Date.now,
): Promise<boolean> {
  const outcome = await writeRunSummary(store, run, { whenComplete: true });
  if (!outcome?.written) return false;
  const log = functionLog(context, run.runId);
  const json = runSummaryJson(outcome.summary);
  log.metrics('compaction', compactionMetrics(outcome.summary, Math.max(0, now() - runStartedAt(run.runId, now()))));
  log(json.ok ? 'info' : 'error', 'run finished', json);
  const checked = await statusAfterRun(store, outcome.summary.results, now());
  if ('error' in checked) {
    log('error', 'status check failed', { error: checked.error, partitions: checked.checked });
  } else {
    log.metrics('status', statusMetrics(checked.status));
    const needs = checked.status.needs_attention;
    log(needs > 0 ? 'warn' : 'info', 'status checked', { needs_attention: needs });
  }
  return true;
}
