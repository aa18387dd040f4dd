/**
 * A lake for the erase tests: days of chat for three tenants, compacted into the table, with one sender of
 * `acme` spread over many days and also in every other place the lake keeps records — staging not yet
 * compacted, a replaced part and a remembered delete, the compaction's quarantine (a malformed line carrying
 * the sender's text), capture's quarantine, a poison batch, a split's work folder and a run report — plus a
 * raw scan of every object (decompressed; Parquet read with DuckDB) that is the test's own check.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import { ingestBatch } from '../../src/capture/ingest/ingestBatch.js';
import { dynamodbEventChanges } from '../../src/capture/ingest/sources.js';
import type { StagedRecord } from '../../src/core/schema/messageSchema.js';
import { quoteStringList } from '../../src/core/sql/quote.js';
import { stagingKey } from '../../src/core/staging/layout.js';
import { gzipNdjson } from '../../src/core/staging/ndjson.js';
import { mapLimit } from '../../src/core/util/concurrency.js';
import { compactPartition, DEFAULT_COMPACTION_SETTINGS } from '../../src/engine/compactPartition.js';
import { compactTenants } from '../../src/engine/compactTenants.js';
import { partitionId } from '../../src/lake/table/deltaTable.js';
import { openDuckDb } from '../../src/ports/duckdb/openDuckDb.js';
import { getBytes, listAll, type ObjectInfo, type ObjectStore } from '../../src/ports/store/ObjectStore.js';
import { commitGeneratedTable, type GeneratedTable, ndjsonSource } from '../../tools/generateTable.js';
import { chatItem, dynamodbRecord, stagedRecord } from '../kit/factories.js';
import type { ParsedLakeRow } from '../kit/readParquet.js';

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
      await store.putBytes(stagingKey(tenant, date, `batch-${d}`), gzipNdjson(dayLines(tenant, d, shape)));
    }
  }
  const lastDay = dayOf(shape.start, shape.days - 1);
  await compact(store, work, lastDay);
  await stageChanges(store, shape);
  await compact(store, work, lastDay);
  await addOtherCopies(store, shape, lastDay);
  return { lastDay };
}

/** One tenant-day's staged lines: three messages, and on every `every`-th day of acme one of the erased sender. */
function dayLines(tenant: string, d: number, shape: LakeShape): StagedRecord[] {
  const date = dayOf(shape.start, d);
  const lines = [0, 1, 2].map((k) =>
    record(tenant, date, `${tenant}-d${d}-k${k}`, `${tenant}-s${k}`, `hello ${tenant} ${d} ${k}`, k),
  );
  if (tenant === 'acme' && d % shape.every === 0) {
    lines.push(record(tenant, date, `${ERASED_MESSAGE}-${d}`, ERASED_SENDER, `${ERASED_TEXT} ${d} 秘密のメッセージ`, 3));
  }
  return lines;
}

export interface YearShape extends LakeShape {
  /** Days (the last ones) whose staging is still there: older staging has expired (the lifecycle rule). */
  readonly stagingDays: number;
}

/**
 * The same lake as buildLake (the same rows, changes and other copies) for many days, made fast: the
 * days' parts are written by one DuckDB statement and published through the table module as the compactor
 * publishes them (tools/generateTable.ts, a few table versions), with staging kept for the last
 * `stagingDays` days only (named by those days' manifests); then the delete, the edit and the malformed line
 * are compacted by the real compactor (compactPartition) into their three partitions, and the other copies
 * added as in buildLake.
 */
