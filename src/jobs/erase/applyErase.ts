/**
 * Carries out an erase plan, in the order that keeps the table readable at every moment and lets a re-run
 * after a crash finish the job:
 *
 * 1. objects outside the table (staging, capture quarantine, poison batches, reports) are rewritten without
 *    the matching records, each conditional on the version read (a capture rewriting the object meanwhile
 *    makes the erase plan again); split work folders holding a match are deleted (the split is abandoned);
 * 2. one table commit replaces every affected partition's files: matching parts rewritten under new names
 *    unique to this attempt (from the plan's local copies when it kept them, REWRITERS parts at once, each
 *    upload in flight while the next part is rewritten), the remembered-deletes and compaction quarantine
 *    files rewritten, the others added again with the new tags — so a compaction that read the partition
 *    before the erase conflicts and plans again from the erased version;
 * 3. a checkpoint at that version, then every log file below it is deleted, oldest first (their statistics
 *    and paths name erased values; readers start from the checkpoint);
 * 4. the files no version now names that hold a match (replaced parts, old remembered deletes) are deleted,
 *    unless they were written after the erase commit (a compaction racing it): those are reported.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { analyticsKey, compactionQuarantineKey, LOCK_ROOT, tombstoneKey } from '../../core/staging/layout.js';
import { partStatsOn } from '../../engine/partStats.js';
import { lakeTable, tableMetadata } from '../../lake/lakeTable.js';
import {
  type AddAction,
  checkpointFileName,
  commitFileName,
  LOG_FOLDER,
  logFileVersion,
  type RemoveAction,
  removeOf,
} from '../../lake/table/actions.js';
import { addOf, partitionId, TABLE_ROOT, TAG_DELETES, TAG_QUARANTINE, tableKey } from '../../lake/table/deltaTable.js';
import { ObjectNotFoundError } from '../../ports/store/errors.js';
import { createOnce, getBytes, listAll, type ObjectInfo, type ObjectStore } from '../../ports/store/ObjectStore.js';
import type { EraseMatcher } from './eraseMatcher.js';
import { MatchSession, rewriteParquet } from './lakeObjects.js';
import type { EraseDeps, ErasePlan, ObjectEdit, PartitionEdit } from './planErase.js';
import type { Remaining } from './receipt.js';

/** Parts rewritten at once (each a DuckDB statement on its own connection). */
const REWRITERS = 2;
/** Replaced and old files deleted at once. */
const DELETES = 8;

/** A file outside the current version younger than this, in a partition the table does not hold, may be an upload of a first compaction in flight. */
const UNCOMMITTED_UPLOAD_MS = 24 * 3_600_000;

export interface Applied {
  /** The table version the erase committed, if it committed one. */
  readonly version: number | undefined;
  readonly logFilesDeleted: number;
  readonly oldFilesDeleted: number;
  /** What the erase left, and why. */
  readonly notRemoved: Remaining[];
}

