/**
 * Lambda entry point for the messages table's DynamoDB stream. Thin: records → source changes →
 * ingestBatch (normalise, quarantine the unacceptable, one staging object per tenant-day) → the
 * partial-failure answer Lambda's ReportBatchItemFailures expects.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { Context, DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import { describeFailures, ingestBatch } from '../src/capture/ingest/ingestBatch.js';
import { dynamodbEventChanges } from '../src/capture/ingest/sources.js';
import { type Config, type Env, loadConfig } from '../src/core/config.js';
import { offboardedTenants } from '../src/lake/offboarded.js';
import { ingestGroupLogLine } from '../src/ops/logFields.js';
import { ingestMetrics, METRIC_NAMESPACE, METRIC_SERVICE, SOURCE_DIMENSION } from '../src/ops/metrics.js';
import type { StagingSink } from '../src/ports/StagingSink.js';
import type { ObjectStore } from '../src/ports/store/ObjectStore.js';
import { createStore } from '../stores/createStore.js';
import { StreamBatchFailedError } from './errors.js';
import { withLambdaContext } from './lambdaContext.js';

export interface StreamIngestDeps {
  /** The lake's store: quarantine, pending deletes, the offboarded list; staging too unless `sink` is set. */
  readonly store: ObjectStore;
  /** Where staging goes (STAGING_TRANSPORT=firehose: the delivery stream); default: objects in `store`. */
  readonly sink?: StagingSink;
  readonly config: Config;
  readonly now?: () => number;
  /** JSON log lines (Powertools); default: one Logger per container. */
  readonly logger?: Logger;
  /** CloudWatch EMF (Powertools); default: one Metrics per container. */
  readonly metrics?: Metrics;
}

/**
 * Ingests one stream batch. Returns no failures when everything is stored; otherwise names the first
 * record of the first group that could not be written, so Lambda re-delivers the shard from there and the
 * groups before it are not written again. Throws when nothing of the batch could be stored (the whole
 * batch is retried, and counted as an error).
 *
 * @example
 * const answer = await ingestStreamEvent(event, { store, config });
 * // { batchItemFailures: [] }  or  { batchItemFailures: [{ itemIdentifier: '4100000000012345678901' }] }
 */
export async function ingestStreamEvent(
  event: DynamoDBStreamEvent,
  deps: StreamIngestDeps,
  context?: Context,
): Promise<DynamoDBBatchResponse> {
  const logger = deps.logger ?? defaultLogger();
  const ingest = (e: DynamoDBStreamEvent) => ingestEvent(e, deps, logger);
  return context ? withLambdaContext(logger, ingest)(event, context) : ingest(event);
}

async function ingestEvent(event: DynamoDBStreamEvent, deps: StreamIngestDeps, logger: Logger): Promise<DynamoDBBatchResponse> {
  const { changes, batchId } = dynamodbEventChanges(event);
  if (changes.length === 0) return { batchItemFailures: [] };
  logger.appendKeys({ run_id: batchId });
  const result = await ingestBatch(deps.store, changes, {
    source: 'dynamodb',
    batchId,
    mapping: deps.config.fieldMapping,
    now: deps.now?.(),
    refused: await offboardedTenants(deps.store),
    sink: deps.sink,
  });
  const metrics = deps.metrics ?? defaultMetrics();
  metrics.addDimension(SOURCE_DIMENSION, 'dynamodb');
  for (const p of ingestMetrics(result)) metrics.addMetric(p.name, p.unit, p.value);
  metrics.publishStoredMetrics();
  for (const group of result.written) logger.info(...ingestGroupLogLine(group));
  for (const group of result.failed) logger.error(...ingestGroupLogLine(group));
  const summary = {
    received: result.received,
    staged: result.staged,
    quarantined: result.quarantined,
    objects: result.written.length,
  };
  if (result.firstFailedIndex === undefined) {
    logger.info('stream batch ingested', summary);
    return { batchItemFailures: [] };
  }
  if (result.written.length === 0) {
    throw new StreamBatchFailedError(`no record of the batch could be stored: ${describeFailures(result)}`, {
      cause: result.failed[0]?.error,
      context: { batchId, records: result.received },
    });
  }
  const sequenceNumber = event.Records[result.firstFailedIndex]?.dynamodb?.SequenceNumber ?? '';
  logger.warn('stream batch partly ingested; retrying from the first failed record', { ...summary, retry_from: sequenceNumber });
  return { batchItemFailures: [{ itemIdentifier: sequenceNumber }] };
}

let logger: Logger | undefined;
let metrics: Metrics | undefined;
const defaultLogger = () => {
  logger ??= new Logger({ serviceName: METRIC_SERVICE });
  return logger;
};
const defaultMetrics = () => {
  metrics ??= new Metrics({ namespace: METRIC_NAMESPACE, serviceName: METRIC_SERVICE });
  return metrics;
};

let cached: Promise<StreamIngestDeps> | undefined;

/** Config and clients are built once per Lambda container, on the first event. */
export async function streamIngestDeps(env: Env): Promise<StreamIngestDeps> {
  const config = loadConfig(env);
  const store = await createStore(config);
  if (config.aws.stagingTransport !== 'firehose') return { store, config };
  const { FirehoseClient } = await import('@aws-sdk/client-firehose');
  const { FirehoseStagingSink } = await import('./firehose.js');
  const client = new FirehoseClient({ region: config.aws.region });
  return { store, sink: new FirehoseStagingSink(client, config.aws.firehoseStreamName as string), config };
}

/** The Lambda handler (template.yaml: `handler.handler`, built from stream-ingest/handler.ts). */
export async function handler(event: DynamoDBStreamEvent, context?: Context): Promise<DynamoDBBatchResponse> {
  cached ??= streamIngestDeps(process.env).catch((error) => {
    cached = undefined;
    throw error;
  });
  return ingestStreamEvent(event, await cached, context);
}
