/**
 * Last step of the nightly Step Functions run (docs/AWS.md): pairs the plan with the jobs' reports, writes
 * the run summary `runs/<date>/<run>.json`, emits the run's metrics (CloudWatch embedded metric format,
 * namespace `makoto-lake`) and runs the status check over the run's partitions, as the single-invocation
 * compactor does. Fails the execution when a job failed or never reported, so alarms fire.
 */
import { type FanOutSummary, parseRunRef, runSummaryJson, writeRunSummary } from '../src/app/jobs.js';
import { runStartedAt } from '../src/app/logFields.js';
import { compactionMetrics } from '../src/app/metrics.js';
import { createStore } from '../stores/createStore.js';
import {
  CompactionRunFailedError,
  type CompactorDeps,
  checkStatus,
  defaultLogger,
  defaultMetrics,
  lambdaConfig,
  publishMetrics,
} from './lambda.js';

export type RunSummaryJson = ReturnType<typeof runSummaryJson>;

export async function runSummaryEvent(event: unknown, deps: CompactorDeps): Promise<RunSummaryJson> {
  const now = deps.now ?? Date.now;
  const logger = deps.logger ?? defaultLogger();
  const run = parseRunRef((event as { run?: unknown } | null)?.run);
  const { summary } = (await writeRunSummary(deps.store, run, { whenComplete: false })) as { summary: FanOutSummary };
  const json = runSummaryJson(summary);
  // the same run metrics as a single-invocation run, so the alarms and the dashboard see either mode
  publishMetrics(
    deps.metrics ?? defaultMetrics(),
    compactionMetrics(summary, Math.max(0, now() - runStartedAt(run.runId, now()))),
  );
  const failed = json.tenants.filter((t) => t.status === 'failed' || t.status === 'locked').map((t) => `${t.tenant_id} ${t.dt}`);
  // the status check a single-invocation run ends with, over the partitions this run ran (PartitionsNeedingAttention)
  await checkStatus(deps.store, summary.results, now(), logger, deps.metrics ?? defaultMetrics());
  logger[summary.ok ? 'info' : 'error']('run finished', {
    run_id: run.runId,
    dt: run.date,
    ok: summary.ok,
    planned: summary.planned,
    missing: summary.missing,
    totals: json.totals,
    failed,
  });
  if (!summary.ok) {
    throw new CompactionRunFailedError(
      `run ${run.runId} of ${run.date}: ${failed.length} of ${summary.planned} jobs failed (${failed.join(', ')})`,
      { context: { run: run.runId, date: run.date, failed } },
    );
  }
  return json;
}

export async function handler(event: unknown): Promise<RunSummaryJson> {
  const config = lambdaConfig(process.env);
  return runSummaryEvent(event, { config, store: await createStore(config) });
}
