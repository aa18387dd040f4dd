/**
 * Which day (dt partition) the table holds a message in: the lookup a delete that names no day needs
 * (docs/ARCHITECTURE.md, "Deletes that name no day"), and a backfill that must take a message out of a day
 * its version no longer names (src/capture/backfill/backfillMoves.ts). Derived on demand from the table's current
 * data files (never a second truth to keep in step), pruned by each file's `message_id` min/max statistics.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DuckDBInstance } from '@duckdb/node-api';
import { quoteStringList } from '../core/sql/quote.js';
import { mapLimit } from '../core/util/concurrency.js';
import { openDuckDb, withConnection } from '../ports/duckdb/openDuckDb.js';
import type { ObjectStore } from '../ports/store/ObjectStore.js';
import type { AddAction } from './table/actions.js';
import { type TableSnapshot, tableKey } from './table/deltaTable.js';

/** One place the table holds a message: its partition day and creation instant (epoch ms). */
export interface MessagePlace {
  readonly dt: string;
  readonly createdAt: number;
}

/** What one lookup read, for the log and docs/ARCHITECTURE.md's cost figures. */
export interface LookupCost {
  /** Live data files of the tenant that could hold a message (written at or after `since`). */
  readonly files: number;
  /** Of those, skipped by their statistics (no rows, or every id outside their message_id min/max). */
  readonly pruned: number;
  /** Files downloaded and read (one GET each). */
  readonly read: number;
  readonly bytesRead: number;
}

export interface LookupOptions {
  /** A DuckDB instance to read the files with; without one a small one is opened for the lookup. */
  readonly db?: DuckDBInstance;
  /** Where the files are downloaded (a temporary folder below it, removed afterwards; default: the OS temp folder). */
  readonly workDirectory?: string;
  /** Only files the store wrote at or after this instant (epoch ms): older ones were searched before. */
  readonly since?: number;
  /** Files downloaded and read at once (default 8): the disk holds at most this many. */
  readonly batchFiles?: number;
}

/**
 * The days the table's version `snapshot` holds each of `ids` in (a message is normally in one; in two while
 * a move-out waits to be compacted), for one tenant. Only the tenant's live files are candidates, and of
 * those only the ones whose `message_id` statistics can hold one of the ids (Delta's min/max; a file whose
 * ids are longer than 32 characters has none and is always read). Each candidate costs one GET of the whole
 * file; only `message_id` and `created_at` are read from it.
 *
 * @example
 * const { places } = await findMessageDays(store, snapshot, 'acme', new Set(['m1']));
 * // Map { 'm1' => [{ dt: '2025-08-11', createdAt: 1754874000000 }] }
 */
export async function findMessageDays(
  store: ObjectStore,
  snapshot: TableSnapshot,
  tenant: string,
  ids: ReadonlySet<string>,
  options: LookupOptions = {},
): Promise<{ places: Map<string, MessagePlace[]>; cost: LookupCost }> {
  const files = tenantDataFiles(snapshot, tenant, options.since);
  const wanted = [...ids].sort();
  const candidates = wanted.length === 0 ? [] : files.filter((a) => mayHold(a, wanted));
  const places = new Map<string, MessagePlace[]>();
  const cost = {
    files: files.length,
    pruned: files.length - candidates.length,
    read: candidates.length,
    bytesRead: candidates.reduce((n, a) => n + a.size, 0),
  };
  if (candidates.length === 0) return { places, cost };

  const folder = await mkdtemp(join(options.workDirectory ?? tmpdir(), 'message-days-'));
  const db = options.db ?? (await openDuckDb({ memoryLimit: '256MB', threads: 1, workDirectory: folder }));
  try {
    const batch = Math.max(1, options.batchFiles ?? 8);
    for (let i = 0; i < candidates.length; i += batch) {
      const adds = candidates.slice(i, i + batch);
      const local = await mapLimit(adds, batch, async (add, j) => {
        const path = join(folder, `file-${i + j}.parquet`);
        await store.getToFile(tableKey(add.path), path);
        return path;
      });
      const found = await withConnection(db, async (connection) =>
        (await connection.runAndReadAll(messageDaysSql(local, wanted))).getRowObjectsJS(),
      );
      for (const row of found) {
        const add = adds[local.indexOf(String(row.filename))] as AddAction;
        const id = String(row.message_id);
        const place = { dt: add.partitionValues.dt as string, createdAt: Number(row.created_at) };
        const known = places.get(id) ?? [];
        if (!known.some((p) => p.dt === place.dt)) known.push(place);
        places.set(
          id,
          known.sort((a, b) => a.dt.localeCompare(b.dt)),
        );
      }
      await Promise.all(local.map((path) => rm(path, { force: true })));
    }
  } finally {
    if (!options.db) db.closeSync();
    await rm(folder, { recursive: true, force: true });
  }
  return { places, cost };
}

/** The rows of `files` holding one of `ids`: message id, creation instant (epoch ms) and the local file. */
export function messageDaysSql(files: readonly string[], ids: readonly string[]): string {
  return `SELECT message_id, epoch_ms(created_at) AS created_at, filename
  FROM read_parquet(${quoteStringList(files)}, filename = true)
  WHERE message_id IN (SELECT unnest(${quoteStringList(ids)}::VARCHAR[]))
  ORDER BY filename, message_id`;
}

/** The tenant's live data files in `snapshot` (written at or after `since`, when given), by path. */
export function tenantDataFiles(snapshot: TableSnapshot, tenant: string, since?: number): AddAction[] {
  return [...snapshot.files.values()]
    .filter((a) => a.partitionValues.tenant_id === tenant && a.partitionValues.dt)
    .filter((a) => since === undefined || a.modificationTime >= since)
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * Whether a file may hold one of the (sorted) ids, from its Delta statistics: not when it has no rows, nor
 * when its `message_id` min/max (UTF-8 byte order, as Parquet compares) leave every id out. A file without
 * statistics may hold anything.
 */
function mayHold(add: AddAction, ids: readonly string[]): boolean {
  const range = idRange(add);
  if (range === 'empty') return false;
  if (range === 'any') return true;
  return ids.some((id) => {
    const b = Buffer.from(id, 'utf8');
    return Buffer.compare(b, range.min) >= 0 && Buffer.compare(b, range.max) <= 0;
  });
}

/** A file's `message_id` min/max as UTF-8 bytes, 'empty' when it has no rows, 'any' without statistics. */
export function idRange(add: AddAction): { min: Buffer; max: Buffer } | 'empty' | 'any' {
  let stats: { numRecords?: unknown; minValues?: Record<string, unknown>; maxValues?: Record<string, unknown> };
  try {
    stats = add.stats ? JSON.parse(add.stats) : {};
  } catch (error) {
    if (error instanceof SyntaxError) return 'any'; // unreadable statistics prune nothing
    throw error;
  }
  if (stats.numRecords === 0) return 'empty';
  const min = stats.minValues?.message_id;
  const max = stats.maxValues?.message_id;
  if (typeof min !== 'string' || typeof max !== 'string') return 'any';
  return { min: Buffer.from(min, 'utf8'), max: Buffer.from(max, 'utf8') };
}
