/**
 * Structured logs and metrics of the Functions app. The Node worker turns every `context.log` argument into
 * one message string (objects do not become Application Insights customDimensions:
 * Azure/azure-functions-nodejs-library#227), so each line is one JSON object with the same keys as the
 * Lambda lines (tenant_id, dt, run_id, status, rows …) plus the invocation id; KQL reads them with
 * `parse_json(message)`. The metrics are one line per run / batch, `"message": "metrics"`, with the names of
 * src/ops/metrics.ts as keys: log-based metrics that the alert rules in docs/AZURE.md query.
 */
import type { InvocationContext } from '@azure/functions';
import type { Config } from '../src/core/config.js';
import { newRunId } from '../src/core/time/runId.js';
import type { PartitionResult } from '../src/engine/compactPartition.js';
import { type CompactionRun, endRun, type RunSink } from '../src/jobs/endRun.js';
import { type RunRequest, runTask } from '../src/jobs/task.js';
import { engineLogFields } from '../src/ops/logFields.js';
import {
  METRIC_NAMESPACE,
  METRIC_SERVICE,
  type MetricPoint,
  type MetricSource,
  metricValues,
  SOURCE_DIMENSION,
} from '../src/ops/metrics.js';
import { type LogLevel, partitionLine } from '../src/ops/partitionView.js';
import type { ObjectStore } from '../src/ports/store/ObjectStore.js';

export type { LogLevel } from '../src/ops/partitionView.js';

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

/** A function log as the sink of a run's end (src/jobs/endRun.ts). */
export const runSink = (log: FunctionLog): RunSink => ({ log, metrics: log.metrics });

/** The one line per partition (`partition finished`): an error when it failed, a warning when it was locked. */
export function logPartition(log: FunctionLog, result: PartitionResult, fields: Readonly<Record<string, unknown>> = {}): void {
  const [level, message, partition] = partitionLine(result);
  log(level, message, { ...partition, ...fields });
}

/**
 * A `run` task in this invocation with the run's lines – started, one per partition, engine warnings – then
 * endRun without the status check (the nightly run checks the lake): the metrics and `compaction finished`.
 * compact_http and intraday_batch both run it.
 */
export async function loggedCompaction(
  context: InvocationContext,
  runtime: { readonly store: ObjectStore; readonly config: Config },
  request: RunRequest,
  now: () => number = Date.now,
): Promise<CompactionRun> {
  const started = now();
  const log = functionLog(context, newRunId(started));
  log('info', 'compaction started', { dt: request.date, tenants: request.tenants, late: request.late });
  const env = {
    ...runtime,
    now,
    onResult: (r: PartitionResult) => logPartition(log, r),
    log: (name: string, fields: Record<string, unknown>) => {
      if (name === 'manifest.unreadable') log('warn', name, engineLogFields(fields));
    },
  };
  const run = await runTask(env, { kind: 'run', request });
  await endRun(run, { store: runtime.store, sink: runSink(log), startedAt: started, now, statusCheck: false });
  return run;
}
