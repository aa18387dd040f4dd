/**
 * A small lake made by the real pipeline (ingestBatch + runCompaction on a LocalStore) from hand-written
 * chat items, so every answer in the SQL tests can be worked out by hand from the table below.
 *
 * default_tenant (times UTC; JST = UTC+9)
 *   dt 2025-08-10  conv-1 m01 user alice      01:00:00.000 'こんにちは'               (5 chars)
 *                  conv-1 m02 assistant      01:00:02.500 'Hello! How can I help?'  (22) gpt-4o 12 tokens
 *                  conv-1 m03 user alice      01:05:00.000 'thanks'                  (6)
 *                  conv-1 m04 assistant      01:05:01.000 "You're welcome 😊"        (16) gpt-4o 5
 *                  conv-2 m05 user bob        03:00:00.000 '?'                       (1)
 *                  conv-2 m06 user bob        03:00:10.000 'anyone there?'           (13)
 *                  conv-2 m07 assistant      03:00:15.000 'Yes, I am here.'         (15) gpt-4o-mini 7
 *                  conv-3 m08 user carol      14:59:59.000 'late question'           (13)  JST 23:59:59
 *   dt 2025-08-11  conv-3 m09 assistant 08-10 15:00:01.000 'late answer'             (11) gpt-4o 20  JST 00:00:01
 *                  conv-4 m10 user alice 08-11 00:00:00.000 'おはよう'  (4; edited from 'おはよ')
 *                  conv-4 m14 system (no sender) 00:00:01.000 no content
 *                  conv-4 m12 assistant      00:00:03.000 'おはようございます'       (9) gpt-4o-mini 9
 *                  conv-4 m11 user alice      00:00:05.000 'oops' — deleted by the user: not in the lake
 *                  conv-5 m13 user dave       05:00:00.000 'unanswered'              (10)
 * fuji-bank
 *   dt 2025-08-10  conv-1 f01 user erin 02:00:00.000 'hi', f02 assistant 02:00:04.000 'hello' gpt-4o 3
 *   dt 2025-08-11  conv-2 f03 user erin 01:00:00.000 'typo' — deleted by the user: the partition is empty
 * Assistant messages are sent by 'makoto-ai'.
 *
 * The changes arrive in two batches, each ingested and then compacted (both days, both tenants), as two
 * nightly runs would: the first ends with m11 and f03 written, the second edits m10 and deletes m11 and f03.
 * So the second run replaces default_tenant/2025-08-11's part (the replaced part stays in its folder until
 * vacuum: the folder is not the table, the current version is) and leaves fuji-bank/2025-08-11 with one
 * 0-row part (the partition's state). Readers must read the files the table's current version names.
 */

import { ingestBatch } from '../../src/capture/ingest/ingestBatch.js';
import { loadConfig } from '../../src/core/config.js';
import type { SourceChange } from '../../src/core/model/normalise.js';
import { runCompaction } from '../../src/jobs/runCompaction.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';

export const FIXTURE_TENANTS = ['default_tenant', 'fuji-bank'] as const;
export const FIXTURE_DATES = ['2025-08-10', '2025-08-11'] as const;
/** When each batch was captured into staging (the first night, the second night). */
export const INGESTED_AT = Date.parse('2025-08-12T00:30:00.000Z');
export const SECOND_INGESTED_AT = Date.parse('2025-08-13T00:30:00.000Z');

interface Item {
  tenantId: string;
  messageId: string;
  conversationId: string;
  senderId?: string;
  role: string;
  content?: string;
  createdAt: string;
  updatedAt?: string;
  model?: string;
  tokens?: number;
}

const user = (
  tenantId: string,
  messageId: string,
  conversationId: string,
  senderId: string,
  createdAt: string,
  content: string,
): Item => ({
  tenantId,
  messageId,
  conversationId,
  senderId,
  role: 'user',
  content,
  createdAt,
});
const bot = (
  tenantId: string,
  messageId: string,
  conversationId: string,
  createdAt: string,
  content: string,
  model: string,
  tokens: number,
): Item => ({
  tenantId,
  messageId,
  conversationId,
  senderId: 'makoto-ai',
  role: 'assistant',
  content,
  createdAt,
  model,
  tokens,
});

const D = 'default_tenant';
const F = 'fuji-bank';

