/**
 * One message, one partition, for backfills (docs/ARCHITECTURE.md, "One message, one partition"): a
 * backfilled version that names another JST day than a day the table holds the message in takes it out of
 * that day, as capture does for an edit whose previous image names another day.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { StagedRecord } from '../../core/schema/messageSchema.js';
import { quoteLiteral, quoteStringList } from '../../core/sql/quote.js';
import { stagingKey } from '../../core/staging/layout.js';
import { mapLimit } from '../../core/util/concurrency.js';
import { idRange, type LookupCost, tenantDataFiles } from '../../lake/messageDays.js';
import type { AddAction } from '../../lake/table/actions.js';
import { DeltaTable, tableKey } from '../../lake/table/deltaTable.js';
import { openDuckDb, withConnection } from '../../ports/duckdb/openDuckDb.js';
import type { ObjectStore } from '../../ports/store/ObjectStore.js';
import { ObjectStoreStagingSink } from '../ingest/ObjectStoreStagingSink.js';
import { BACKFILL_POSITION } from './backfillChange.js';

/** The staging objects one backfilled tenant-day wrote. */
export interface BackfilledDay {
  readonly tenant: string;
  /** The day's object base name (`backfill-<source>-<date>-<tenant>`): its move-outs are named `<name>-moves`. */
  readonly name: string;
  /** Its objects of backfilled versions (every line a version of a message). */
  readonly versions: readonly string[];
  /**
   * Move-outs it already staged from versions' previous images (an incremental export's OldImage, through
   * normaliseChange like capture): the lookup stages no second one for a day one of these already leaves.
   */
  readonly moveOuts?: readonly string[];
}

/** What taking one backfilled tenant-day's messages out of other days did. */
export interface DayMoves {
  /** The move-out objects written (one per day left), in day order. */
  readonly staged: readonly string[];
  /** (message, day) pairs taken out. */
  readonly moved: number;
  /** What the tenant's lookup read (shared by all of its days). */
  readonly lookup: LookupCost;
  /** Set when the tenant's lookup or a write failed: nothing is known about its moves. */
  readonly error?: unknown;
}

export interface MovesOptions {
  readonly db?: DuckDBInstance;
  /** Where staging and data files are downloaded (a temporary folder below it; default: the OS temp folder). */
  readonly workDirectory?: string;
}

const NO_LOOKUP: LookupCost = { files: 0, pruned: 0, read: 0, bytesRead: 0 };

/**
 * After a backfill staged `days`: for every backfilled message of a tenant that the table's current version
 * holds in another day than a backfilled version names, stages a **move-out** in each day whose version is
 * older than the message's latest (a `delete` at the backfill position, `ingested_at` = the latest version's
 * time, `created_at` = the older row's, so it belongs to that day): the message's removal from that day
 * only, ordered by time like any version. So a version read after the capture takes the message out of the
 * day the table holds it in, and a version older than the table's row (an export written before a change
 * captured since) takes it out of the backfilled day. Objects are named `<day's name>-moves_0_0` in the day
 * left, so a re-run replaces them.
 *
 * One lookup per tenant, whatever its number of days: the backfill's own staging objects of the tenant (one
 * GET each) are read into DuckDB, and the tenant's live data files whose `message_id` statistics hold one of
 * their ids (every file for unsortable ids such as UUIDs) are downloaded, eight at a time (one GET each), and
 * joined with them, so memory does not grow with the backfill (DuckDB spills to the work folder). A tenant the table holds no file of costs nothing but the snapshot.
 * A tenant's failure is reported in its days' results and never stops the other tenants.
 *
 * @example
 * const [moves] = await stageBackfillMoves(store, 'dynamodb', [{ tenant: 'acme', name: 'backfill-dynamodb-2025-08-12-acme', versions }]);
 */
export async function stageBackfillMoves(
  store: ObjectStore,
  source: 'dynamodb' | 'cosmos',
  days: readonly BackfilledDay[],
  options: MovesOptions = {},
): Promise<DayMoves[]> {
  const results: DayMoves[] = days.map(() => ({ staged: [], moved: 0, lookup: NO_LOOKUP }));
  const tenants = [...new Set(days.map((d) => d.tenant))];
  if (days.every((d) => d.versions.length === 0)) return results;
  const snapshot = await new DeltaTable(store, {}).snapshot();
  for (const tenant of tenants) {
    const indexes = days.flatMap((d, i) => (d.tenant === tenant && d.versions.length > 0 ? [i] : []));
    const files = tenantDataFiles(snapshot, tenant);
    if (indexes.length === 0 || files.length === 0) continue;
    try {
      const found = await tenantMoves(
        store,
        source,
        tenant,
        indexes.map((i) => days[i] as BackfilledDay),
        files,
        options,
      );
      indexes.forEach((i, j) => {
        results[i] = found[j] as DayMoves;
      });
    } catch (error) {
      for (const i of indexes) results[i] = { staged: [], moved: 0, lookup: NO_LOOKUP, error };
    }
  }
  return results;
}

