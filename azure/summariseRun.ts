import type { InvocationContext } from '@azure/functions';
import { type RunRef, runSummaryJson, writeRunSummary } from '../src/app/jobs.js';
import type { ObjectStore } from '../src/store/ObjectStore.js';

/**
 * After a job of the run reported (compact_job, compact_task, their poison handlers): writes the run summary
 * if every job has reported and nobody wrote it yet, and logs it (`run finished`, an error when a job
 * failed). Returns whether this call wrote it.
 */
export async function summariseIfLast(store: ObjectStore, run: RunRef, context: InvocationContext): Promise<boolean> {
  const outcome = await writeRunSummary(store, run, { whenComplete: true });
  if (!outcome?.written) return false;
  const json = runSummaryJson(outcome.summary);
  const line = JSON.stringify({ message: 'run finished', ...json });
  if (json.ok) context.info(line);
  else context.error(line);
  return true;
}
