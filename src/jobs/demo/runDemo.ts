import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { type IngestResult, ingestBatch } from '../../capture/ingest/ingestBatch.js';
import { dynamodbEventChanges } from '../../capture/ingest/sources.js';
import type { Config } from '../../core/config.js';
import { quoteLiteral } from '../../core/sql/quote.js';
import type { RunSummary } from '../../engine/compactTenants.js';
import { offboardedTenants } from '../../lake/offboarded.js';
import { openDuckDb, withConnection } from '../../ports/duckdb/openDuckDb.js';
import type { ObjectStore } from '../../ports/store/ObjectStore.js';
import { runCompaction } from '../runCompaction.js';
import { generateChatDay, randomSource, toDynamoDBRecord } from './chatDay.js';

export interface DemoOptions {
  readonly store: ObjectStore;
  readonly config: Config;
  readonly date: string;
  readonly tenants: readonly string[];
  readonly messagesPerTenant: number;
  readonly seed?: number;
}

export interface DemoResult {
  readonly ingest: { batches: number; records: number; staged: number; quarantined: number; objects: number };
  readonly summary: RunSummary;
  /** Per-tenant counts read back from the Parquet with DuckDB. */
  readonly perTenant: Record<string, unknown>[];
  /** A few rows read back from the Parquet. */
  readonly sample: Record<string, unknown>[];
}

/**
 * The whole pipeline on generated data: a day of chat for several tenants becomes DynamoDB Streams
 * batches of up to 100 records, with retried (duplicate) deliveries, batches handled out of order and
 * one record that has no tenant; the batches go through the same ingest path as the Lambda (refusing an
 * offboarded tenant's records, as capture does), then the day is compacted and read back from the Parquet.
 */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const random = randomSource((options.seed ?? 7) + 1);
  const day = generateChatDay({
    date: options.date,
    tenants: options.tenants,
    messagesPerTenant: options.messagesPerTenant,
    seed: options.seed ?? 7,
  });
  const records = day.changes.map((c) => toDynamoDBRecord(c));
  const batches: unknown[][] = [];
  for (let i = 0; i < records.length; i += 100) batches.push(records.slice(i, i + 100));
  // Lambda retries re-deliver a tail of a batch: about 2% of the records arrive twice.
  for (let i = 0; i < batches.length; i += 5) {
    const batch = batches[i] as unknown[];
    batches.push(batch.slice(Math.floor(batch.length * 0.9)));
  }
  (batches[0] as unknown[]).push({
    eventName: 'INSERT',
    dynamodb: { SequenceNumber: '1', NewImage: { messageId: { S: 'orphan' } } },
  });
  // Shards are processed in parallel, so batches arrive out of order.
  batches.sort(() => random() - 0.5);

  // the refused list, read once like the `ingest` command does: an offboarded tenant's records are quarantined
  // with the reason, so the compaction below has nothing of it to compact (docs/PRIVACY.md, "Refusal")
  const refused = await offboardedTenants(options.store);
  const results: IngestResult[] = [];
  for (const batch of batches) {
    const { changes, batchId } = dynamodbEventChanges({ Records: batch });
    results.push(
      await ingestBatch(options.store, changes, {
        source: 'dynamodb',
        batchId,
        mapping: options.config.fieldMapping,
        refused,
      }),
    );
  }
  const summary = await runCompaction({
    store: options.store,
    config: options.config,
    date: options.date,
    tenants: options.tenants,
  });
  const readBack = await readBackParquet(options.store, options.config, summary);
  return {
    ingest: {
      batches: batches.length,
      records: results.reduce((n, r) => n + r.received, 0),
      staged: results.reduce((n, r) => n + r.staged, 0),
      quarantined: results.reduce((n, r) => n + r.quarantined, 0),
      objects: results.reduce((n, r) => n + r.written.length, 0),
    },
    summary,
    ...readBack,
  };
}

/** Downloads the day's Parquet and queries it with DuckDB the way Athena sees it (hive partitions). */
async function readBackParquet(store: ObjectStore, config: Config, summary: RunSummary) {
  const keys = summary.results.flatMap((r) => r.outputFiles);
  if (keys.length === 0) return { perTenant: [], sample: [] };
  const work = await mkdtemp(join(config.tempDir, 'makoto-lake-demo-'));
  try {
    for (const key of keys) {
      await mkdir(dirname(join(work, key)), { recursive: true });
      await store.getToFile(key, join(work, key));
    }
    const db = await openDuckDb({ ...config.duckdb, workDirectory: join(work, '.duckdb') });
    try {
      return await withConnection(db, async (c) => {
        const messages = `read_parquet(${quoteLiteral(join(work, 'analytics/messages/*/*/*.parquet'))}, hive_partitioning = true)`;
        const perTenant = await c.runAndReadAll(`SELECT tenant_id, dt::VARCHAR AS dt, count(*)::INTEGER AS messages,
            count(DISTINCT conversation_id)::INTEGER AS conversations, count(DISTINCT sender_id)::INTEGER AS senders,
            count(*) FILTER (WHERE role = 'assistant')::INTEGER AS assistant, strftime(min(created_at), '%H:%M:%S') AS first_utc,
            strftime(max(created_at), '%H:%M:%S') AS last_utc
          FROM ${messages} GROUP BY ALL ORDER BY tenant_id`);
        const sample = await c.runAndReadAll(`SELECT tenant_id, message_id, role, left(content, 24) AS content,
            strftime(created_at + INTERVAL 9 HOUR, '%H:%M JST') AS created
          FROM ${messages} WHERE content LIKE '%編集済み%' OR message_id LIKE '%m0000001' ORDER BY tenant_id, message_id LIMIT 6`);
        return { perTenant: perTenant.getRowObjectsJS(), sample: sample.getRowObjectsJS() };
      });
    } finally {
      db.closeSync();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
