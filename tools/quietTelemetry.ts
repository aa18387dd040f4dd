/** Powertools telemetry that writes nothing, for runs (tests, the bench) that do not look at it. */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { METRIC_NAMESPACE, METRIC_SERVICE } from '../src/ops/metrics.js';

/** Metrics that are collected and then dropped, for tests and benches that do not look at them. */
class DiscardedMetrics extends Metrics {
  override publishStoredMetrics(): this {
    this.clearMetrics();
    this.clearDimensions();
    return this;
  }
}

/** Logger and Metrics that write nothing: for runs whose output a test does not check. */
export function quietTelemetry(): { logger: Logger; metrics: Metrics } {
  return {
    logger: new Logger({ serviceName: METRIC_SERVICE, logLevel: 'SILENT' }),
    metrics: new DiscardedMetrics({ namespace: METRIC_NAMESPACE, serviceName: METRIC_SERVICE }),
  };
}
