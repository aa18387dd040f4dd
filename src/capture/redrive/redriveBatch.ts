import { errorMessage } from '../../core/errors.js';
import type { FieldMapping } from '../../core/model/fieldMapping.js';
import { RecordsAgedOutError, RedriveError } from '../../ports/errors.js';
import { describeBatch, type StreamBatchInfo, type StreamBatchReader } from '../../ports/StreamBatchReader.js';
import type { ObjectStore } from '../../ports/store/ObjectStore.js';
import { describeFailures, ingestBatch } from '../ingest/ingestBatch.js';
import type { QuarantineReason } from '../ingest/quarantineSummary.js';
import { dynamodbStreamChanges } from '../ingest/sources.js';
import { type StagedDay, stagedDays } from '../ingest/stagedDays.js';
import { agedOutAdvice } from './agedOutAdvice.js';

export interface RedriveBatchResult {
  readonly batch: string;
  readonly status: 'staged' | 'aged-out' | 'failed';
  readonly received: number;
  readonly staged: number;
  readonly quarantined: number;
  readonly quarantine: readonly QuarantineReason[];
  /** Staging (and quarantine) objects written. */
  readonly objects: readonly string[];
  /** The (tenant, day) partitions its staging objects went to (also those of a batch that partly failed). */
  readonly days: readonly StagedDay[];
  readonly error?: string;
}

export interface RedriveOptions {
  readonly mapping?: FieldMapping;
  readonly now?: number;
  /** The lake bucket named in the aged-out advice's export command (S3_BUCKET_NAME). */
  readonly exportBucket?: string;
  /** Offboarded tenants (`offboardedTenants`, read once by the caller): their records are quarantined with the reason. */
  readonly refused?: ReadonlySet<string>;
}

/**
 * Re-reads one failed stream batch and stages it through the same ingest code, with the same object names,
 * as the stream Lambda (`ddb-<hash of the stream ARN>_<firstSeq>_<lastSeq>`): whatever a half-written
 * Lambda attempt left is overwritten, never duplicated. Never throws for a batch it could not redrive: the
 * result says why (aged out of the stream, staging not written).
 *
 * @example
 * const result = await redriveBatch(store, new DynamoStreamBatchReader({ client }), parseFailureMessage(body));
 */
export async function redriveBatch(
  store: ObjectStore,
  reader: StreamBatchReader,
  info: StreamBatchInfo,
  options: RedriveOptions = {},
): Promise<RedriveBatchResult> {
  const batch = describeBatch(info);
  const empty = { batch, received: 0, staged: 0, quarantined: 0, quarantine: [], objects: [], days: [] };
  let records: readonly unknown[];
  try {
    records = await reader.readBatch(info);
  } catch (error) {
    if (error instanceof RecordsAgedOutError)
      return { ...empty, status: 'aged-out', error: agedOutAdvice(info, error, { bucket: options.exportBucket }) };
    return { ...empty, status: 'failed', error: `cannot read the batch from the stream: ${errorMessage(error)}` };
  }
  const { changes, batchId } = dynamodbStreamChanges(records, info.streamArn);
  const result = await ingestBatch(store, changes, {
    source: 'dynamodb',
    batchId,
    mapping: options.mapping,
    now: options.now,
    refused: options.refused,
  });
  const objects = result.written.map((w) => w.key);
  const base = {
    batch,
    received: result.received,
    staged: result.staged,
    quarantined: result.quarantined,
    quarantine: result.quarantine,
    objects,
    days: stagedDays(objects),
  };
  if (result.failed.length > 0) {
    return { ...base, status: 'failed', error: new RedriveError(`cannot stage the batch: ${describeFailures(result)}`).message };
  }
  return { ...base, status: 'staged' };
}