/** The changes in feed order; the first FIRST_BATCH_SIZE are the first batch. */
const CHANGES: [SourceChange['op'], Item][] = [
  ['upsert', user(D, 'm01', 'conv-1', 'alice', '2025-08-10T01:00:00.000Z', 'こんにちは')],
  ['upsert', bot(D, 'm02', 'conv-1', '2025-08-10T01:00:02.500Z', 'Hello! How can I help?', 'gpt-4o', 12)],
  ['upsert', user(D, 'm03', 'conv-1', 'alice', '2025-08-10T01:05:00.000Z', 'thanks')],
  ['upsert', bot(D, 'm04', 'conv-1', '2025-08-10T01:05:01.000Z', "You're welcome 😊", 'gpt-4o', 5)],
  ['upsert', user(D, 'm05', 'conv-2', 'bob', '2025-08-10T03:00:00.000Z', '?')],
  ['upsert', user(D, 'm06', 'conv-2', 'bob', '2025-08-10T03:00:10.000Z', 'anyone there?')],
  ['upsert', bot(D, 'm07', 'conv-2', '2025-08-10T03:00:15.000Z', 'Yes, I am here.', 'gpt-4o-mini', 7)],
  ['upsert', user(D, 'm08', 'conv-3', 'carol', '2025-08-10T14:59:59.000Z', 'late question')],
  ['upsert', bot(D, 'm09', 'conv-3', '2025-08-10T15:00:01.000Z', 'late answer', 'gpt-4o', 20)],
  ['upsert', user(D, 'm10', 'conv-4', 'alice', '2025-08-11T00:00:00.000Z', 'おはよ')],
  ['upsert', { tenantId: D, messageId: 'm14', conversationId: 'conv-4', role: 'system', createdAt: '2025-08-11T00:00:01.000Z' }],
  ['upsert', bot(D, 'm12', 'conv-4', '2025-08-11T00:00:03.000Z', 'おはようございます', 'gpt-4o-mini', 9)],
  ['upsert', user(D, 'm11', 'conv-4', 'alice', '2025-08-11T00:00:05.000Z', 'oops')],
  ['upsert', user(F, 'f03', 'conv-2', 'erin', '2025-08-11T01:00:00.000Z', 'typo')],
  // the second batch starts here (FIRST_BATCH_SIZE)
  [
    'upsert',
    { ...user(D, 'm10', 'conv-4', 'alice', '2025-08-11T00:00:00.000Z', 'おはよう'), updatedAt: '2025-08-11T00:00:02.000Z' },
  ],
  ['delete', user(D, 'm11', 'conv-4', 'alice', '2025-08-11T00:00:05.000Z', 'oops')],
  ['delete', user(F, 'f03', 'conv-2', 'erin', '2025-08-11T01:00:00.000Z', 'typo')],
  ['upsert', user(D, 'm13', 'conv-5', 'dave', '2025-08-11T05:00:00.000Z', 'unanswered')],
  ['upsert', user(F, 'f01', 'conv-1', 'erin', '2025-08-10T02:00:00.000Z', 'hi')],
  ['upsert', bot(F, 'f02', 'conv-1', '2025-08-10T02:00:04.000Z', 'hello', 'gpt-4o', 3)],
];

/** How many of the changes (in feed order) the first batch holds. */
export const FIRST_BATCH_SIZE = 14;

/** Every change of the fixture, in feed order: every change gets the next sequence number. */
export function fixtureChanges(): SourceChange[] {
  return CHANGES.map(([op, item], i) => ({
    item: { ...item },
    op,
    sourceSeq: String(1000 + i),
    raw: item,
  }));
}

/**
 * Ingests the fixture's two batches into `root`, compacting both days for both tenants after each (two
 * nightly runs); throws if anything failed. `env` adds settings (e.g. PARQUET_COMPRESSION=zstd).
 */
export async function buildFixtureLake(root: string, env: Record<string, string> = {}): Promise<LocalStore> {
  const store = new LocalStore(root);
  const config = loadConfig({
    DATA_DIR: root,
    TEMP_DIR: root,
    TENANT_ID: FIXTURE_TENANTS.join(','),
    DUCKDB_THREADS: '1',
    DUCKDB_MEMORY_LIMIT: '256MB',
    ...env,
  });
  const changes = fixtureChanges();
  const batches = [
    { batchId: 'fixture-1', now: INGESTED_AT, changes: changes.slice(0, FIRST_BATCH_SIZE) },
    { batchId: 'fixture-2', now: SECOND_INGESTED_AT, changes: changes.slice(FIRST_BATCH_SIZE) },
  ];
  for (const batch of batches) {
    const ingest = await ingestBatch(store, batch.changes, { source: 'dynamodb', batchId: batch.batchId, now: batch.now });
    if (ingest.failed.length > 0 || ingest.quarantined > 0) {
      throw new Error(`fixture ingest of ${batch.batchId} failed: ${JSON.stringify(ingest)}`);
    }
    for (const date of FIXTURE_DATES) {
      const summary = await runCompaction({ store, config, date, tenants: [...FIXTURE_TENANTS] });
      if (!summary.ok) throw new Error(`fixture compaction of ${date} after ${batch.batchId} failed: ${JSON.stringify(summary)}`);
    }
  }
  return store;
}