async function tenantMoves(
  store: ObjectStore,
  source: 'dynamodb' | 'cosmos',
  tenant: string,
  days: readonly BackfilledDay[],
  files: readonly AddAction[],
  options: MovesOptions,
): Promise<DayMoves[]> {
  const folder = await mkdtemp(join(options.workDirectory ?? tmpdir(), 'backfill-moves-'));
  const db = options.db ?? (await openDuckDb({ memoryLimit: '256MB', threads: 1, workDirectory: folder }));
  try {
    const download = async (keys: readonly { key: string; path: string }[]) =>
      mapLimit(keys, 8, async ({ key, path }) => {
        await store.getToFile(key, path);
        return path;
      });
    // file names carry the day's index: `v-<day>-<n>` (versions), `o-<day>-<n>` (move-outs already staged)
    const versions = await download(
      days.flatMap((d, i) => d.versions.map((key, n) => ({ key, path: join(folder, `v-${i}-${n}.ndjson.gz`) }))),
    );
    const moveOuts = await download(
      days.flatMap((d, i) => (d.moveOuts ?? []).map((key, n) => ({ key, path: join(folder, `o-${i}-${n}.ndjson.gz`) }))),
    );
    const moves = await withConnection(db, async (connection: DuckDBConnection) => {
      await connection.run(stagedLinesSql('backfilled', versions));
      await connection.run(stagedLinesSql('moved_out', moveOuts));
      const candidates = await candidateFiles(connection, files);
      await connection.run(
        'CREATE OR REPLACE TEMP TABLE held (message_id VARCHAR, dt VARCHAR, created_at BIGINT, ingested_at BIGINT)',
      );
      for (let i = 0; i < candidates.length; i += 8) {
        const batch = candidates.slice(i, i + 8);
        const local = await download(
          batch.map((a, j) => ({ key: tableKey(a.path), path: join(folder, `part-${i + j}.parquet`) })),
        );
        await connection.run(
          heldRowsSql(
            local,
            batch.map((a) => a.partitionValues.dt as string),
          ),
        );
        await Promise.all(local.map((path) => rm(path, { force: true })));
      }
      const rows = (await connection.runAndReadAll(MOVES_SQL)).getRowObjectsJS();
      const cost = {
        files: files.length,
        pruned: files.length - candidates.length,
        read: candidates.length,
        bytesRead: candidates.reduce((n, a) => n + a.size, 0),
      };
      return { rows, cost };
    });
    return await writeMoves(store, source, tenant, days, moves.rows, moves.cost);
  } finally {
    if (!options.db) db.closeSync();
    await rm(folder, { recursive: true, force: true });
  }
}

/**
 * The tenant's files that may hold a backfilled message: every file without `message_id` statistics, and the
 * files whose min/max hold at least one backfilled id (one DuckDB query over the backfilled ids; DuckDB
 * compares VARCHAR by bytes, the UTF-8 order Parquet's statistics use). Files without rows never.
 */
async function candidateFiles(connection: DuckDBConnection, files: readonly AddAction[]): Promise<AddAction[]> {
  const ranges = files.map((a) => idRange(a));
  const bounded = ranges.flatMap((r, i) => (typeof r === 'object' ? [{ i, r }] : []));
  const hit = new Set<number>();
  if (bounded.length > 0) {
    const values = bounded
      .map(({ i, r }) => `(${i}, ${quoteLiteral(r.min.toString('utf8'))}, ${quoteLiteral(r.max.toString('utf8'))})`)
      .join(', ');
    const rows = await connection.runAndReadAll(
      `SELECT f.i FROM (VALUES ${values}) f(i, lo, hi)
      WHERE EXISTS (SELECT 1 FROM backfilled b WHERE b.message_id BETWEEN f.lo AND f.hi) ORDER BY f.i`,
    );
    for (const row of rows.getRowObjectsJS()) hit.add(Number(row.i));
  }
  return files.filter((_, i) => ranges[i] === 'any' || hit.has(i));
}

