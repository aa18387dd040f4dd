/**
 * `intraday_batch`: every INTRADAY_MINUTES (default 60; 0 = not registered) compacts, in this invocation,
 * today's JST partitions of TENANT_ID — and yesterday's until the 02:00 JST `daily_batch` has closed it —
 * that gained staging since their last table commit: the same engine, commit and run log lines as
 * `compact_http`, so analysts see a change within the hour. `daily_batch` stays the closing run of each day.
 */
import { app, type InvocationContext, type Timer } from '@azure/functions';
import { targetDate } from '../../src/core/time/jst.js';
import { summaryJson } from '../../src/ops/report.js';
import { azureRuntime } from '../runtime.js';
import { triggerSettings } from '../settings.js';
import { loggedCompaction } from '../telemetry.js';

const settings = triggerSettings(process.env);

/** The handler: a failed partition is in the summary and the log (the next run retries it); nothing throws for it. */
export async function intradayBatch(
  _timer: Timer | unknown,
  context: InvocationContext,
): Promise<ReturnType<typeof summaryJson>> {
  const runtime = await azureRuntime();
  const summary = await loggedCompaction(context, runtime, {
    date: targetDate(Date.now(), 0),
    tenants: runtime.config.tenants,
    late: false,
    intraday: true,
  });
  return summaryJson(summary);
}

if (settings.intradaySchedule) {
  app.timer('intraday_batch', {
    // NCRONTAB in the host's time zone (UTC by default); every INTRADAY_MINUTES
    schedule: settings.intradaySchedule,
    runOnStartup: false,
    handler: intradayBatch,
  });
}
