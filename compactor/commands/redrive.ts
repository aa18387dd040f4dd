/**
 * `redrive`: the records of failed stream batches (on-failure messages in a FILE or an SQS queue) re-read
 * from DynamoDB Streams and staged under the Lambda's own object names.
 *
 *   makoto-lake redrive --source dynamodb [FILE | --queue-url URL] [--max-messages N] [--data-dir DIR] [--json]
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { quarantineLines } from '../../src/capture/ingest/quarantineSummary.js';
import { stagedDaysLines } from '../../src/capture/ingest/stagedDays.js';
import { failureMessagesFromText } from '../../src/capture/redrive/fileMessages.js';
import { ListedFailureMessages, runRedrive } from '../../src/capture/redrive/runRedrive.js';
import type { Config } from '../../src/core/config.js';
import { UsageError } from '../../src/core/errors.js';
import { offboardedTenants } from '../../src/lake/offboarded.js';
import { table } from '../../src/ops/report.js';
import type { FailureMessageSource } from '../../src/ports/FailureMessageSource.js';
import { createStore } from '../../stores/createStore.js';
import { chosenStore, type Out } from './args.js';

export async function redriveCommand(args: readonly string[], loaded: Config, out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      source: { type: 'string' },
      'queue-url': { type: 'string' },
      'max-messages': { type: 'string' },
      'data-dir': { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (values.source !== 'dynamodb') {
    throw new UsageError(`redrive --source must be dynamodb, got ${JSON.stringify(values.source ?? null)}`);
  }
  if (positionals.length > 1) throw new UsageError('redrive takes at most one FILE');
  const file = positionals[0];
  const queueUrl = values['queue-url'] ?? (file === undefined ? loaded.aws.failureQueueUrl : undefined);
  if (file !== undefined && values['queue-url'] !== undefined) throw new UsageError('give FILE or --queue-url, not both');
  if (file === undefined && queueUrl === undefined) {
    throw new UsageError('redrive needs FILE (on-failure message bodies) or --queue-url URL (or STREAM_FAILURE_QUEUE_URL)');
  }
  const maxText = values['max-messages'];
  const maxMessages = maxText === undefined ? undefined : Number(maxText);
  if (maxMessages !== undefined && (!Number.isInteger(maxMessages) || maxMessages < 1)) {
    throw new UsageError(`--max-messages must be a positive integer, got ${JSON.stringify(maxText)}`);
  }
  // before the first message is received: nothing may be taken from the queue for an implicit ./data
  const config = chosenStore(loaded, values['data-dir'], 'redrive stages records it reads from DynamoDB Streams');
  const messages = file !== undefined ? await fileMessages(file) : await sqsMessages(queueUrl as string, config);
  const { DynamoStreamBatchReader } = await import('../../stores/dynamodb/DynamoStreamBatchReader.js');
  const reader = new DynamoStreamBatchReader({ region: config.aws.region, endpoint: config.aws.dynamodbEndpoint });
  const store = await createStore(config);
  out.stderr(`redriving failed stream batches from ${messages.location} into ${store.location}`);
  const summary = await runRedrive({
    store,
    reader,
    messages,
    maxMessages,
    mapping: config.fieldMapping,
    refused: await offboardedTenants(store),
    ...(config.aws.bucket ? { exportBucket: config.aws.bucket } : {}),
    onResult: (r) =>
      out.stderr(
        r.status === 'staged'
          ? `✓ ${r.batch}: ${r.received} records → staged ${r.staged}, quarantined ${r.quarantined}${r.acknowledged && file === undefined ? ' (message deleted)' : ''}`
          : `✗ ${r.batch || r.message} ${r.status}: ${r.error}`,
      ),
  });
  if (values.json) out.stdout(JSON.stringify(summary, null, 2));
  else {
    out.stdout(
      table([
        ['batch', 'status', 'records', 'staged', 'quarantined', 'objects'],
        ...summary.results.map((r) => [r.batch || r.message, r.status, r.received, r.staged, r.quarantined, r.objects.length]),
      ]),
    );
  }
  for (const line of stagedDaysLines(summary.days)) out.stderr(line);
  for (const line of quarantineLines(summary.quarantine)) out.stderr(line);
  if (summary.messages === 0) out.stderr(`no on-failure messages in ${messages.location}`);
  return summary.ok ? 0 : 1;
}

async function fileMessages(file: string): Promise<FailureMessageSource> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  return new ListedFailureMessages(file, failureMessagesFromText(text, file));
}

async function sqsMessages(queueUrl: string, config: Config): Promise<FailureMessageSource> {
  const { SQSClient } = await import('@aws-sdk/client-sqs');
  const { SqsFailureQueue } = await import('../../stores/sqs/SqsFailureQueue.js');
  return new SqsFailureQueue(new SQSClient({ region: config.aws.region, endpoint: config.aws.sqsEndpoint }), queueUrl);
}
