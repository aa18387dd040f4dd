import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ingestBatch } from '../../src/capture/ingest/ingestBatch.js';
import { dynamodbEventChanges } from '../../src/capture/ingest/sources.js';
import { errorMessage } from '../../src/core/errors.js';
import type { RetryPolicy } from '../../src/core/util/retry.js';
import { DEFAULT_COMPACTION_SETTINGS } from '../../src/engine/compactPartition.js';
import { compactTenants, type RunSummary } from '../../src/engine/compactTenants.js';
import { type ChatItem, generateChatDay, toDynamoDBRecord } from '../../src/jobs/demo/chatDay.js';
import { DeltaTable, partitionFiles, tableKey } from '../../src/lake/table/deltaTable.js';
import { openDuckDb } from '../../src/ports/duckdb/openDuckDb.js';
import type { ObjectStore } from '../../src/ports/store/ObjectStore.js';
import { type LakeRow, readParquetFiles } from './readParquet.js';

/** Retries fast enough for tests and the report: the schedule matters, not the real-world delays. */
export const FAST_RETRY: RetryPolicy = { attempts: 8, baseDelayMs: 1, maxDelayMs: 5, deadlineMs: 10_000 };

export interface PipelineOptions {
  /** The store the pipeline writes and reads through (e.g. a fault-injecting wrapper). */
  readonly store: ObjectStore;
  /** The store results are read back from (the same data without faults). Default: `store`. */
  readonly readStore?: ObjectStore;
  readonly workDirectory: string;
  readonly date: string;
  readonly tenants: readonly string[];
  readonly messagesPerTenant: number;
  readonly seed?: number;
  readonly retry?: RetryPolicy;
  /** Ingestion and compaction clock (fixed, so two runs produce identical rows). */
  readonly now: number;
}

export interface PipelineOutcome {
  /** Stream records delivered, counting re-deliveries and the record without a tenant. */
  readonly delivered: number;
  readonly ingest: { staged: number; quarantined: number; objects: number; failedGroups: string[] };
  readonly summary: RunSummary;
  /** Rows read back from the Parquet, per tenant. */
  readonly rows: Readonly<Record<string, LakeRow[]>>;
  /** What the lake must hold per tenant (from the generator): message id and content. */
  readonly expected: Readonly<Record<string, { message_id: string; content: string }[]>>;
}

/**
 * The whole pipeline on a generated multi-tenant day: DynamoDB Streams batches of 25 records (every
 * fifth batch's tail delivered twice, as Lambda retries do, plus one record without a tenant) go through
 * ingestBatch into staging, then the day is compacted and the Parquet read back.
 */
export async function runPipeline(options: PipelineOptions): Promise<PipelineOutcome> {
  const day = generateChatDay({
    date: options.date,
    tenants: options.tenants,
    messagesPerTenant: options.messagesPerTenant,
    seed: options.seed ?? 11,
  });
  const batches = streamBatches(day.changes.map((c) => toDynamoDBRecord(c)));
  let staged = 0;
  let quarantined = 0;
  let objects = 0;
  const failedGroups: string[] = [];
  for (const batch of batches) {
    const { changes, batchId } = dynamodbEventChanges({ Records: batch });
    // one write at a time: the fault injector's seeded sequence then meets the calls in a fixed order
    const result = await ingestBatch(options.store, changes, {
      source: 'dynamodb',
      batchId,
      now: options.now - 3_600_000,
      concurrency: 1,
    });
    staged += result.staged;
    quarantined += result.quarantined;
    objects += result.written.length;
    for (const f of result.failed) failedGroups.push(`${f.key}: ${errorMessage(f.error)}`);
  }

  await mkdir(options.workDirectory, { recursive: true });
  const db = await openDuckDb({ memoryLimit: '512MB', threads: 2, workDirectory: join(options.workDirectory, 'duckdb') });
  let summary: RunSummary;
  try {
    summary = await compactTenants(
      {
        store: options.store,
        db,
        workDirectory: join(options.workDirectory, 'partitions'),
        now: () => options.now,
        retry: options.retry ?? FAST_RETRY,
        settings: { ...DEFAULT_COMPACTION_SETTINGS, transferConcurrency: 1 },
      },
      options.date,
      { tenants: options.tenants, concurrency: 1 },
    );
  } finally {
    db.closeSync();
  }

  const readStore = options.readStore ?? options.store;
  const rows: Record<string, LakeRow[]> = {};
  for (const tenant of options.tenants) {
    rows[tenant] = await readPartition(readStore, tenant, options.date, join(options.workDirectory, 'read', tenant));
  }
  await rm(join(options.workDirectory, 'duckdb'), { recursive: true, force: true });
  return {
    delivered: batches.reduce((n, b) => n + b.length, 0),
    ingest: { staged, quarantined, objects, failedGroups },
    summary,
    rows,
    expected: expectedByTenant(day.expected, options.tenants),
  };
}

/** Downloads the files the table's current version names for a partition and reads them (as a Delta reader does). */
export async function readPartition(store: ObjectStore, tenant: string, date: string, scratch: string): Promise<LakeRow[]> {
  await rm(scratch, { recursive: true, force: true });
  await mkdir(scratch, { recursive: true });
  const files: string[] = [];
  // the files of the table's current version, as a Delta reader picks them
  for (const add of partitionFiles(await new DeltaTable(store, {}).snapshot(), tenant, date)) {
    const path = join(scratch, decodeURIComponent(add.path).replaceAll('/', '_'));
    await store.getToFile(tableKey(add.path), path);
    files.push(path);
  }
  try {
    return await readParquetFiles(files);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Records per stream batch (Lambda's BatchSize): small, so a day has many staging objects. */
const BATCH_SIZE = 25;

/** Records in Lambda-sized batches: every fifth batch's last tenth is delivered again (a retry). */
function streamBatches(records: unknown[]): unknown[][] {
  const batches: unknown[][] = [];
  for (let i = 0; i < records.length; i += BATCH_SIZE) batches.push(records.slice(i, i + BATCH_SIZE));
  const count = batches.length;
  for (let i = 0; i < count; i += 5) {
    const batch = batches[i] as unknown[];
    batches.push(batch.slice(Math.floor(batch.length * 0.9)));
  }
  // a record without a tenant: quarantined at capture, never lost silently
  batches[0]?.push({ eventName: 'INSERT', dynamodb: { SequenceNumber: '7', NewImage: { messageId: { S: 'orphan' } } } });
  return batches;
}

function expectedByTenant(items: readonly ChatItem[], tenants: readonly string[]) {
  const out: Record<string, { message_id: string; content: string }[]> = {};
  for (const tenant of tenants) {
    out[tenant] = items
      .filter((i) => i.tenantId === tenant)
      .map((i) => ({ message_id: i.messageId, content: i.content }))
      .sort((a, b) => (a.message_id < b.message_id ? -1 : 1));
  }
  return out;
}