/** A temp table of the staged lines' (message, day, creation, time, backfilled day index) of local gzip NDJSON files. */
function stagedLinesSql(table: string, paths: readonly string[]): string {
  if (paths.length === 0) {
    return `CREATE OR REPLACE TEMP TABLE ${table} (message_id VARCHAR, dt VARCHAR, created_at BIGINT, ingested_at BIGINT, day_index INTEGER)`;
  }
  return `CREATE OR REPLACE TEMP TABLE ${table} AS
  SELECT message_id, dt, created_at, ingested_at, CAST(regexp_extract(filename, '[vo]-([0-9]+)-[0-9]+\\.ndjson\\.gz$', 1) AS INTEGER) AS day_index
  FROM read_ndjson(${quoteStringList(paths)}, columns = {message_id: 'VARCHAR', dt: 'VARCHAR', created_at: 'BIGINT', ingested_at: 'BIGINT'},
    filename = true, format = 'newline_delimited', compression = 'gzip')
  WHERE message_id IS NOT NULL`;
}

/** Adds the rows of local data files (each of the day in `dts` at its index) holding a backfilled message: day, creation, version time. */
function heldRowsSql(paths: readonly string[], dts: readonly string[]): string {
  const days = paths.map((p, i) => `(${quoteLiteral(p)}, ${quoteLiteral(dts[i] as string)})`).join(', ');
  return `INSERT INTO held
  SELECT p.message_id, f.dt, epoch_ms(p.created_at), epoch_ms(p.ingested_at)
  FROM read_parquet(${quoteStringList(paths)}, filename = true) p
  JOIN (VALUES ${days}) f(filename, dt) ON f.filename = p.filename
  WHERE p.message_id IN (SELECT message_id FROM backfilled)`;
}

/**
 * The move-outs: a message's places are its backfilled versions and its rows in the table (day, time: the
 * version's `ingested_at`); each day whose latest place is older than the message's latest place anywhere
 * gets a move-out at that latest time — a day the table holds it in when the backfill's version is newer, the
 * backfilled day when the table's row is newer (a change captured after the export) — unless the backfill
 * already leaves that day at that time or later (a move-out from a previous image). Equal times move nothing.
 * A move-out is staged with the objects of the message's first backfilled day (`day_index`).
 */
const MOVES_SQL = `WITH places AS (
    SELECT message_id, dt, ingested_at AS version_at, created_at, day_index FROM backfilled
    UNION ALL
    SELECT message_id, dt, ingested_at AS version_at, created_at, NULL AS day_index FROM held),
  per_day AS (SELECT message_id, dt, max(version_at) AS version_at, max(created_at) AS created_at FROM places GROUP BY message_id, dt),
  latest AS (SELECT message_id, max(version_at) AS version_at, min(day_index) AS day_index FROM places GROUP BY message_id)
  SELECT l.day_index, d.dt, d.message_id, d.created_at, l.version_at
  FROM per_day d JOIN latest l ON l.message_id = d.message_id
  WHERE d.version_at < l.version_at AND NOT EXISTS (
    SELECT 1 FROM moved_out o WHERE o.message_id = d.message_id AND o.dt = d.dt AND o.ingested_at >= l.version_at)
  ORDER BY l.day_index, d.dt, d.message_id`;

/**
 * Writes one move-out object per (backfilled day, day left): the same moves, the same object. Always objects
 * of the store, whatever the capture's transport: a backfill replaces its own objects by name.
 */
async function writeMoves(
  store: ObjectStore,
  source: 'dynamodb' | 'cosmos',
  tenant: string,
  days: readonly BackfilledDay[],
  rows: readonly Record<string, unknown>[],
  lookup: LookupCost,
): Promise<DayMoves[]> {
  const groups = new Map<string, StagedRecord[]>();
  for (const row of rows) {
    const id = `${row.day_index}\u0000${row.dt}`;
    groups.set(id, [...(groups.get(id) ?? []), moveOut(source, tenant, row)]);
  }
  const staged = days.map(() => [] as string[]);
  const sink = new ObjectStoreStagingSink(store);
  for (const [id, records] of groups) {
    const [day, dt] = id.split('\u0000') as [string, string];
    const key = stagingKey(tenant, dt, `${(days[Number(day)] as BackfilledDay).name}-moves_0_0`);
    await sink.put(key, records);
    staged[Number(day)]?.push(key);
  }
  return days.map((_, i) => ({
    staged: staged[i] as string[],
    moved: rows.filter((r) => Number(r.day_index) === i).length,
    lookup,
  }));
}

/** The staging line that takes a message out of day `row.dt` at the backfill's time. */
function moveOut(source: 'dynamodb' | 'cosmos', tenant: string, row: Record<string, unknown>): StagedRecord {
  return {
    tenant_id: tenant,
    dt: String(row.dt),
    message_id: String(row.message_id),
    conversation_id: null,
    sender_id: null,
    role: null,
    content: null,
    created_at: Number(row.created_at),
    updated_at: null,
    attributes: '{}',
    source,
    source_seq: BACKFILL_POSITION,
    ingested_at: Number(row.version_at),
    op: 'delete',
  };
}
