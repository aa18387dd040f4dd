/**
 * Structured logs and metrics of the Functions app. The Node worker turns every `context.log` argument into
 * one message string (objects do not become Application Insights customDimensions:
 * Azure/azure-functions-nodejs-library#227), so each line is one JSON object with the same keys as the
 * Lambda lines (tenant_id, dt, run_id, status, rows …) plus the invocation id; KQL reads them with
 * `parse_json(message)`. The metrics are one line per run / batch, `"message": "metrics"`, with the names of
 * src/app/metrics.ts as keys: log-based metrics that the alert rules in docs/AZURE.md query.
 */
import type { InvocationContext } from '@azure/functions';
import { engineLogFields, partitionLogFields } from '../src/app/logFields.js';
import {
  compactionMetrics,
  METRIC_NAMESPACE,
  METRIC_SERVICE,
  type MetricPoint,
  type MetricSource,
  metricValues,
  SOURCE_DIMENSION,
} from '../src/app/metrics.js';
import { summaryJson } from '../src/app/report.js';
import { type RunCompactionRequest, runCompaction } from '../src/app/runCompaction.js';
import type { PartitionResult } from '../src/compaction/compactPartition.js';
import type { RunSummary } from '../src/compaction/compactTenants.js';
import { resultFailed } from '../src/compaction/resultFailed.js';
import { targetDate } from '../src/time/jst.js';
import { newRunId } from '../src/time/runId.js';

export type LogLevel = 'info' | 'warn' | 'error';

/** A logger bound to one invocation: every line carries the invocation id and the run id. */
export interface FunctionLog {
  (level: LogLevel, message: string, fields?: Readonly<Record<string, unknown>>): void;
  metrics(source: MetricSource, points: readonly MetricPoint[]): void;
}

export function functionLog(context: InvocationContext, runId: string): FunctionLog {
  const log = (level: LogLevel, message: string, fields: Readonly<Record<string, unknown>> = {}) =>
    context[level](
      JSON.stringify({ message, service: METRIC_SERVICE, invocation_id: context.invocationId, run_id: runId, ...fields }),
    );
  return Object.assign(log, {
    metrics: (source: MetricSource, points: readonly MetricPoint[]) =>
      log('info', 'metrics', { namespace: METRIC_NAMESPACE, [SOURCE_DIMENSION]: source, ...metricValues(points) }),
  });
}

/** The one line per partition (`partition finished`): an error when it failed, a warning when it was locked. */
export function logPartition(log: FunctionLog, result: PartitionResult, fields: Readonly<Record<string, unknown>> = {}): void {
  const level = result.status === 'failed' ? 'error' : result.status === 'locked' ? 'warn' : 'info';
  log(level, 'partition finished', { ...partitionLogFields(result), ...fields });
}

/**
 * runCompaction with the run's lines: started, one per partition, engine warnings, the metrics, finished.
 * daily_batch and compact_http both run it.
 */
export async function loggedCompaction(
  context: InvocationContext,
  request: Omit<RunCompactionRequest, 'onResult' | 'log'>,
): Promise<RunSummary> {
  const now = request.now ?? Date.now;
  const started = now();
  const log = functionLog(context, newRunId(started));
  const date = request.date ?? targetDate(started, request.config.targetDateOffset);
  log('info', 'compaction started', {
    dt: date,
    tenants: request.tenants ?? request.config.tenants,
    late: request.late === true,
  });
  const summary = await runCompaction({
    ...request,
    date,
    onResult: (r) => logPartition(log, r),
    log: (name, fields) => {
      if (name === 'manifest.unreadable') log('warn', name, engineLogFields(fields));
    },
  });
  log.metrics('compaction', compactionMetrics(summary, now() - started));
  const failed = summary.results.filter(resultFailed).map((r) => r.tenant);
  log(summary.ok ? 'info' : 'error', 'compaction finished', {
    dt: summary.date,
    ok: summary.ok,
    totals: summaryJson(summary).totals,
    failed,
  });
  return summary;
}