export async function applyErase(deps: EraseDeps, matcher: EraseMatcher, plan: ErasePlan, attemptId: string): Promise<Applied> {
  const { store } = deps;
  const now = deps.now ?? Date.now;
  for (const edit of plan.edits) await applyEdit(store, edit);
  for (const folder of plan.splitFolders) for (const info of folder.objects) await store.delete(info.key);

  const tableNeedsWork = plan.partitions.size > 0 || plan.logFiles.length > 0 || plan.oldFiles.length > 0;
  if (!tableNeedsWork || plan.snapshot.version < 0) {
    return { version: undefined, logFilesDeleted: 0, oldFilesDeleted: 0, notRemoved: [] };
  }
  const work = await mkdtemp(join(deps.workDirectory, 'erase-'));
  const replaced: string[] = [];
  let version: number;
  // a part's rewrite is one DuckDB statement, mostly on one thread (a part is a row group or a few):
  // REWRITERS run at once, each on its own connection with the matcher bound
  const sessions: MatchSession[] = [];
  const uploads = new Uploads();
  try {
    for (let i = 0; i < Math.min(REWRITERS, plan.partitions.size); i++) sessions.push(await MatchSession.open(deps.db, matcher));
    const adds: AddAction[] = [];
    const removes: RemoveAction[] = [];
    const idle = [...sessions];
    const changes = await untilFailure([...plan.partitions.values()], REWRITERS, async (edit) => {
      const session = idle.pop() as MatchSession;
      try {
        return await partitionChange(deps, matcher, edit, attemptId, { session, work, uploads, copies: plan.localCopies }, now());
      } finally {
        idle.push(session);
      }
    });
    for (const [p, edit] of [...plan.partitions.values()].entries()) {
      const change = changes[p] as { adds: AddAction[]; removes: RemoveAction[] };
      adds.push(...change.adds);
      removes.push(...change.removes);
      // the files this commit replaces hold the matches: deleted once it is in (below)
      for (const r of change.removes) if (matcher.everything || edit.rewrite.has(r.path)) replaced.push(tableKey(r.path));
      if (edit.tombstone) replaced.push(edit.tombstone.key);
      if (edit.quarantine) replaced.push(edit.quarantine.key);
    }
    // the rewritten parts' uploads, in flight while the next parts were rewritten: their adds now
    const placed = await uploads.all();
    const placedAdds = adds.map((add) => {
      const part = placed.get(add.path);
      return part ? addOf(part.info, add.partitionValues, part.stats, add.tags ?? {}) : add;
    });
    const table = lakeTable({ store, db: deps.db, workDirectory: work });
    const partitions = [...plan.partitions.values()].map((e) => partitionId({ tenant_id: matcher.tenant, dt: e.date }));
    version = await table.commit(
      {
        partitions,
        adds: placedAdds,
        removes,
        txns: [],
        info: {
          operation: matcher.everything ? 'DELETE' : 'WRITE',
          operationParameters: { mode: matcher.everything ? 'Offboard' : 'Erase', partitions: partitions.length },
          makoto: { erase_id: attemptId, tenant_id: matcher.tenant },
        },
      },
      plan.snapshot.version,
      () => tableMetadata(now()),
    );
    deps.log?.('erase.committed', { version, partitions: partitions.length });
    // a checkpoint at the erase's version: readers no longer need any log file before it
    await table.checkpoint(version);
  } finally {
    for (const session of sessions) session.close();
    await uploads.settle();
    await rm(work, { recursive: true, force: true });
  }
  // a compaction that read the table before the erase commit may still write its commit at a version below it:
  // were that version's file deleted, the put-if-absent would succeed below the checkpoint and be lost to every
  // reader. While any partition lease is live, the log below the erase stays (and is named in the receipt).
  const busy = await liveLeases(store, now());
  const logFilesDeleted = busy.length === 0 ? await deleteLogBefore(store, version) : 0;
  const committedAt = (await store.head(`${TABLE_ROOT}${commitFileName(version)}`))?.lastModified.getTime() ?? now();
  const notRemoved: Remaining[] = [];
  if (busy.length > 0) {
    for (const info of plan.logFiles.length > 0 ? plan.logFiles : await logBelow(store, version)) {
      notRemoved.push({
        key: info.key,
        records: 1,
        reason: `compactions were running (${busy.slice(0, 3).join(', ')}${busy.length > 3 ? ', …' : ''}): run the erase again once they have finished`,
      });
    }
  }
  let oldFilesDeleted = 0;
  // no version still kept names these (the log below the erase's checkpoint is gone); a compaction that read them conflicts
  // (in any order, DELETES at once: a crash in between leaves files the re-run's plan finds and deletes)
  await untilFailure([...new Set(replaced)], DELETES, (key) => store.delete(key));
  const doomed: string[] = [];
  const tableDates = new Set(plan.partitions.keys());
  for (const info of plan.oldFiles) {
    const date = /\/dt=(\d{4}-\d{2}-\d{2})\//.exec(info.key)?.[1];
    const racing = info.lastModified.getTime() >= committedAt;
    const firstUpload =
      date !== undefined && !tableDates.has(date) && info.lastModified.getTime() > now() - UNCOMMITTED_UPLOAD_MS;
    if (racing || firstUpload) {
      notRemoved.push({
        key: info.key,
        records: 1,
        reason: racing
          ? 'written after the erase commit by a compaction racing it; run the erase again once it has finished'
          : 'may be the upload of a first compaction still running; run the erase again tomorrow',
      });
      continue;
    }
    doomed.push(info.key);
  }
  await untilFailure(doomed, DELETES, async (key) => {
    await store.delete(key);
    oldFilesDeleted++;
  });
  return { version, logFilesDeleted, oldFilesDeleted, notRemoved };
}

