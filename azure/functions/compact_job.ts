/**
 * `compact_job`: compacts one tenant-day job that daily_batch enqueued (`{"job": …, "run": …}`), records
 * its result under `runs/<date>/<run>/results/`, and – when it is the last job of the run to report –
 * writes the run summary. A failed attempt throws, so the host retries the message; the last attempt
 * (dequeueCount = COMPACTION_MAX_DEQUEUE_COUNT, host.json's maxDequeueCount) records the failure first, then
 * the host moves the message to `<queue>-poison`, where `compact_job_poison` records a job whose last
 * attempt died without reporting (docs/AZURE.md "Fan-out").
 */
import { app, type InvocationContext } from '@azure/functions';
import { type JobPayload, parseJobPayload } from '../../src/app/compactionPayload.js';
import {
  jobFailed,
  jobResultKey,
  recordJobResult,
  runJob,
  runSummaryJson,
  withCompactionDeps,
  writeRunSummary,
} from '../../src/app/jobs.js';
import { progressLine } from '../../src/app/report.js';
import { emptyResult } from '../../src/compaction/compactPartition.js';
import type { ObjectStore } from '../../src/store/ObjectStore.js';
import { CompactionJobError } from '../errors.js';
import { azureRuntime } from '../runtime.js';
import { triggerSettings } from '../settings.js';

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
  const { store, config } = await azureRuntime();
  const result = await withCompactionDeps(config, store, Date.now, (deps) => runJob(deps, job));
  context.info(`${progressLine(result)} (run ${run.runId}, attempt ${attempt} of ${settings.compactionMaxDequeueCount})`);
  const failed = jobFailed(result);
  // a failure is recorded only on the last attempt: until then the run is not complete
  const last = !failed || attempt >= settings.compactionMaxDequeueCount;
  let summaryWritten = false;
  if (last) {
    await recordJobResult(store, run, result);
    summaryWritten = await summariseIfLast(store, { job, run }, context);
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
  const { store } = await azureRuntime();
  const reported = (await store.head(jobResultKey(run, job))) !== undefined;
  if (!reported) {
    const error = `moved to the poison queue after ${settings.compactionMaxDequeueCount} attempts without a report (the worker crashed or timed out)`;
    await recordJobResult(store, run, {
      ...emptyResult({ tenant: job.tenant, date: job.date, runId: '' }, 'failed', 0, {}, error),
      ...(job.reason ? { reason: job.reason } : {}),
    });
  }
  context.warn(`job ${job.tenant} ${job.date} of run ${run.runId} poisoned${reported ? '' : ' without a report'}`);
  return { status: 'failed', recorded: !reported, summaryWritten: await summariseIfLast(store, { job, run }, context) };
}

async function summariseIfLast(store: ObjectStore, { run }: JobPayload, context: InvocationContext): Promise<boolean> {
  const outcome = await writeRunSummary(store, run, { whenComplete: true });
  if (!outcome?.written) return false;
  const json = runSummaryJson(outcome.summary);
  const line = JSON.stringify({ message: 'run finished', ...json });
  if (json.ok) context.info(line);
  else context.error(line);
  return true;
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
