/**
 * User deletes that name no day (a Cosmos all-versions-and-deletes delete carries only the message's id and
 * partition key): capture keeps them under `pending/deletes/`, and the nightly planner places each in
 * staging of the day the table holds the message in, where the day's compaction applies it as any user
 * delete (docs/ARCHITECTURE.md, "Deletes that name no day").
 */
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import type { DuckDBInstance } from '@duckdb/node-api';
import type { UnplacedDelete } from '../core/model/normalise.js';
import type { StagedRecord } from '../core/schema/messageSchema.js';
import { PENDING_DELETES_ROOT, stagingKey } from '../core/staging/layout.js';
import { PreconditionFailedError } from '../ports/store/errors.js';
import { getBytes, type ObjectInfo, type ObjectStore, putNdjson } from '../ports/store/ObjectStore.js';
import { findMessageDays, type LookupCost, type MessagePlace } from './messageDays.js';
import type { TableSnapshot } from './table/deltaTable.js';

/**
 * Files written this long before a pending delete's last search are searched again: a compaction uploads
 * its parts before it commits them, so a part the search's version did not name yet can be a little older
 * than that version.
 */
export const SEARCH_OVERLAP_MS = 24 * 3_600_000;

/** One line of a pending-deletes object: the delete, and after a search, where it was placed or why it waits. */
export interface PendingDeleteLine extends UnplacedDelete {
  /** The days the delete has been placed in (staged there) so far. */
  readonly placed_in?: readonly string[];
  /** Why the delete is still here (set by the planner after a search). */
  readonly waiting?: string;
  /** The table version (and its commit time, epoch ms) the last search read: later searches read newer files only. */
  readonly checked_version?: number;
  readonly checked_at?: number;
}

/** What placing one tenant's pending deletes did. */
export interface PlacedDeletes {
  /** Deletes placed in a day tonight (one per day the table holds the message in and none placed before). */
  readonly placed: number;
  /** Deletes still waiting for their message: no data file of the table holds it (yet). */
  readonly waiting: number;
  /** Deletes placed on an earlier night and kept one more (the message may still appear in another day). */
  readonly settling: number;
  /** Deletes done: placed, and a later search found the message in no day they were not placed in. */
  readonly done: number;
  /** The staging objects written, one per (pending object, day). */
  readonly staged: readonly string[];
  /** Pending objects that could not be read (left as they are, for an operator). */
  readonly unreadable: readonly string[];
  /** Pending objects another planner changed meanwhile (left to it). */
  readonly raced: number;
  readonly lookup: LookupCost;
}

export interface PlaceOptions {
  readonly db?: DuckDBInstance;
  readonly workDirectory?: string;
}

/**
 * Places the pending deletes of one tenant (`objects`: its keys under pending/deletes/) against the table's
 * version `snapshot`: each delete whose message the table holds in a day it was not placed in yet becomes a
 * staging line of that day (its `created_at` the row's, so the compaction accepts it there; every other
 * field as captured, so it weighs as the delete it is), in a staging object named after the pending one
 * and its lines (a re-run writes the same object). A placed delete is kept until a later night's search
 * finds its message in no other day: a move of the message captured before the delete but compacted after
 * the placement publishes it in its new day, and the delete must follow it there. A delete whose message
 * the table does not hold waits, and says why in its line. A pending object is deleted once all of its
 * deletes are done, otherwise rewritten with the rest (both only if no other planner changed it meanwhile).
 *
 * Cost: one GET per pending object, one lookup for all of the tenant's pending deletes (findMessageDays;
 * when every delete was searched before, only the files written since), one PUT per staging object and one
 * PUT or DELETE per pending object.
 */
