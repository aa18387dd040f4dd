import { DefaultAzureCredential } from '@azure/identity';
import { QueueClient } from '@azure/storage-queue';
import type { Config } from '../src/core/config.js';
import { ConfigError } from '../src/core/errors.js';
import { mapLimit } from '../src/core/util/concurrency.js';
import type { JobPayload } from '../src/jobs/compactionPayload.js';
import { type SplitTaskPayload, splitTaskWire } from '../src/jobs/splitTasks.js';

/** The nightly jobs' queue, as daily_batch fills it. */
export interface JobQueue {
  /** Sends one message per job (created with the queue if missing); returns how many were sent. */
  enqueue(payloads: readonly JobPayload[]): Promise<number>;
}

/** The split tasks' queue (COMPACTION_TASK_QUEUE): compact_job and compact_task enqueue a split's stages on it. */
export interface TaskQueue {
  /** Sends one message per task (created with the queue if missing); returns how many were sent. */
  enqueue(payloads: readonly SplitTaskPayload[]): Promise<number>;
}

/**
 * The job queue as the queue trigger reads it: one JSON message per job, base64-encoded (the Functions
 * host's default `messageEncoding`), on the lake's storage account. Pass a QueueClient to use your own.
 */
export function storageJobQueue(config: Config, queueName: string, client?: QueueClient): JobQueue {
  const send = storageQueue(config, queueName, client);
  return { enqueue: (payloads) => send(payloads.map(toWire)) };
}

/** The task queue: one message per split task, the same `{"split_task": …, "run": …}` the compactor Lambda takes. */
export function storageTaskQueue(config: Config, queueName: string, client?: QueueClient): TaskQueue {
  const send = storageQueue(config, queueName, client);
  return { enqueue: (payloads) => send(payloads.map(splitTaskWire)) };
}

function storageQueue(config: Config, queueName: string, client?: QueueClient) {
  const queue = client ?? queueClient(config, queueName);
  let created: Promise<unknown> | undefined;
  return async (bodies: readonly unknown[]): Promise<number> => {
    created ??= queue.createIfNotExists();
    await created;
    await mapLimit(bodies, 16, (body) => queue.sendMessage(Buffer.from(JSON.stringify(body)).toString('base64')));
    return bodies.length;
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