export async function buildYearLake(
  store: ObjectStore,
  work: string,
  shape: YearShape,
): Promise<{ lastDay: string; generated: GeneratedTable }> {
  await mkdir(work, { recursive: true });
  const rows = join(work, 'rows.ndjson');
  const inputs = new Map<string, ObjectInfo[]>();
  const lines: string[] = [];
  const staged: { key: string; id: string; body: Buffer }[] = [];
  for (const tenant of TENANTS) {
    for (let d = 0; d < shape.days; d++) {
      const day = dayLines(tenant, d, shape);
      for (const line of day) lines.push(JSON.stringify(line));
      if (d >= shape.days - shape.stagingDays) {
        const date = dayOf(shape.start, d);
        staged.push({
          key: stagingKey(tenant, date, `batch-${d}`),
          id: partitionId({ tenant_id: tenant, dt: date }),
          body: gzipNdjson(day),
        });
      }
    }
  }
  await writeFile(rows, `${lines.join('\n')}\n`);
  await mapLimit(staged, 8, async ({ key, id, body }) => inputs.set(id, [await store.putBytes(key, body)]));
  const lastDay = dayOf(shape.start, shape.days - 1);
  const db = await openDuckDb({ memoryLimit: '512MB', threads: 1, workDirectory: join(work, 'duckdb') });
  try {
    const deps = { store, db, workDirectory: join(work, 'partitions') };
    await mkdir(deps.workDirectory, { recursive: true });
    // four weeks of days a statement (tools/generateTable.ts: DuckDB's partitioned write holds every open partition)
    const sources = Array.from({ length: Math.ceil(shape.days / 28) }, (_, i) =>
      ndjsonSource(rows, `dt >= '${dayOf(shape.start, i * 28)}' AND dt < '${dayOf(shape.start, (i + 1) * 28)}'`),
    );
    const generated = await commitGeneratedTable(deps, sources, {
      inputs,
      now: Date.parse(`${lastDay}T17:00:00Z`),
    });
    await stageChanges(store, shape);
    for (const date of changedDays(shape)) {
      const result = await compactPartition(
        { ...deps, settings: { ...DEFAULT_COMPACTION_SETTINGS, transferConcurrency: 2 } },
        'acme',
        date,
      );
      if (result.status !== 'compacted') throw new Error(`compaction of acme ${date}: ${JSON.stringify(result)}`);
    }
    await addOtherCopies(store, shape, lastDay);
    return { lastDay, generated };
  } finally {
    db.closeSync();
    await rm(rows, { force: true });
  }
}

/**
 * The rows the table holds after buildYearLake, as readLake returns them: every day's messages, the edit and
 * the extra row of the malformed line's day applied, the deleted message gone; ordered as readLake orders.
 */
