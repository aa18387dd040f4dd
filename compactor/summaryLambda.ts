/**
 * Last step of the nightly Step Functions run (docs/AWS.md): pairs the plan with the jobs' reports, writes
 * the run summary `runs/<date>/<run>.json` and emits the run's metrics (CloudWatch embedded metric format,
 * namespace `makoto-lake`). Fails the execution when a job failed or never reported, so alarms fire.
 */
import { type FanOutSummary, parseRunRef, runSummaryJson, writeRunSummary } from '../src/app/jobs.js';
import { createStore } from '../stores/createStore.js';
import { CompactionRunFailedError, type CompactorDeps, lambdaConfig } from './lambda.js';

export type RunSummaryJson = ReturnType<typeof runSummaryJson>;

export async function runSummaryEvent(event: unknown, deps: CompactorDeps): Promise<RunSummaryJson> {
  const now = deps.now ?? Date.now;
  const log = deps.log ?? ((line: string) => console.log(line));
  const run = parseRunRef((event as { run?: unknown } | null)?.run);
  const { summary } = (await writeRunSummary(deps.store, run, { whenComplete: false })) as { summary: FanOutSummary };
  const json = runSummaryJson(summary);
  log(JSON.stringify(runMetrics(summary, now())));
  if (!summary.ok) {
    const failed = json.tenants
      .filter((t) => t.status === 'failed' || t.status === 'locked')
      .map((t) => `${t.tenant_id} ${t.dt}`);
    throw new CompactionRunFailedError(
      `run ${run.runId} of ${run.date}: ${failed.length} of ${summary.planned} jobs failed (${failed.join(', ')})`,
      { context: { run: run.runId, date: run.date, failed } },
    );
  }
  return json;
}

/** One CloudWatch embedded-metric-format log line with the run's counts (no SDK call, no extra permission). */
export function runMetrics(summary: FanOutSummary, now: number) {
  const values = {
    JobsPlanned: summary.planned,
    JobsFailed: summary.totals.failed,
    JobsMissing: summary.missing,
    RowsRead: summary.totals.rowsRead,
    RowsWritten: summary.totals.rowsWritten,
    RowsRejected: summary.totals.rowsRejected,
  };
  return {
    _aws: {
      Timestamp: now,
      CloudWatchMetrics: [
        {
          Namespace: 'makoto-lake',
          Dimensions: [['Service']],
          Metrics: Object.keys(values).map((Name) => ({ Name, Unit: 'Count' })),
        },
      ],
    },
    Service: 'nightly-compaction',
    run_id: summary.runId,
    target_date: summary.date,
    ...values,
  };
}

export async function handler(event: unknown): Promise<RunSummaryJson> {
  const config = lambdaConfig(process.env);
  return runSummaryEvent(event, { config, store: await createStore(config) });
}
