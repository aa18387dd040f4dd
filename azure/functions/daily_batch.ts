/**
 * `daily_batch`: every day at 02:00 JST plans the night's compaction – the previous JST day (today in JST +
 * TARGET_DATE_OFFSET) for TENANT_ID ('*' = every tenant in staging), plus every earlier partition whose
 * staging changed – and enqueues one message per tenant-day job on COMPACTION_QUEUE; `compact_job`
 * compacts them, and the last one to report writes `runs/<date>/<run>.json` (docs/AZURE.md "Fan-out").
 * Run it by hand with `POST /admin/functions/daily_batch`; `compact_http` still compacts in one call.
 */
import { app, type InvocationContext, type Timer } from '@azure/functions';
import { planRun, writeRunSummary } from '../../src/app/jobs.js';
import { targetDate } from '../../src/time/jst.js';
import { storageJobQueue } from '../jobQueue.js';
import { azureRuntime } from '../runtime.js';
import { triggerSettings } from '../settings.js';

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
}

/**
 * The handler. A failure to plan or enqueue throws, so the retry policy plans the night again under a new
 * run id (jobs already enqueued by the failed attempt still compact: compaction is idempotent).
 */
export async function dailyBatch(_timer: Timer | unknown, context: InvocationContext): Promise<PlannedRun> {
  const { store, config } = await azureRuntime();
  const now = Date.now();
  const date = targetDate(now, config.targetDateOffset);
  const plan = await planRun(
    store,
    {
      date,
      tenants: config.tenants,
      lateLookbackDays: config.compaction.lateDataLookbackDays || Number.POSITIVE_INFINITY,
      // a job past SPLIT_THRESHOLD_BYTES is split: compact_job starts it, compact_task runs its stages
      splitThresholdBytes: config.compaction.splitThresholdBytes,
    },
    now,
  );
  await storageJobQueue(config, settings.compactionQueue).enqueue(plan.jobs.map((job) => ({ job, run: plan.run })));
  // nothing to do tonight: no job will report, so the summary is written here
  if (plan.jobs.length === 0) await writeRunSummary(store, plan.run, { whenComplete: true });
  const planned: PlannedRun = {
    run_id: plan.run.runId,
    target_date: date,
    jobs: plan.jobs.length,
    staging_bytes: plan.jobs.reduce((n, j) => n + j.stagingBytes, 0),
    split_jobs: plan.jobs.filter((j) => j.split).length,
    jobs_key: plan.key,
    queue: settings.compactionQueue,
  };
  context.info(JSON.stringify({ message: 'run planned', ...planned }));
  return planned;
}

app.timer('daily_batch', {
  // NCRONTAB in UTC: 17:00 UTC = 02:00 JST (JST has no DST). See docs/AZURE.md for WEBSITE_TIME_ZONE.
  schedule: settings.dailyBatchSchedule,
  runOnStartup: false,
  retry: { strategy: 'exponentialBackoff', maxRetryCount: 3, minimumInterval: { minutes: 1 }, maximumInterval: { minutes: 15 } },
  handler: dailyBatch,
});
