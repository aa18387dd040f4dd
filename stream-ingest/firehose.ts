import { PutRecordBatchCommand, type PutRecordBatchCommandOutput } from '@aws-sdk/client-firehose';
import type { StagedRecord } from '../src/core/schema/messageSchema.js';
import { safeJson } from '../src/core/staging/ndjson.js';
import { type RetryPolicy, withRetry } from '../src/core/util/retry.js';
import type { StagingSink } from '../src/ports/StagingSink.js';
import { StoreError, TransientStoreError } from '../src/ports/store/errors.js';
import { FirehoseDeliveryError } from './errors.js';

/** PutRecordBatch limits: 500 records and 4 MiB per call, 1,000 KiB per record. */
export const FIREHOSE_MAX_RECORDS = 500;
export const FIREHOSE_MAX_BATCH_BYTES = 4 * 1024 * 1024;
export const FIREHOSE_MAX_RECORD_BYTES = 1000 * 1024;

/** The part of FirehoseClient we use, so tests can pass a stub (Firehose has no local stand-in). */
export interface FirehoseSender {
  send(command: PutRecordBatchCommand): Promise<Pick<PutRecordBatchCommandOutput, 'FailedPutCount' | 'RequestResponses'>>;
}

export interface FirehoseBatchOptions {
  readonly retry?: RetryPolicy;
  readonly sleep?: (ms: number) => Promise<void>;
}

const FIREHOSE_RETRY: RetryPolicy = { attempts: 6, baseDelayMs: 100, maxDelayMs: 3_000, deadlineMs: 30_000 };

/** Splits records into PutRecordBatch calls: at most 500 records and 4 MiB each, order kept. */
export function firehoseBatches(records: readonly Uint8Array[]): Uint8Array[][] {
  const batches: Uint8Array[][] = [];
  let current: Uint8Array[] = [];
  let bytes = 0;
  for (const record of records) {
    if (record.byteLength > FIREHOSE_MAX_RECORD_BYTES) {
      throw new StoreError(`a record of ${record.byteLength} bytes exceeds Firehose's ${FIREHOSE_MAX_RECORD_BYTES}-byte limit`);
    }
    if (current.length === FIREHOSE_MAX_RECORDS || bytes + record.byteLength > FIREHOSE_MAX_BATCH_BYTES) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(record);
    bytes += record.byteLength;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/**
 * Sends records to a delivery stream with PutRecordBatch. A call can succeed for some entries and fail
 * for others (FailedPutCount / RequestResponses[i].ErrorCode): only the failed entries are sent again,
 * with capped backoff. Throttling and service errors of a whole call are retried the same way.
 * Throws FirehoseDeliveryError when entries still fail after the last attempt.
 */
export async function putRecordBatches(
  client: FirehoseSender,
  streamName: string,
  records: readonly Uint8Array[],
  options: FirehoseBatchOptions = {},
): Promise<{ calls: number }> {
  let calls = 0;
  for (const batch of firehoseBatches(records)) {
    let pending = batch;
    await withRetry(
      async () => {
        calls++;
        let out: Awaited<ReturnType<FirehoseSender['send']>>;
        try {
          out = await client.send(
            new PutRecordBatchCommand({ DeliveryStreamName: streamName, Records: pending.map((Data) => ({ Data })) }),
          );
        } catch (error) {
          throw firehoseCallError(error, streamName);
        }
        if (!out.FailedPutCount) return;
        const responses = out.RequestResponses ?? [];
        const failed = pending.filter((_, i) => responses[i]?.ErrorCode !== undefined);
        const codes = [...new Set(responses.map((r) => r.ErrorCode).filter((c) => c !== undefined))].join(', ');
        // A count without per-entry codes tells us nothing about which ones: send them all again.
        pending = failed.length > 0 ? failed : pending;
        throw new FirehoseDeliveryError(`${pending.length} of ${batch.length} records refused by ${streamName}: ${codes}`, {
          context: { streamName, failed: pending.length },
        });
      },
      (error) => error instanceof TransientStoreError,
      options.retry ?? FIREHOSE_RETRY,
      options.sleep,
    );
  }
  return { calls };
}

function firehoseCallError(error: unknown, streamName: string): Error {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number }; $retryable?: unknown };
  const status = e.$metadata?.httpStatusCode;
  const transient =
    e.name === 'ServiceUnavailableException' ||
    e.name === 'ThrottlingException' ||
    e.$retryable !== undefined ||
    (status !== undefined && (status === 429 || status >= 500));
  const message = `PutRecordBatch to ${streamName} failed: ${e.name ?? 'Error'}${status ? ` (HTTP ${status})` : ''}`;
  return transient
    ? new FirehoseDeliveryError(message, { cause: error, context: { streamName } })
    : new StoreError(message, { cause: error, context: { streamName } });
}

/**
 * Staging through a Firehose delivery stream (STAGING_TRANSPORT=firehose): one record per staged record, its
 * NDJSON line ending in '\n' (the bytes the object-store sink gzips), which the delivery stream buffers,
 * gzips and writes under the same `staging/messages/tenant_id=<t>/dt=<d>/` prefixes by dynamic partitioning
 * on the records' own tenant_id and dt. Firehose picks its own object names, so the key is not used and a
 * re-delivered batch is staged twice; the compactor keeps one version per message, so the lake is the same.
 *
 * @example
 * const sink = new FirehoseStagingSink(new FirehoseClient({ region }), 'makoto-staging');
 * await ingestBatch(store, changes, { source: 'dynamodb', batchId, sink }); // quarantine still goes to store
 */
export class FirehoseStagingSink implements StagingSink {
  readonly location: string;

  constructor(
    private readonly client: FirehoseSender,
    private readonly streamName: string,
    private readonly options: FirehoseBatchOptions = {},
  ) {
    this.location = `firehose:${streamName}`;
  }

  async put(_key: string, records: readonly StagedRecord[]): Promise<void> {
    const lines = records.map((record) => Buffer.from(`${safeJson(record)}\n`));
    await putRecordBatches(this.client, this.streamName, lines, this.options);
  }
}
