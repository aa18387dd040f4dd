import { DefaultAzureCredential } from '@azure/identity';
import { QueueClient } from '@azure/storage-queue';
import type { JobPayload } from '../src/app/compactionPayload.js';
import type { Config } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { mapLimit } from '../src/util/concurrency.js';

/** The nightly jobs' queue, as daily_batch fills it. */
export interface JobQueue {
  /** Sends one message per job (created with the queue if missing); returns how many were sent. */
  enqueue(payloads: readonly JobPayload[]): Promise<number>;
}

/**
 * The job queue as the queue trigger reads it: one JSON message per job, base64-encoded (the Functions
 * host's default `messageEncoding`), on the lake's storage account. Pass a QueueClient to use your own.
 */
export function storageJobQueue(config: Config, queueName: string, client?: QueueClient): JobQueue {
  const queue = client ?? queueClient(config, queueName);
  let created: Promise<unknown> | undefined;
  return {
    async enqueue(payloads) {
      created ??= queue.createIfNotExists();
      await created;
      await mapLimit(payloads, 16, (payload) =>
        queue.sendMessage(Buffer.from(JSON.stringify(toWire(payload))).toString('base64')),
      );
      return payloads.length;
    },
  };
}

/** The message body: the same `{"job": …, "run": …}` the compactor Lambda takes. */
export function toWire({ job, run }: JobPayload) {
  return { job, run: { run_id: run.runId, target_date: run.date } };
}

function queueClient(config: Config, queueName: string): QueueClient {
  const { connectionString, accountUrl } = config.azure;
  if (connectionString) return new QueueClient(connectionString, queueName);
  if (accountUrl) {
    // the account's blob URL names the account; its queue service sits next to it
    const queueUrl = accountUrl.replace('.blob.', '.queue.').replace(/\/$/, '');
    return new QueueClient(`${queueUrl}/${queueName}`, new DefaultAzureCredential());
  }
  throw new ConfigError('the job queue needs AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_URL');
}
