/**
 * Lambda entry point for the messages table's DynamoDB stream. Thin: records → source changes →
 * ingestBatch (normalise, quarantine the unacceptable, one staging object per tenant-day) → the
 * partial-failure answer Lambda's ReportBatchItemFailures expects.
 */
import type { DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import { type Config, type Env, loadConfig } from '../src/config.js';
import { describeFailures, ingestBatch } from '../src/ingest/ingestBatch.js';
import { dynamodbEventChanges } from '../src/ingest/sources.js';
import type { ObjectStore } from '../src/store/ObjectStore.js';
import { createStore } from '../stores/createStore.js';
import { StreamBatchFailedError } from './errors.js';

export interface StreamIngestDeps {
  readonly store: ObjectStore;
  readonly config: Config;
  readonly now?: () => number;
  readonly log?: (line: string) => void;
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
export async function ingestStreamEvent(event: DynamoDBStreamEvent, deps: StreamIngestDeps): Promise<DynamoDBBatchResponse> {
  const log = deps.log ?? ((line: string) => console.log(line));
  const { changes, batchId } = dynamodbEventChanges(event);
  if (changes.length === 0) return { batchItemFailures: [] };
  const result = await ingestBatch(deps.store, changes, {
    source: 'dynamodb',
    batchId,
    mapping: deps.config.fieldMapping,
    now: deps.now?.(),
  });
  const summary = { received: result.received, staged: result.staged, quarantined: result.quarantined };
  if (result.firstFailedIndex === undefined) {
    log(JSON.stringify({ message: 'stream batch ingested', batchId, ...summary, objects: result.written.length }));
    return { batchItemFailures: [] };
  }
  if (result.written.length === 0) {
    throw new StreamBatchFailedError(`no record of the batch could be stored: ${describeFailures(result)}`, {
      cause: result.failed[0]?.error,
      context: { batchId, records: result.received },
    });
  }
  const sequenceNumber = event.Records[result.firstFailedIndex]?.dynamodb?.SequenceNumber ?? '';
  log(
    JSON.stringify({
      message: 'stream batch partly ingested; retrying from the first failed record',
      batchId,
      ...summary,
      retryFrom: sequenceNumber,
      failed: describeFailures(result),
    }),
  );
  return { batchItemFailures: [{ itemIdentifier: sequenceNumber }] };
}

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
export async function handler(event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> {
  cached ??= streamIngestDeps(process.env).catch((error) => {
    cached = undefined;
    throw error;
  });
  return ingestStreamEvent(event, await cached);
}
