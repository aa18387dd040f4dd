/**
 * A lake for the erase tests: days of chat for three tenants, compacted into the table, with one sender of
 * `acme` spread over many days and also in every other place the lake keeps records — staging not yet
 * compacted, a replaced part and a remembered delete, the compaction's quarantine (a malformed line carrying
 * the sender's text), capture's quarantine, a poison batch, a split's work folder and a run report — plus a
 * raw scan of every object (decompressed; Parquet read with DuckDB) that is the test's own check.
 */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import { DEFAULT_COMPACTION_SETTINGS } from '../../src/compaction/compactPartition.js';
import { compactTenants } from '../../src/compaction/compactTenants.js';
import { openDuckDb } from '../../src/duckdb/openDuckDb.js';
import { ingestBatch } from '../../src/ingest/ingestBatch.js';
import { dynamodbEventChanges } from '../../src/ingest/sources.js';
import { quoteLiteral } from '../../src/sql/quote.js';
import { stagingKey } from '../../src/staging/layout.js';
import { gzipNdjson } from '../../src/staging/ndjson.js';
import { getBytes, listAll, type ObjectStore } from '../../src/store/ObjectStore.js';
import { chatItem, dynamodbRecord, stagedRecord } from '../kit/factories.js';

export const TENANTS = ['acme', 'globex', 'initech'] as const;
/** The sender whose erasure is asked for, the text of each of their messages, and their message ids. */
export const ERASED_SENDER = 'u-erase-7f3k';
export const ERASED_TEXT = 'ERASETEXT';
export const ERASED_MESSAGE = 'msgErase';

export const dayOf = (start: string, d: number) =>
  new Date(Date.parse(`${start}T00:00:00Z`) + d * 86_400_000).toISOString().slice(0, 10);

const record = (tenant: string, date: string, id: string, sender: string, content: string, seq: number, extra = {}) =>
  stagedRecord({
    tenant_id: tenant,
    dt: date,
    message_id: id,
    conversation_id: `${tenant}-c${seq % 3}`,
    sender_id: sender,
    content,
    // 12:00 JST on the day
    created_at: Date.parse(`${date}T03:00:00.000Z`) + seq,
    source_seq: String(1000 + seq),
    ingested_at: Date.parse(`${date}T03:00:05.000Z`) + seq,
    ...extra,
  });

export interface LakeShape {
  readonly start: string;
  readonly days: number;
  /** The erased sender writes on every `every`-th day of acme. */
  readonly every: number;
}

/** The days the erased sender wrote on. */
export const erasedDays = (shape: LakeShape) =>
  Array.from({ length: shape.days }, (_, d) => d).filter((d) => d % shape.every === 0);

/**
 * Builds the lake (see the file's comment). Returns what was placed where, for exact expectations.
 */
export async function buildLake(store: ObjectStore, work: string, shape: LakeShape): Promise<{ lastDay: string }> {
  const days = Array.from({ length: shape.days }, (_, d) => d);
  for (const tenant of TENANTS) {
    for (const d of days) {
      const date = dayOf(shape.start, d);
      const lines = [0, 1, 2].map((k) =>
        record(tenant, date, `${tenant}-d${d}-k${k}`, `${tenant}-s${k}`, `hello ${tenant} ${d} ${k}`, k),
      );
      if (tenant === 'acme' && d % shape.every === 0) {
        lines.push(record(tenant, date, `${ERASED_MESSAGE}-${d}`, ERASED_SENDER, `${ERASED_TEXT} ${d} 秘密のメッセージ`, 3));
      }
      await store.putBytes(stagingKey(tenant, date, `batch-${d}`), gzipNdjson(lines));
    }
  }
  const lastDay = dayOf(shape.start, shape.days - 1);
  await compact(store, work, lastDay);

  // a user delete of the sender's first message (remembered), an edit on a later day (its old part replaced), and
  // a malformed line carrying the sender's text (the compaction quarantines it)
  const d0 = dayOf(shape.start, 0);
  const dEvery = dayOf(shape.start, shape.every);
  const dTwice = dayOf(shape.start, 2 * shape.every);
  await store.putBytes(
    stagingKey('acme', d0, 'delete-1'),
    gzipNdjson([
      record('acme', d0, `${ERASED_MESSAGE}-0`, ERASED_SENDER, `${ERASED_TEXT} 0 秘密のメッセージ`, 3, {
        op: 'delete',
        source_seq: '2000',
      }),
    ]),
  );
  await store.putBytes(
    stagingKey('acme', dEvery, 'edit-1'),
    gzipNdjson([record('acme', dEvery, `acme-d${shape.every}-k0`, 'acme-s0', 'edited', 0, { source_seq: '2001' })]),
  );
  const good = JSON.stringify(record('acme', dTwice, 'acme-d-extra', 'acme-s1', 'fine', 5, { source_seq: '2002' }));
  const malformed = `{"tenant_id":"acme","dt":"${dTwice}","message_id":"${ERASED_MESSAGE}-bad","sender_id":"${ERASED_SENDER}","content":"${ERASED_TEXT} cut`;
  await store.putBytes(stagingKey('acme', dTwice, 'broken-1'), gzipSync(`${good}\n${malformed}\n`));
  await compact(store, work, lastDay);

  // after the last compaction: staging of an existing day and of a day never compacted
  const dLate = dayOf(shape.start, 1);
  await store.putBytes(
    stagingKey('acme', dLate, 'late-1'),
    gzipNdjson([
      record('acme', dLate, `${ERASED_MESSAGE}-late`, ERASED_SENDER, `${ERASED_TEXT} late`, 7),
      record('acme', dLate, 'acme-late-other', 'acme-s2', 'other late', 8),
    ]),
  );
  const dNew = dayOf(shape.start, shape.days);
  await store.putBytes(
    stagingKey('acme', dNew, 'new-1'),
    gzipNdjson([record('acme', dNew, `${ERASED_MESSAGE}-new`, ERASED_SENDER, `${ERASED_TEXT} new`, 1)]),
  );

  // capture's quarantine: one record of the sender and one of another tenant, both without a creation time
  const bad = (seq: number, item: Record<string, unknown>) => dynamodbRecord({ seq, item });
  const { changes, batchId } = dynamodbEventChanges({
    Records: [
      bad(
        9001,
        chatItem({
          tenantId: 'acme',
          messageId: `${ERASED_MESSAGE}-q`,
          senderId: ERASED_SENDER,
          content: `${ERASED_TEXT} q`,
          createdAt: undefined,
        }),
      ),
      bad(
        9002,
        chatItem({ tenantId: 'globex', messageId: 'globex-q', senderId: 'globex-s1', content: 'globex q', createdAt: undefined }),
      ),
    ],
  });
  await ingestBatch(store, changes, { source: 'dynamodb', batchId, now: Date.parse(`${lastDay}T05:00:00Z`) });

  // an Azure poison batch holding a document of the sender and one of another sender
  await store.putBytes(
    `quarantine/poison/source=cosmos/dt=${lastDay}/cosmos-b1_1_2.json.gz`,
    gzipSync(
      JSON.stringify({
        reason: 'throttled',
        source: 'cosmos',
        documents: [
          { id: `${ERASED_MESSAGE}-p`, tenantId: 'acme', senderId: ERASED_SENDER, content: `${ERASED_TEXT} p`, _lsn: 1 },
          { id: 'acme-p2', tenantId: 'acme', senderId: 'acme-s1', content: 'kept', _lsn: 2 },
        ],
      }),
    ),
  );

  // split work folders: acme's holds the sender's line, globex's does not
  const splitLine = record('acme', dEvery, `${ERASED_MESSAGE}-split`, ERASED_SENDER, `${ERASED_TEXT} split`, 9);
  await store.putBytes(`compaction-work/messages/tenant_id=acme/dt=${dEvery}/split-1/plan.json`, '{"inputs":[]}\n');
  await store.putBytes(
    `compaction-work/messages/tenant_id=acme/dt=${dEvery}/split-1/range=0/attempt=a1/rejected.ndjson.gz`,
    gzipNdjson([{ reason: 'x', raw: splitLine }]),
  );
  await store.putBytes(`compaction-work/messages/tenant_id=globex/dt=${dEvery}/split-2/plan.json`, '{"inputs":["globex"]}\n');
  // a run report (no content: it stays as it is)
  await store.putBytes(`runs/${lastDay}/run-1/results/tenant_id=acme/dt=${lastDay}.json`, '{"status":"compacted","rows":3}\n');
  return { lastDay };
}