export async function placePendingDeletes(
  store: ObjectStore,
  snapshot: TableSnapshot,
  tenant: string,
  objects: readonly ObjectInfo[],
  options: PlaceOptions = {},
): Promise<PlacedDeletes> {
  const read: { object: ObjectInfo; lines: PendingDeleteLine[] }[] = [];
  const unreadable: string[] = [];
  for (const object of objects) {
    const lines = await readPending(store, object.key);
    if (lines) read.push({ object, lines });
    else unreadable.push(object.key);
  }
  const all = read.flatMap((r) => r.lines);
  const ids = new Set(all.map((l) => l.message_id));
  const checked = all.map((l) => l.checked_at);
  const searched = checked.length > 0 && checked.every((t) => typeof t === 'number');
  const since = searched ? Math.min(...(checked as number[])) - SEARCH_OVERLAP_MS : undefined;
  const { places, cost } = await findMessageDays(store, snapshot, tenant, ids, {
    ...options,
    ...(since === undefined ? {} : { since }),
  });

  const tally = { placed: 0, waiting: 0, settling: 0, done: 0, raced: 0 };
  const staged: string[] = [];
  for (const { object, lines } of read) {
    const byDay = new Map<string, StagedRecord[]>();
    const rest: PendingDeleteLine[] = [];
    for (const line of lines) {
      const before = line.placed_in ?? [];
      const found = (places.get(line.message_id) ?? []).filter((p) => !before.includes(p.dt));
      for (const place of found) byDay.set(place.dt, [...(byDay.get(place.dt) ?? []), stagedDelete(line, place)]);
      if (found.length === 0 && before.length > 0) {
        tally.done += 1;
        continue;
      }
      rest.push(checkedLine(line, [...before, ...found.map((p) => p.dt)].sort(), snapshot, cost));
      if (found.length > 0) tally.placed += found.length;
      else tally.waiting += 1;
    }
    const name = object.key.slice(object.key.lastIndexOf('/') + 1).replace(/\.ndjson\.gz$/, '');
    for (const [dt, records] of [...byDay].sort(([a], [b]) => a.localeCompare(b))) {
      const key = stagingKey(tenant, dt, `${name}-placed-${linesHash(records)}`);
      await putNdjson(store, key, records);
      staged.push(key);
    }
    tally.settling += rest.filter((l) => (l.placed_in ?? []).length > 0).length;
    try {
      if (rest.length === 0) await store.delete(object.key, { ifMatch: object.etag });
      else await putNdjson(store, object.key, rest, { ifMatch: object.etag });
    } catch (error) {
      if (!(error instanceof PreconditionFailedError)) throw error;
      tally.raced += 1;
    }
  }
  return { ...tally, staged, unreadable, lookup: cost };
}

/** The tenants' pending-deletes objects from one listing of pending/deletes/, by tenant. */
export function pendingByTenant(objects: readonly ObjectInfo[]): Map<string, ObjectInfo[]> {
  const byTenant = new Map<string, ObjectInfo[]>();
  for (const o of objects) {
    const match = /^tenant_id=([^/]+)\/[^/]+\.ndjson\.gz$/.exec(o.key.slice(PENDING_DELETES_ROOT.length));
    if (!match) continue;
    const tenant = match[1] as string;
    byTenant.set(tenant, [...(byTenant.get(tenant) ?? []), o]);
  }
  return byTenant;
}

/** The lines of a pending object, or undefined when it is not gzip NDJSON of objects with a message id. */
export async function readPending(store: ObjectStore, key: string): Promise<PendingDeleteLine[] | undefined> {
  try {
    const text = gunzipSync(await getBytes(store, key)).toString('utf8');
    const lines = text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as PendingDeleteLine);
    return lines.every((l) => typeof l?.message_id === 'string' && typeof l.source_seq === 'string') ? lines : undefined;
  } catch (error) {
    // a truncated or foreign object: zlib's errors carry a code, JSON's are SyntaxErrors
    if (error instanceof SyntaxError || (error as NodeJS.ErrnoException)?.code?.startsWith('Z_')) return undefined;
    throw error;
  }
}

/** The staging line of a delete placed in a day: the captured delete with the day and the row's creation time. */
function stagedDelete(line: PendingDeleteLine, place: MessagePlace): StagedRecord {
  return {
    tenant_id: line.tenant_id,
    dt: place.dt,
    message_id: line.message_id,
    conversation_id: line.conversation_id,
    sender_id: line.sender_id,
    role: line.role,
    content: line.content,
    created_at: place.createdAt,
    updated_at: line.updated_at,
    attributes: line.attributes,
    source: line.source,
    source_seq: line.source_seq,
    ingested_at: line.ingested_at,
    op: 'delete',
  };
}

/** A line kept after tonight's search: where it is placed, or why it waits, and what the search read. */
function checkedLine(
  line: PendingDeleteLine,
  placedIn: readonly string[],
  snapshot: TableSnapshot,
  cost: LookupCost,
): PendingDeleteLine {
  const { placed_in: _p, waiting: _w, checked_version: _v, checked_at: _t, ...delete_ } = line;
  const id = JSON.stringify(line.message_id);
  const searched = `version ${snapshot.version}; ${cost.read} of ${cost.files} files read`;
  return {
    ...delete_,
    ...(placedIn.length > 0 ? { placed_in: placedIn } : {}),
    waiting:
      placedIn.length > 0
        ? `placed in ${placedIn.join(', ')} (${searched}); kept until a later search finds message ${id} in no other day`
        : `message ${id} is in no data file of the table (${searched}): it is placed once a compaction publishes it`,
    checked_version: snapshot.version,
    checked_at: snapshot.timestamp,
  };
}

/** A short name for a set of placed lines (their ids and positions): the same lines, the same object. */
function linesHash(records: readonly StagedRecord[]): string {
  const hash = createHash('sha256');
  for (const r of records) hash.update(`${r.message_id}\u0000${r.source_seq}\u0000${r.ingested_at}\n`);
  return hash.digest('hex').slice(0, 12);
}