/** `worker` over `items`, `limit` at once, results in order; after a failure no item is started, and it is thrown once the running ones end. */
async function untilFailure<T, R>(items: readonly T[], limit: number, worker: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const run = async () => {
    while (!failure && next < items.length) {
      const i = next++;
      try {
        results[i] = await worker(items[i] as T);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
  if (failure) throw failure.error;
  return results;
}

/** A conditional rewrite or delete; a precondition failure propagates (the caller plans again). */
async function applyEdit(store: ObjectStore, edit: ObjectEdit): Promise<void> {
  if (edit.body === null) await store.delete(edit.key, { ifMatch: edit.etag });
  else await store.putBytes(edit.key, edit.body, { ifMatch: edit.etag });
}

/** What rewriting parts needs: the matcher's session, a work folder, uploads in flight, the plan's local copies. */
interface Rewrite {
  readonly session: MatchSession;
  readonly work: string;
  readonly uploads: Uploads;
  readonly copies: ReadonlyMap<string, string>;
}

/** Uploads of rewritten parts, a few in flight while DuckDB rewrites the next (each removes its local file). */
class Uploads {
  static readonly LIMIT = 4;
  private readonly running = new Set<Promise<void>>();
  private readonly placed = new Map<string, { info: ObjectInfo; stats: string }>();
  private failure: { error: unknown } | undefined;

  /** Starts `put` (waiting first while LIMIT are in flight); its result is the part's add, by `placeholder`. */
  async start(placeholder: string, stats: string, put: () => Promise<ObjectInfo>, cleanup: () => Promise<void>): Promise<void> {
    while (this.running.size >= Uploads.LIMIT) await Promise.race(this.running);
    if (this.failure) throw this.failure.error;
    const task: Promise<void> = put()
      .then((info) => {
        this.placed.set(placeholder, { info, stats });
      })
      .catch((error: unknown) => {
        this.failure ??= { error };
      })
      .finally(async () => {
        this.running.delete(task);
        await cleanup();
      });
    this.running.add(task);
  }

  /** Every upload finished: the placed parts by placeholder; the first failure thrown. */
  async all(): Promise<ReadonlyMap<string, { info: ObjectInfo; stats: string }>> {
    await this.settle();
    if (this.failure) throw this.failure.error;
    return this.placed;
  }

  /** Waits for the uploads in flight (after a failure elsewhere: none is left running). */
  async settle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }
}

/** The removes and adds of one partition: matching parts rewritten, side files rewritten, the rest re-added with the new tags. */
async function partitionChange(
  deps: EraseDeps,
  matcher: EraseMatcher,
  edit: PartitionEdit,
  attemptId: string,
  rewrite: Rewrite,
  at: number,
): Promise<{ adds: AddAction[]; removes: RemoveAction[] }> {
  const { store } = deps;
  const { session, work } = rewrite;
  const tenant = matcher.tenant;
  // offboarding: the partition goes from the table
  if (matcher.everything) return { adds: [], removes: edit.files.map((f) => removeOf(f, at)) };

  const signal = new AbortController().signal;
  const tags: Record<string, string> = { ...(edit.files[0]?.tags ?? {}) };
  if (edit.tombstone) {
    const kept = await rewriteSide(deps, session, edit.tombstone.key, work, tombstoneKey(tenant, edit.date, attemptId));
    if (kept) tags[TAG_DELETES] = kept;
    else delete tags[TAG_DELETES];
  }
  if (edit.quarantine) {
    if (edit.quarantine.kept.length > 0) {
      const key = compactionQuarantineKey(tenant, edit.date, attemptId);
      await createOnce(store, key, signal, (o) =>
        store.putBytes(key, gzipSync(`${edit.quarantine?.kept.join('\n')}\n`), { ...o, contentType: 'application/gzip' }),
      );
      tags[TAG_QUARANTINE] = key;
    } else delete tags[TAG_QUARANTINE];
  }
  const adds: AddAction[] = [];
  const removes: RemoveAction[] = [];
  for (const [i, file] of edit.files.entries()) {
    if (!edit.rewrite.has(file.path)) {
      // the same file again, with the new tags: the commit touches the partition, nothing of it changes
      adds.push({ ...file, dataChange: false, tags });
      continue;
    }
    // the plan's copy of the part when it kept one (the same immutable object), else a download
    const copy = rewrite.copies.get(file.path);
    const local = copy ?? join(work, `in-${edit.date}-${i}.parquet`);
    const out = join(work, `out-${edit.date}-${i}.parquet`);
    if (!copy) await store.getToFile(tableKey(file.path), local);
    await rewriteParquet(session, local, out);
    await rm(local, { force: true });
    const key = analyticsKey(tenant, edit.date, attemptId, i);
    const { stats } = await partStatsOn(session.connection, out);
    // the add is completed once the upload is in (applyErase), under this placeholder path
    const placeholder = `pending:${key}`;
    await rewrite.uploads.start(
      placeholder,
      stats,
      () =>
        createOnce(store, key, signal, (o) => store.putFile(key, out, { ...o, contentType: 'application/vnd.apache.parquet' })),
      () => rm(out, { force: true }),
    );
    removes.push(removeOf(file, at));
    adds.push({ ...file, path: placeholder, tags });
  }
  return { adds, removes };
}

/** A Parquet side file (remembered deletes) without the matching rows, under `key`; undefined when nothing is left. */
async function rewriteSide(
  deps: EraseDeps,
  session: MatchSession,
  from: string,
  work: string,
  key: string,
): Promise<string | undefined> {
  const local = join(work, 'side-in.parquet');
  const out = join(work, 'side-out.parquet');
  try {
    await deps.store.getToFile(from, local);
    const rows = await rewriteParquet(session, local, out);
    if (rows === 0) return undefined;
    await createOnce(deps.store, key, new AbortController().signal, (o) =>
      deps.store.putFile(key, out, { ...o, contentType: 'application/vnd.apache.parquet' }),
    );
    return key;
  } finally {
    await rm(local, { force: true });
    await rm(out, { force: true });
  }
}

/** Deletes every commit and checkpoint below `version`, oldest first, once the checkpoint at `version` is there. */
async function deleteLogBefore(store: ObjectStore, version: number): Promise<number> {
  if (!(await store.head(`${TABLE_ROOT}${checkpointFileName(version)}`))) return 0;
  const doomed = await logBelow(store, version);
  for (const info of doomed) await store.delete(info.key);
  return doomed.length;
}

/** The commits and checkpoints below `version`, oldest first. */
async function logBelow(store: ObjectStore, version: number): Promise<ObjectInfo[]> {
  return (await listAll(store, `${TABLE_ROOT}${LOG_FOLDER}`))
    .map((info) => ({ info, v: logFileVersion(info.key) }))
    .filter((x) => x.v !== undefined && x.v.version < version)
    .sort((a, b) => (a.v?.version ?? 0) - (b.v?.version ?? 0))
    .map((x) => x.info);
}

/** `<tenant>/<date>` of every partition lease not yet expired (a compaction may be running). */
async function liveLeases(store: ObjectStore, now: number): Promise<string[]> {
  const live: string[] = [];
  for (const info of await listAll(store, LOCK_ROOT)) {
    try {
      const body = JSON.parse((await getBytes(store, info.key)).toString('utf8')) as { expires_at?: unknown };
      if (typeof body.expires_at === 'string' && Date.parse(body.expires_at) > now) live.push(info.key.slice(LOCK_ROOT.length));
    } catch (error) {
      // released between the listing and the read, or torn: not a running compaction
      if (!(error instanceof ObjectNotFoundError || error instanceof SyntaxError)) throw error;
    }
  }
  return live;
}