async function compact(store: ObjectStore, work: string, date: string): Promise<void> {
  const db = await openDuckDb({ memoryLimit: '512MB', threads: 1, workDirectory: join(work, 'duckdb') });
  try {
    const summary = await compactTenants(
      {
        store,
        db,
        workDirectory: join(work, 'partitions'),
        settings: { ...DEFAULT_COMPACTION_SETTINGS, transferConcurrency: 2 },
      },
      date,
      { tenants: [...TENANTS], concurrency: 2, lateLookbackDays: Number.POSITIVE_INFINITY },
    );
    const failed = summary.results.filter((r) => r.status === 'failed');
    if (failed.length > 0) throw new Error(`compaction failed: ${JSON.stringify(failed)}`);
  } finally {
    db.closeSync();
  }
}

/** Every object of the store with the needles it contains (decompressed; Parquet rows and footer read), skipping `erasures/`. */
export async function rawScan(store: ObjectStore, needles: readonly string[]): Promise<Record<string, string[]>> {
  const db = await DuckDBInstance.create(':memory:', { threads: '1' });
  const c = await db.connect();
  const hits: Record<string, string[]> = {};
  // a name per object: DuckDB caches what it read of a path, so a second file written to the same path within
  // the same second could be read with the first one's metadata
  let n = 0;
  try {
    for (const info of await listAll(store, '')) {
      if (info.key.startsWith('erasures/')) continue;
      let bytes = await getBytes(store, info.key);
      let text = bytes.toString('latin1') + bytes.toString('utf8');
      if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
        bytes = gunzipSync(bytes);
        text += bytes.toString('utf8');
      }
      if (bytes.subarray(0, 4).toString('latin1') === 'PAR1') {
        const file = join(process.env.TMPDIR ?? '/tmp', `erase-scan-${process.pid}-${n++}.parquet`);
        await writeFile(file, bytes);
        const rows = (await c.runAndReadAll(`SELECT * FROM read_parquet(${quoteLiteral(file)})`)).getRowObjectsJson();
        text += JSON.stringify(rows);
        const meta = (await c.runAndReadAll(`SELECT * FROM parquet_metadata(${quoteLiteral(file)})`)).getRowObjectsJson();
        text += JSON.stringify(meta);
        await rm(file, { force: true });
      }
      const found = needles.filter((n) => text.includes(n));
      if (found.length > 0) hits[info.key] = found;
    }
  } finally {
    c.closeSync();
    db.closeSync();
  }
  return hits;
}

/** Every object's key and bytes (base64) under the prefixes, for byte-identity checks. */
export async function snapshotObjects(store: ObjectStore, prefixes: readonly string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const prefix of prefixes) {
    for (const info of await listAll(store, prefix)) out[info.key] = (await getBytes(store, info.key)).toString('base64');
  }
  return out;
}
