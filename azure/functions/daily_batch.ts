/**
 * `daily_batch`: every day at 02:00 JST plans the night's compaction – the previous JST day (today in JST +
 * TARGET_DATE_OFFSET) for TENANT_ID ('*' = every tenant in staging), plus every earlier partition whose
 * staging changed – and enqueues one message per tenant-day job on COMPACTION_QUEUE; `compact_job`
 * compacts them, and the last one to report writes `runs/<date>/<run>.json` (docs/AZURE.md "Fan-out").
 * Run it by hand with `POST /admin/functions/daily_batch`; `compact_http` still compacts in one call.
 *
 * Before it plans, it runs the night's privacy step (src/jobs/nightlyPrivacy.ts: recent erases re-applied,
 * offboarded tenants offboarded again, LAKE_RETENTION_DAYS applied – docs/PRIVACY.md). What that step could
 * not do is logged as an error (`privacy step failed`) and never stops the plan; a retry of the timer (an
 * earlier attempt failed or timed out) skips it, so that a privacy step outlasting functionTimeout cannot
 * keep the night from being compacted.
 */
import { app, type InvocationContext, type Timer } from '@azure/functions';
import { errorMessage } from '../../src/core/errors.js';
import type { NightlyErasureReport } from '../../src/jobs/erase/nightly.js';
import { privacyFailure, privacyOutcome, recordPrivacyOutcome } from '../../src/jobs/privacyOutcome.js';
import { nightlyRequest, runTask } from '../../src/jobs/task.js';
import type { PrivacyOutcome } from '../../src/ops/privacyOutcome.js';
import { storageJobQueue } from '../jobQueue.js';
import { type AzureRuntime, azureRuntime } from '../runtime.js';
import { triggerSettings } from '../settings.js';
import { summariseIfLast } from '../summariseRun.js';

const settings = triggerSettings(process.env);

/** What the timer returns (and logs): the run, its size and where its job list is. */
export interface PlannedRun {
  readonly run_id: string;
  readonly target_date: string;
  readonly jobs: number;
  readonly staging_bytes: number;
  /** Jobs the plan split (past SPLIT_THRESHOLD_BYTES): their tasks go to COMPACTION_TASK_QUEUE. */
  readonly split_jobs: number;
  readonly jobs_key: string;
  readonly queue: string;
  /** The privacy step's report; `skipped` on a retry of the timer, `error` when it threw. */
  readonly privacy: NightlyErasureReport | { readonly skipped: string } | { readonly error: string };
}

/**
 * The handler. A failure to plan or enqueue throws, so the retry policy plans the night again under a new
 * run id (jobs already enqueued by the failed attempt still compact: compaction is idempotent).
 */
export async function dailyBatch(_timer: Timer | unknown, context: InvocationContext): Promise<PlannedRun> {
  const runtime = await azureRuntime();
  const { store, config } = runtime;
  const privacy = await privacyStep(context, runtime);
  const now = Date.now();
  const request = nightlyRequest(config, now);
  // a job past SPLIT_THRESHOLD_BYTES is split: compact_job starts it, compact_task runs its stages
  const plan = await runTask({ config, store, now: () => now }, { kind: 'plan', request });
  // kept under the run for its summary, before any job can report
  await recordPrivacyOutcome(store, plan.run, outcomeOf(privacy));
  await storageJobQueue(config, settings.compactionQueue).enqueue(plan.jobs.map((job) => ({ job, run: plan.run })));
  // nothing to do tonight: no job will report, so the run ends here
  if (plan.jobs.length === 0) await summariseIfLast(runtime, plan.run, context);
  const planned: PlannedRun = {
    run_id: plan.run.runId,
    target_date: request.date,
    jobs: plan.jobs.length,
    staging_bytes: plan.jobs.reduce((n, j) => n + j.stagingBytes, 0),
    split_jobs: plan.jobs.filter((j) => j.split).length,
    jobs_key: plan.key,
    queue: settings.compactionQueue,
    privacy,
  };
  context.info(JSON.stringify({ message: 'run planned', ...planned }));
  return planned;
}

/** What the run summary records of the step (src/jobs/privacyOutcome.ts). */
function outcomeOf(privacy: PlannedRun['privacy']): PrivacyOutcome {
  if ('skipped' in privacy) return privacy;
  if ('error' in privacy) return { failure: privacy.error };
  return privacyOutcome(privacy);
}

/** The night's privacy step, before the plan: logged, never thrown; skipped on a retry of the timer. */
async function privacyStep(context: InvocationContext, { store, config }: AzureRuntime): Promise<PlannedRun['privacy']> {
  const line = (level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown>) =>
    context[level](JSON.stringify({ message, ...fields }));
  const retry = context.retryContext?.retryCount ?? 0;
  if (retry > 0) {
    const skipped = `retry ${retry} of daily_batch: the privacy step ran (or timed out) in an earlier attempt`;
    line('warn', 'privacy step skipped', { reason: skipped });
    return { skipped };
  }
  try {
    const log = (name: string, fields: Record<string, unknown>) => line(name.endsWith('_failed') ? 'warn' : 'info', name, fields);
    const report = await runTask({ config, store, now: Date.now, log }, { kind: 'privacy' });
    const failure = privacyFailure(report);
    line(failure ? 'error' : 'info', failure ? 'privacy step failed' : 'privacy step finished', { ...report });
    return report;
  } catch (error) {
    line('error', 'privacy step failed', { error: errorMessage(error) });
    return { error: errorMessage(error) };
  }
}

app.timer('daily_batch', {
  // NCRONTAB in UTC: 17:00 UTC = 02:00 JST (JST has no DST). See docs/AZURE.md for WEBSITE_TIME_ZONE.
  schedule: settings.dailyBatchSchedule,
  runOnStartup: false,
  retry: { strategy: 'exponentialBackoff', maxRetryCount: 3, minimumInterval: { minutes: 1 }, maximumInterval: { minutes: 15 } },
  handler: dailyBatch,
});
