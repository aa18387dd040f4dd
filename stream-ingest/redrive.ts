/**
 * Optional Lambda entry point (template.yaml `RedriveFunction=enabled`): consumes the stream ingest's
 * on-failure SQS queue and redrives each failed batch from DynamoDB Streams, as `makoto-lake redrive`
 * does. Thin: SQS messages → redrive (src/redrive) → the partial-failure answer SQS event sources expect.
 */
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { ListedFailureMessages, runRedrive } from '../src/capture/redrive/runRedrive.js';
import { type Config, type Env, loadConfig } from '../src/core/config.js';
import { offboardedTenants } from '../src/lake/offboarded.js';
import type { StreamBatchReader } from '../src/ports/StreamBatchReader.js';
import type { ObjectStore } from '../src/ports/store/ObjectStore.js';
import { createStore } from '../stores/createStore.js';
import { DynamoStreamBatchReader } from '../stores/dynamodb/DynamoStreamBatchReader.js';

export interface RedriveDeps {
  readonly store: ObjectStore;
  readonly config: Config;
  readonly reader: StreamBatchReader;
  readonly log?: (line: string) => void;
}

/**
 * Redrives every message of the event. A message whose records are staged is done (SQS deletes it); one
 * that failed, aged out of the stream or is not a stream batch is reported back, so it stays in the queue
 * and its error is logged (aged out: backfill the day, then purge the message).
 *
 * @example
 * await redriveSqsEvent(event, { store, config, reader }); // { batchItemFailures: [{ itemIdentifier: '<messageId>' }] }
 */
export async function redriveSqsEvent(event: SQSEvent, deps: RedriveDeps): Promise<SQSBatchResponse> {
  const log = deps.log ?? ((line: string) => console.log(line));
  const messages = new ListedFailureMessages(
    'sqs-event',
    event.Records.map((r) => ({ id: r.messageId, body: r.body })),
  );
  const summary = await runRedrive({
    store: deps.store,
    reader: deps.reader,
    messages,
    mapping: deps.config.fieldMapping,
    // records of an offboarded tenant are quarantined with the reason, as the stream Lambda does
    refused: await offboardedTenants(deps.store),
    ...(deps.config.aws.bucket ? { exportBucket: deps.config.aws.bucket } : {}),
  });
  for (const r of summary.results) {
    log(
      JSON.stringify({
        message: r.status === 'staged' ? 'stream batch redriven' : 'stream batch not redriven',
        level: r.status === 'staged' ? 'INFO' : 'ERROR',
        messageId: r.message,
        batch: r.batch,
        status: r.status,
        received: r.received,
        staged: r.staged,
        quarantined: r.quarantined,
        quarantine: r.quarantine,
        ...(r.error ? { error: r.error } : {}),
      }),
    );
  }
  return {
    batchItemFailures: summary.results.filter((r) => !r.acknowledged).map((r) => ({ itemIdentifier: r.message })),
  };
}

let cached: Promise<RedriveDeps> | undefined;

/** Config and clients are built once per Lambda container. */
export async function redriveDeps(env: Env): Promise<RedriveDeps> {
  const config = loadConfig(env);
  return {
    store: await createStore(config),
    config,
    reader: new DynamoStreamBatchReader({ region: config.aws.region, endpoint: config.aws.dynamodbEndpoint }),
  };
}

/** The Lambda handler (template.yaml: `redrive.handler`, built from stream-ingest/redrive.ts). */
export async function handler(event: SQSEvent): Promise<SQSBatchResponse> {
  cached ??= redriveDeps(process.env).catch((error) => {
    cached = undefined;
    throw error;
  });
  return redriveSqsEvent(event, await cached);
}
