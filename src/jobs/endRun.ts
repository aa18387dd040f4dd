/**
 * The end of a compaction run, the same for the three drivers – one process (the compactor Lambda, Azure's
 * compact_http and intraday_batch), Step Functions (the summary step), Azure's queues (the job that reports
 * last): the run's metrics, the status check from the run's own results, the `compaction finished` / `run
 * finished` line, the privacy step's outcome, and whether the run failed. Only the sink differs (Powertools
 * Logger + EMF on Lambda, JSON lines through the Functions context on Azure).
 */

import { resultFailed } from '../engine/resultFailed.js';
import { compactionMetrics, type MetricPoint, type MetricSource, statusMetrics } from '../ops/metrics.js';
import type { LogLevel } from '../ops/partitionView.js';
import { summaryJson } from '../ops/report.js';
import type { ObjectStore } from '../ports/store/ObjectStore.js';
import { type FanOutSummary, runSummaryJson } from './fanOut.js';
import { outcomeFailure } from './privacyOutcome.js';
import type { CompactionRun } from './runCompaction.js';
import { statusAfterRun } from './runStatus.js';

/** Where a driver's run lines and metrics go. */
export interface RunSink {
  log(level: LogLevel, message: string, fields?: Readonly<Record<string, unknown>>): void;
  metrics(source: MetricSource, points: readonly MetricPoint[]): void;
}

export type { CompactionRun } from './runCompaction.js';

/** A finished run: one process's, or a fan-out's (its plan paired with its jobs' reports). */
export type FinishedRun = CompactionRun | FanOutSummary;

export interface EndRunContext {
  readonly store: ObjectStore;
  readonly sink: RunSink;
  /** When the run began (its RunDuration runs from here). */
  readonly startedAt: number;
  readonly now: () => number;
  /**
   * Whether the run ends with the status check (PartitionsNeedingAttention); default true. Azure's compact_http
   * and intraday_batch answer with their summary and leave the check to the nightly run (as they always did).
   */
  readonly statusCheck?: boolean;
  /** `run finished` carries the whole run summary (Azure's fan-out, docs/AZURE.md) rather than its totals. */
  readonly finishedWithSummary?: boolean;
}

export interface RunEnd<J> {
  /** The run summary as returned, written (`runs/<date>/<run>.json`) and printed. */
  readonly json: J;
  /** Whether every partition succeeded (the privacy step aside). */
  readonly ok: boolean;
  /** The failed partitions as the finished line names them: tenants (one process), `tenant date` (fan-out). */
  readonly failed: readonly string[];
  /** The privacy step's failure, if it had one. */
  readonly privacyFailure?: string;
  /**
   * Why the run fails, when it does: one process, a failed partition (its message carries the summary); a
   * fan-out, a failed job or the privacy step. Each driver throws it (Lambda) or logs it (Azure).
   */
  readonly failure?: string;
}

const isFanOut = (run: FinishedRun): run is FanOutSummary => 'planned' in run;

/** Ends a run: metrics, status check, finished line, privacy failure (in that order), and the verdict. */
export async function endRun(run: FanOutSummary, ctx: EndRunContext): Promise<RunEnd<ReturnType<typeof runSummaryJson>>>;
export async function endRun(run: CompactionRun, ctx: EndRunContext): Promise<RunEnd<ReturnType<typeof summaryJson>>>;
export async function endRun(
  run: FinishedRun,
  ctx: EndRunContext,
): Promise<RunEnd<ReturnType<typeof summaryJson> | ReturnType<typeof runSummaryJson>>> {
  const { sink } = ctx;
  const fanOut = isFanOut(run);
  const json = fanOut ? runSummaryJson(run) : summaryJson(run);
  // the same run metrics whichever driver ran it, so the alarms and the dashboard see every mode
  sink.metrics('compaction', compactionMetrics(run, Math.max(0, ctx.now() - ctx.startedAt)));
  if (ctx.statusCheck !== false) await checkStatus(ctx.store, run, ctx.now(), sink);
  const failed = run.results.filter(resultFailed).map((r) => (fanOut ? `${r.tenant} ${r.date}` : r.tenant));
  const level = run.ok ? 'info' : 'error';
  if (!fanOut) sink.log(level, 'compaction finished', { dt: run.date, ok: run.ok, totals: json.totals, failed });
  else if (ctx.finishedWithSummary) sink.log(level, 'run finished', json);
  else {
    const { runId: run_id, date: dt, ok, planned, missing } = run;
    sink.log(level, 'run finished', { run_id, dt, ok, planned, missing, totals: json.totals, failed });
  }
  const privacyFailure = outcomeFailure(run.privacy);
  if (privacyFailure) {
    sink.log('error', 'privacy step failed', { ...(fanOut ? { run_id: run.runId } : {}), dt: run.date, error: privacyFailure });
  }
  return {
    json,
    ok: run.ok,
    failed,
    ...(privacyFailure ? { privacyFailure } : {}),
    ...verdict(run, json.totals.tenants, failed, privacyFailure, json),
  };
}

function verdict(run: FinishedRun, tenants: number, failed: readonly string[], privacyFailure: string | undefined, json: object) {
  if (!isFanOut(run)) {
    if (run.ok) return {};
    return {
      failure: `compaction of ${run.date} failed for ${failed.length} of ${tenants} tenants (${failed.join(', ')}): ${JSON.stringify(json)}`,
    };
  }
  const problems = [
    ...(run.ok ? [] : [`${failed.length} of ${run.planned} jobs failed (${failed.join(', ')})`]),
    ...(privacyFailure ? [`the privacy step failed: ${privacyFailure}`] : []),
  ];
  return problems.length === 0 ? {} : { failure: `run ${run.runId} of ${run.date}: ${problems.join('; ')}` };
}

/**
 * The status check over the run's partitions, from its own results (statusAfterRun; the failed ones are
 * counted by the run): `status checked` with its metrics (Source `status`), or `status check failed` when the
 * store refuses it – logged, never a failure of a run whose partitions committed.
 */
async function checkStatus(store: ObjectStore, run: FinishedRun, at: number, sink: RunSink): Promise<void> {
  const checked = await statusAfterRun(store, run.results, at);
  if ('error' in checked) {
    sink.log('error', 'status check failed', { error: checked.error, partitions: checked.checked });
    return;
  }
  sink.metrics('status', statusMetrics(checked.status));
  const needs = checked.status.needs_attention;
  sink.log(needs > 0 ? 'warn' : 'info', 'status checked', { needs_attention: needs });
}
