import { gunzipSync } from 'node:zlib';
import { PutRecordBatchCommand, type PutRecordBatchCommandOutput } from '@aws-sdk/client-firehose';
import { STAGING_ROOT } from '../src/staging/layout.js';
import { StoreError, TransientStoreError } from '../src/store/errors.js';
import type { DeleteOptions, ObjectInfo, ObjectStore, PutOptions } from '../src/store/ObjectStore.js';
import { type RetryPolicy, withRetry } from '../src/util/retry.js';
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
 * The ingest function's store with STAGING_TRANSPORT=firehose: staging writes become Firehose records
 * (one per NDJSON line, each ending in '\n'), which the delivery stream buffers, gzips and writes under the
 * same `staging/messages/tenant_id=<t>/dt=<d>/` prefixes by dynamic partitioning on the records' own
 * tenant_id and dt. Every other write (quarantine) and every read goes to the underlying store.
 * Firehose picks its own object names, so a re-delivered batch is staged twice; the compactor keeps
 * one version per message, so the lake is the same.
 */
export class FirehoseStagingStore implements ObjectStore {
  readonly location: string;

  constructor(
    private readonly base: ObjectStore,
    private readonly client: FirehoseSender,
    private readonly streamName: string,
    private readonly options: FirehoseBatchOptions = {},
  ) {
    this.location = `firehose:${streamName} → ${base.location}`;
  }

  list(prefix: string): AsyncIterable<ObjectInfo> {
    return this.base.list(prefix);
  }
  listFolders(prefix: string): AsyncIterable<string> {
    return this.base.listFolders(prefix);
  }
  head(key: string) {
    return this.base.head(key);
  }
  getStream(key: string) {
    return this.base.getStream(key);
  }
  getToFile(key: string, path: string) {
    return this.base.getToFile(key, path);
  }
  putFile(key: string, path: string, options?: PutOptions) {
    return this.base.putFile(key, path, options);
  }
  delete(key: string, options?: DeleteOptions) {
    return this.base.delete(key, options);
  }

  async putBytes(key: string, body: Uint8Array | string, options?: PutOptions): Promise<ObjectInfo> {
    if (!key.startsWith(STAGING_ROOT)) return this.base.putBytes(key, body, options);
    const bytes = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    const text = (bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes).toString('utf8');
    const records = text
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => Buffer.from(`${line}\n`));
    await putRecordBatches(this.client, this.streamName, records, this.options);
    return { key, size: bytes.byteLength, etag: '', lastModified: new Date() };
  }
}