export function expectedYearRows(shape: YearShape): ParsedLakeRow[] {
  const [d0, dEvery, dTwice] = changedDays(shape);
  const staged: StagedRecord[] = [];
  for (const tenant of TENANTS) for (let d = 0; d < shape.days; d++) staged.push(...dayLines(tenant, d, shape));
  staged.push(record('acme', dTwice, 'acme-d-extra', 'acme-s1', 'fine', 5, { source_seq: '2002' }));
  const edited = record('acme', dEvery, `acme-d${shape.every}-k0`, 'acme-s0', 'edited', 0, { source_seq: '2001' });
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return staged
    .filter((r) => !(r.dt === d0 && r.message_id === `${ERASED_MESSAGE}-0`))
    .map((r) => (r.dt === dEvery && r.message_id === edited.message_id ? edited : r))
    .map((r) => ({
      tenant_id: r.tenant_id,
      dt: r.dt,
      message_id: r.message_id,
      conversation_id: r.conversation_id,
      sender_id: r.sender_id,
      role: r.role,
      content: r.content,
      created_at: iso(r.created_at) as string,
      updated_at: iso(r.updated_at ?? null),
      source: r.source,
      source_seq: r.source_seq,
      attributes: JSON.parse(r.attributes) as Record<string, unknown>,
    }))
    .sort((a, b) =>
      a.tenant_id !== b.tenant_id
        ? cmp(a.tenant_id, b.tenant_id)
        : a.dt !== b.dt
          ? cmp(a.dt, b.dt)
          : cmp(a.message_id, b.message_id),
    );
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * A user delete of the sender's first message (remembered), an edit on a later day (its old part replaced),
 * and a malformed line carrying the sender's text (the compaction quarantines it): staged for the days
 * `changedDays` names, to be compacted next.
 */
async function stageChanges(store: ObjectStore, shape: LakeShape): Promise<void> {
  const [d0, dEvery, dTwice] = changedDays(shape);
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
}

/** The days of acme stageChanges touches: the first (delete), the `every`-th (edit) and the 2×`every`-th (malformed line). */
export const changedDays = (shape: LakeShape) =>
  [0, shape.every, 2 * shape.every].map((d) => dayOf(shape.start, d)) as [string, string, string];

/**
 * After the last compaction: staging of an existing day (day 1) and of a day never compacted (the day after
 * the last), capture's quarantine, a poison batch, split work folders and a run report.
 */
async function addOtherCopies(store: ObjectStore, shape: LakeShape, lastDay: string): Promise<void> {
  const dEvery = dayOf(shape.start, shape.every);
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

/**
 * Every object of the store with the needles it contains (decompressed; Parquet rows and footer read), skipping
 * `erasures/`. The Parquet objects are read together: one `parquet_schema` over all of them, then one
 * `read_parquet` per distinct schema and one `parquet_metadata`, each row credited to its file.
 */
export async function rawScan(store: ObjectStore, needles: readonly string[]): Promise<Record<string, string[]>> {
  const folder = await mkdtemp(join(process.env.TMPDIR ?? tmpdir(), 'erase-scan-'));
  const db = await DuckDBInstance.create(':memory:', { threads: '1' });
  const c = await db.connect();
  const texts = new Map<string, string>();
  /** Local file → object key: a name per object (DuckDB caches what it read of a path). */
  const parquet = new Map<string, string>();
  try {
    const objects = (await listAll(store, '')).filter((info) => !info.key.startsWith('erasures/'));
    await mapLimit(objects, 8, async (info, i) => {
      let bytes = await getBytes(store, info.key);
      let text = bytes.toString('latin1') + bytes.toString('utf8');
      if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
        bytes = gunzipSync(bytes);
        text += bytes.toString('utf8');
      }
      texts.set(info.key, text);
      if (bytes.subarray(0, 4).toString('latin1') === 'PAR1') {
        const file = join(folder, `${i}.parquet`);
        await writeFile(file, bytes);
        parquet.set(file, info.key);
      }
    });
    const credit = (rows: Record<string, unknown>[], column: string) => {
      for (const row of rows) {
        const key = parquet.get(String(row[column])) as string;
        texts.set(key, `${texts.get(key)}${JSON.stringify(row)}`);
      }
    };
    if (parquet.size > 0) {
      const files = quoteStringList([...parquet.keys()]);
      const schemas = new Map<string, string[]>();
      for (const row of (
        await c.runAndReadAll(
          `SELECT file_name, string_agg(name || ':' || coalesce(type, '') || ':' || coalesce(logical_type::VARCHAR, ''), ',' ORDER BY name) AS schema
           FROM parquet_schema(${files}) GROUP BY file_name`,
        )
      ).getRowObjectsJson()) {
        const schema = String(row.schema);
        schemas.set(schema, [...(schemas.get(schema) ?? []), String(row.file_name)]);
      }
      for (const group of schemas.values()) {
        credit(
          (
            await c.runAndReadAll(`SELECT * FROM read_parquet(${quoteStringList(group)}, filename = 'scanned_file')`)
          ).getRowObjectsJson() as Record<string, unknown>[],
          'scanned_file',
        );
      }
      credit(
        (await c.runAndReadAll(`SELECT * FROM parquet_metadata(${files})`)).getRowObjectsJson() as Record<string, unknown>[],
        'file_name',
      );
    }
  } finally {
    c.closeSync();
    db.closeSync();
    await rm(folder, { recursive: true, force: true });
  }
  const hits: Record<string, string[]> = {};
  for (const [key, text] of [...texts].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const found = needles.filter((n) => text.includes(n));
    if (found.length > 0) hits[key] = found;
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
