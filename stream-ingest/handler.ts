/**
 * Lambda entry point for the messages table's DynamoDB stream. Thin: records → source changes →
 * ingestBatch (normalise, quarantine the unacceptable, one staging object per tenant-day) → the
 * partial-failure answer Lambda's ReportBatchItemFailures expects.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { Context, DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import { ingestGroupLogLine } from '../src/app/logFields.js';
import { ingestMetrics, METRIC_NAMESPACE, METRIC_SERVICE, SOURCE_DIMENSION } from '../src/app/metrics.js';
import { type Config, type Env, loadConfig } from '../src/config.js';
import { offboardedTenants } from '../src/erase/offboard.js';
import { describeFailures, ingestBatch } from '../src/ingest/ingestBatch.js';
import { dynamodbEventChanges } from '../src/ingest/sources.js';
import type { ObjectStore } from '../src/store/ObjectStore.js';
import { createStore } from '../stores/createStore.js';
import { StreamBatchFailedError } from './errors.js';

export interface StreamIngestDeps {
  readonly store: ObjectStore;
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
  if (context) logger.addContext(context);
  const { changes, batchId } = dynamodbEventChanges(event);
  if (changes.length === 0) return { batchItemFailures: [] };
  logger.resetKeys();
  logger.appendKeys({ run_id: batchId });
  const result = await ingestBatch(deps.store, changes, {
    source: 'dynamodb',
    batchId,
    mapping: deps.config.fieldMapping,
    now: deps.now?.(),
    refused: await offboardedTenants(deps.store),
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
  const base = await createStore(config);
  if (config.aws.stagingTransport !== 'firehose') return { store: base, config };
  const { FirehoseClient } = await import('@aws-sdk/client-firehose');
  const { FirehoseStagingStore } = await import('./firehose.js');
  const client = new FirehoseClient({ region: config.aws.region });
  return { store: new FirehoseStagingStore(base, client, config.aws.firehoseStreamName as string), config };
}

/** The Lambda handler (template.yaml: `handler.handler`, built from stream-ingest/handler.ts). */
export async function handler(event: DynamoDBStreamEvent, context?: Context): Promise<DynamoDBBatchResponse> {
  cached ??= streamIngestDeps(process.env).catch((error) => {
    cached = undefined;
    throw error;
  });
  return ingestStreamEvent(event, await cached, context);
}
