/**
 * Last step of the nightly Step Functions run (docs/AWS.md): pairs the plan with the jobs' reports, writes
 * the run summary `runs/<date>/<run>.json`, emits the run's metrics (CloudWatch embedded metric format,
 * namespace `makoto-lake`) and runs the status check over the run's partitions, as the single-invocation
 * compactor does. Fails the execution when a job failed or never reported, or when the night's privacy step
 * (`privacy`: its report, or the error the state machine caught it with) failed, so alarms fire.
 */
import { type FanOutSummary, parseRunRef, runSummaryJson, writeRunSummary } from '../src/app/jobs.js';
import { compactionMetrics } from '../src/app/metrics.js';
import { resultFailed } from '../src/compaction/resultFailed.js';
import { runStartedAt } from '../src/time/runId.js';
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
  const privacy = privacyOutcome((event as { privacy?: unknown } | null)?.privacy);
  const { summary } = (await writeRunSummary(deps.store, run, { whenComplete: false })) as { summary: FanOutSummary };
  const json = runSummaryJson(summary);
  // the same run metrics as a single-invocation run, so the alarms and the dashboard see either mode
  publishMetrics(
    deps.metrics ?? defaultMetrics(),
    compactionMetrics(summary, Math.max(0, now() - runStartedAt(run.runId, now()))),
  );
  const failed = json.tenants.filter(resultFailed).map((t) => `${t.tenant_id} ${t.dt}`);
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
  if (privacy.failure) logger.error('privacy step failed', { run_id: run.runId, dt: run.date, error: privacy.failure });
  if (!summary.ok || privacy.failure) {
    const problems = [
      ...(summary.ok ? [] : [`${failed.length} of ${summary.planned} jobs failed (${failed.join(', ')})`]),
      ...(privacy.failure ? [`the privacy step failed: ${privacy.failure}`] : []),
    ];
    throw new CompactionRunFailedError(`run ${run.runId} of ${run.date}: ${problems.join('; ')}`, {
      context: { run: run.runId, date: run.date, failed, ...(privacy.failure ? { privacy: privacy.failure } : {}) },
    });
  }
  return json;
}

/**
 * What the state machine's privacy step handed over: `{"report": {…}}` when the compactor returned, or the
 * `{"Error", "Cause"}` its Catch took (a PrivacyStepFailedError, a timeout); absent when invoked without it.
 */
export function privacyOutcome(value: unknown): { failure?: string } {
  if (value === undefined || value === null || typeof value !== 'object') return {};
  const { Error: name, Cause: cause } = value as { Error?: unknown; Cause?: unknown };
  if (name === undefined) return {};
  // a Lambda error's Cause is its JSON (errorType, errorMessage, trace); a States error's, plain text
  let message = typeof cause === 'string' ? cause : '';
  try {
    const parsed = JSON.parse(message) as { errorMessage?: unknown };
    if (typeof parsed?.errorMessage === 'string') message = parsed.errorMessage;
  } catch {
    // plain text
  }
  return { failure: message ? `${String(name)}: ${message}` : String(name) };
}

export async function handler(event: unknown): Promise<RunSummaryJson> {
  const config = lambdaConfig(process.env);
  return runSummaryEvent(event, { config, store: await createStore(config) });
}
