/**
 * `daily_batch`: every day at 02:00 JST, compacts the previous JST day (today in JST + TARGET_DATE_OFFSET)
 * for TENANT_ID ('*' = every tenant in staging) into Parquet. Run it by hand with
 * `POST /admin/functions/daily_batch` (docs/AZURE.md).
 */
import { app, type InvocationContext, type Timer } from '@azure/functions';
import { summaryJson } from '../../src/app/report.js';
import { CompactionRunError } from '../errors.js';
import { azureRuntime } from '../runtime.js';
import { triggerSettings } from '../settings.js';
import { loggedCompaction } from '../telemetry.js';

/**
 * The handler. Returns the run summary; throws when a tenant failed so the retry policy runs the day
 * again (compaction is idempotent: tenants that succeeded are rewritten with the same rows). Logs one JSON
 * line per partition and the run's metrics (azure/telemetry.ts).
 */
export async function dailyBatch(_timer: Timer | unknown, context: InvocationContext) {
  const { store, config } = await azureRuntime();
  const summary = await loggedCompaction(context, { store, config, late: true });
  const json = summaryJson(summary);
  if (!summary.ok) {
    throw new CompactionRunError(`compaction of ${summary.date} failed for ${json.totals.failed} tenant(s)`, {
      context: {
        date: summary.date,
        failed: json.tenants.filter((t) => t.status === 'failed' || t.status === 'locked').map((t) => t.tenant_id),
      },
    });
  }
  return json;
}

app.timer('daily_batch', {
  // NCRONTAB in UTC: 17:00 UTC = 02:00 JST (JST has no DST). See docs/AZURE.md for WEBSITE_TIME_ZONE.
  schedule: triggerSettings(process.env).dailyBatchSchedule,
  runOnStartup: false,
  retry: { strategy: 'exponentialBackoff', maxRetryCount: 3, minimumInterval: { minutes: 1 }, maximumInterval: { minutes: 15 } },
  handler: dailyBatch,
});
