/**
 * The erase's plan, and its verification: one read-only pass over every object the lake keeps for a tenant
 * (and the shared capture quarantine, poison batches, run reports and the table's log), finding each record
 * the matcher erases. Live data files whose statistics exclude every identifier asked for are not read
 * (pruned); verification never prunes. Nothing is written here (in the store).
 *
 * Parts are read many per DuckDB statement (`read_parquet([...], filename = true)`, grouped by file), the next
 * batch downloading meanwhile, with the matcher bound once per plan (a MatchSession); the erase keeps the local
 * copies of the parts that hold matches for its rewrite (docs/PERFORMANCE.md, section 9).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { DuckDBInstance } from '@duckdb/node-api';
import {
  analyticsTenantPrefix,
  CHECKPOINT_ROOT,
  COMPACTION_QUARANTINE_ROOT,
  LOCK_ROOT,
  manifestTenantPrefix,
  partitionDateOf,
  pendingDeleteTenantPrefix,
  QUARANTINE_ROOT,
  RUNS_ROOT,
  splitWorkTenantPrefix,
  stagingTenantPrefix,
  TOMBSTONE_ROOT,
} from '../../core/staging/layout.js';
import { mapLimit } from '../../core/util/concurrency.js';
import { currentSnapshot } from '../../lake/lakeTable.js';
import { type AddAction, LOG_FOLDER, logFileVersion } from '../../lake/table/actions.js';
import { TABLE_ROOT, TAG_DELETES, TAG_QUARANTINE, type TableSnapshot, tableKey } from '../../lake/table/deltaTable.js';
import { listAll, type ObjectInfo, type ObjectStore } from '../../ports/store/ObjectStore.js';
import { addClearId, type EraseMatcher, recordMatches, rowMatches, textMatches } from './eraseMatcher.js';
import {
  isParquet,
  MatchSession,
  parquetMatches,
  parquetMatchesMany,
  parquetRowsJson,
  parquetSchemas,
  readPlain,
  splitLines,
  withLocalCopy,
} from './lakeObjects.js';
import { type EraseCounts, type Remaining, zeroCounts } from './receipt.js';

export interface EraseDeps {
  readonly store: ObjectStore;
  readonly db: DuckDBInstance;
  /** A folder of this process (downloads live here while a batch of objects is read; the plan's copies of matching parts until the rewrite). */
  readonly workDirectory: string;
  readonly now?: () => number;
  readonly log?: (event: string, fields: Record<string, unknown>) => void;
}

/** A rewrite (or, with `body` null, a delete) of one object outside the table, conditional on its ETag. */
export interface ObjectEdit {
  readonly key: string;
  readonly etag: string;
  readonly body: Buffer | null;
  readonly removed: number;
}

/** What the erase commit does to one partition of the table. */
export interface PartitionEdit {
  readonly date: string;
  /** The partition's live files at the planned version. */
  readonly files: AddAction[];
  /** Live files holding matching rows (by path), and how many. */
  readonly rewrite: Map<string, number>;
  /** The live remembered-deletes file holding matching ids. */
  tombstone?: { key: string; rows: number };
  /** The live compaction quarantine file holding matching lines: the lines to keep. */
  quarantine?: { key: string; kept: string[]; removed: number };
}

export interface ErasePlan {
  readonly snapshot: TableSnapshot;
  readonly counts: EraseCounts;
  readonly edits: ObjectEdit[];
  /** Split work folders holding a match: deleted whole (the split is abandoned; the next run compacts again). */
  readonly splitFolders: { prefix: string; objects: ObjectInfo[] }[];
  /** Partitions of the table the erase commit rewrites (or re-adds, so that a compaction racing it conflicts). */
  readonly partitions: Map<string, PartitionEdit>;
  /** Files outside the current version that hold a match: deleted once the erase commit and its checkpoint are in. */
  readonly oldFiles: ObjectInfo[];
  /** Log files (commits, checkpoints) that name a match (a statistic, a live path): removed below the erase's checkpoint. */
  readonly logFiles: ObjectInfo[];
  /** Every object that holds a match, with the number of matching records: verification's answer. */
  readonly found: Remaining[];
  objectsScanned: number;
  /**
   * Local copies of live parts holding matches, by path (with `keepCopies`), so that the rewrite does not
   * download them again; in `copiesFolder`, which `releasePlan` removes.
   */
  readonly localCopies: Map<string, string>;
  copiesFolder?: string;
}

/** `--sender` etc. in clear, only to prune by statistics; verification passes none and reads everything. */
export interface PlanOptions {
  readonly clearIds?: readonly string[];
  /** Keep the local copies of the live parts holding matches for the rewrite (up to KEEP_COPIES_BYTES). */
  readonly keepCopies?: boolean;
}

/** Live parts read by one DuckDB statement: at most this many files… */
const BATCH_FILES = 64;
/** …and this many bytes (every file of a batch is on local disk while it is read, the next batch downloading). */
const BATCH_BYTES = 512e6;
/** Downloads in flight while the plan reads parts. */
const DOWNLOADS = 8;
/** Reports, manifests and other small objects read ahead (in flight at once). */
const READ_AHEAD = 16;
/** Local copies of matching parts kept for the rewrite, in bytes at most (beyond it the rewrite downloads again). */
const KEEP_COPIES_BYTES = 4e9;

/** Removes the plan's local copies of parts (after the rewrite used them, or when it will not run). */
export async function releasePlan(plan: ErasePlan): Promise<void> {
  plan.localCopies.clear();
  if (plan.copiesFolder) await rm(plan.copiesFolder, { recursive: true, force: true });
  plan.copiesFolder = undefined;
}

/**
 * Reads everything the lake keeps for `matcher.tenant` and plans the erase. Message ids of matching rows are
 * added to `matcher.hashes` as they are found (so the tenant's remembered deletes of those messages match).
 */
export async function planErase(deps: EraseDeps, matcher: EraseMatcher, options: PlanOptions = {}): Promise<ErasePlan> {
  const { store } = deps;
  await mkdir(deps.workDirectory, { recursive: true });
  const snapshot = await currentSnapshot({ store, db: deps.db, workDirectory: deps.workDirectory });
  const plan: ErasePlan = {
    snapshot,
    counts: zeroCounts(),
    edits: [],
    splitFolders: [],
    partitions: new Map(),
    oldFiles: [],
    logFiles: [],
    found: [],
    objectsScanned: 0,
    localCopies: new Map(),
  };
  const session = await MatchSession.open(deps.db, matcher);
  const folder = await mkdtemp(join(deps.workDirectory, 'plan-'));
  const ctx: Ctx = { deps, matcher, counter: { n: 0 }, plan, session, folder };
  try {
    await planInto(ctx, options);
  } catch (error) {
    await rm(folder, { recursive: true, force: true });
    throw error;
  } finally {
    session.close();
  }
  if (plan.localCopies.size > 0) plan.copiesFolder = folder;
  else await rm(folder, { recursive: true, force: true });
  return plan;
}

async function planInto(ctx: Ctx, options: PlanOptions): Promise<void> {
  const { deps, matcher, plan } = ctx;
  const { store } = deps;
  const { snapshot } = plan;
  const tenant = matcher.tenant;
  const live = [...snapshot.files.values()].filter((a) => a.partitionValues.tenant_id === tenant);
  const liveKeys = new Set(live.map((a) => tableKey(a.path)));
  const liveTags = new Map<string, string>();
  for (const add of live) {
    for (const tag of [TAG_DELETES, TAG_QUARANTINE]) {
      const key = add.tags?.[tag];
      if (key) liveTags.set(key, add.partitionValues.dt as string);
    }
  }
  const partition = (date: string): PartitionEdit | undefined => {
    const files = live.filter((a) => a.partitionValues.dt === date);
    if (files.length === 0) return undefined;
    let edit = plan.partitions.get(date);
    if (!edit) {
      edit = { date, files, rewrite: new Map() };
      plan.partitions.set(date, edit);
    }
    return edit;
  };
  const derive = (ids: Iterable<unknown>) => {
    for (const id of ids) if (typeof id === 'string' && id !== '') addClearId(matcher, id);
  };

  // staging first (and deletes waiting for their day): a sender's message ids found here also erase the
  // remembered deletes of those messages
  const staged = [
    ...(await listAll(store, stagingTenantPrefix(tenant))),
    ...(await listAll(store, pendingDeleteTenantPrefix(tenant))),
  ];
  for (const info of staged) {
    const edit = await editLines(ctx, info, true, (line) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        return textMatches(matcher, line, true).match;
      }
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return textMatches(matcher, line, true).match;
      const row = parsed as Record<string, unknown>;
      const match = rowMatches(matcher, row);
      if (match) derive([row.message_id]);
      return match;
    });
    if (edit) {
      plan.counts.staging_objects++;
      plan.counts.staging_lines += edit.removed;
      const date = partitionDateOf(info.key);
      if (date) partition(date);
    }
  }

  // the table's live files, pruned by their statistics where the identifiers are known in clear
  const read: AddAction[] = [];
  for (const add of live) {
    if (options.clearIds && !matcher.everything && prunedByStats(add, options.clearIds)) plan.counts.data_files_pruned++;
    else read.push(add);
  }
  plan.counts.data_files_read += read.length;
  const matched = await scanLiveParts(ctx, read, derive, options.keepCopies === true);
  for (const add of read) {
    const rows = matched.get(add.path) ?? 0;
    if (rows > 0) {
      partition(add.partitionValues.dt as string)?.rewrite.set(add.path, rows);
      plan.counts.rows += rows;
      plan.counts.data_files_rewritten++;
      plan.found.push({ key: tableKey(add.path), records: rows });
    }
  }

  // files of the tenant's partition folders the current version does not name (replaced parts, crashed uploads)
  for (const info of await listAll(store, analyticsTenantPrefix(tenant))) {
    if (liveKeys.has(info.key)) continue;
    const records = await scanObject(ctx, info, true, derive);
    if (records > 0) {
      plan.oldFiles.push(info);
      plan.counts.old_files++;
      plan.found.push({ key: info.key, records });
      const date = partitionDateOf(info.key);
      if (date) partition(date);
    }
  }

  // split work: a folder holding a match is deleted whole
  const folders = new Map<string, ObjectInfo[]>();
  for (const info of await listAll(store, splitWorkTenantPrefix(tenant))) {
    const folder = /^(.*?\/dt=\d{4}-\d{2}-\d{2}\/[^/]+\/)/.exec(info.key)?.[1] ?? info.key;
    folders.set(folder, [...(folders.get(folder) ?? []), info]);
  }
  for (const [prefix, objects] of folders) {
    let hit = false;
    for (const info of objects) {
      const records = await scanObject(ctx, info, true, derive);
      if (records > 0) {
        hit = true;
        plan.found.push({ key: info.key, records });
      }
    }
    if (hit || (matcher.everything && objects.length > 0)) {
      plan.splitFolders.push({ prefix, objects });
      plan.counts.split_work_folders++;
      const date = partitionDateOf(prefix);
      if (date) partition(date);
    }
  }

  // the compaction's quarantine of the tenant: the live one is rewritten by the erase commit, others deleted
  for (const info of await listAll(store, `${COMPACTION_QUARANTINE_ROOT}tenant_id=${tenant}/`)) {
    const liveDate = liveTags.get(info.key);
    const edit = await editLines(ctx, info, false, (line) => {
      const { match, messageIds } = textMatches(matcher, line, true);
      derive(messageIds);
      return match;
    });
    if (!edit) continue;
    plan.counts.compaction_quarantine_records += edit.removed;
    const target = liveDate === undefined ? undefined : partition(liveDate);
    if (target) {
      const { bytes } = await readPlain(store, info.key);
      const kept = splitLines(bytes.toString('utf8')).filter((line) => !textMatches(matcher, line, true).match);
      target.quarantine = { key: info.key, kept, removed: edit.removed };
    } else {
      plan.oldFiles.push(info);
      plan.counts.old_files++;
    }
  }

  // capture's quarantine and the Azure poison batches are shared by every tenant: records naming another tenant stay
  for (const info of await listAll(store, `${QUARANTINE_ROOT}ingest/`)) {
    const edit = await editLines(ctx, info, true, (line) => textMatches(matcher, line, false).match);
    if (edit) plan.counts.ingest_quarantine_records += edit.removed;
  }
  for (const info of await listAll(store, `${QUARANTINE_ROOT}poison/`)) {
    const edit = await editPoison(ctx, info);
    if (edit) plan.counts.poison_documents += edit.removed;
  }

  // remembered deletes, last: by now every message id of the request is known
  for (const info of await listAll(store, `${TOMBSTONE_ROOT}tenant_id=${tenant}/`)) {
    const rows = await scanObject(ctx, info, true, () => undefined);
    if (rows === 0) continue;
    plan.counts.tombstone_rows += rows;
    plan.found.push({ key: info.key, records: rows });
    const liveDate = liveTags.get(info.key);
    const target = liveDate === undefined ? undefined : partition(liveDate);
    if (target) target.tombstone = { key: info.key, rows };
    else {
      plan.oldFiles.push(info);
      plan.counts.old_files++;
    }
  }

  // reports and caches: a matching value is redacted in place
  const reports = [
    ...(await listAll(store, RUNS_ROOT)).map((info) => ({ info, own: false })),
    ...(await listAll(store, manifestTenantPrefix(tenant))).map((info) => ({ info, own: true })),
    ...(await listAll(store, `${LOCK_ROOT}tenant_id=${tenant}/`)).map((info) => ({ info, own: true })),
    ...(await listAll(store, CHECKPOINT_ROOT))
      .filter((info) => info.key.includes(`/tenant_id=${tenant}/`))
      .map((info) => ({ info, own: true })),
  ];
  await readAhead(ctx, reports, async ({ info, own }, body) => {
    const edit = await editJson(ctx, info, own, body);
    if (edit) plan.counts.reports++;
  });

  // the table's log: statistics of old versions name values of the files they added
  const log = (await listAll(store, `${TABLE_ROOT}${LOG_FOLDER}`)).filter((info) => logFileVersion(info.key) !== undefined);
  // an erase that commits anyway deletes every log file below its version: reading them first would tell nothing
  // (verification, which must find any, always reads them)
  const committing = plan.partitions.size > 0 || plan.oldFiles.length > 0;
  for (const info of options.clearIds && committing ? [] : log) {
    const kind = logFileVersion(info.key)?.kind;
    if (!kind) continue;
    const records = await scanLog(ctx, info, kind);
    if (records > 0) {
      plan.logFiles.push(info);
      plan.found.push({ key: info.key, records });
    }
  }
  plan.counts.partitions = plan.partitions.size;
  // the erase commits a version and its checkpoint: every log file there is now goes (applyErase)
  if (plan.snapshot.version >= 0 && (plan.partitions.size > 0 || plan.logFiles.length > 0 || plan.oldFiles.length > 0))
    plan.counts.log_files = log.length;
}

type Ctx = {
  deps: EraseDeps;
  matcher: EraseMatcher;
  counter: { n: number };
  plan: ErasePlan;
  /** The matcher's hashes bound on one DuckDB connection for the whole plan. */
  session: MatchSession;
  /** This plan's downloads (and the copies it keeps). */
  folder: string;
};

/**
 * The matching rows of each live part (by path), many parts per DuckDB statement, the next batch downloading
 * while one is read; the message ids of the matches derived after each batch. With `keep`, the copies of
 * parts holding matches stay in the plan's folder for the rewrite.
 */
async function scanLiveParts(
  ctx: Ctx,
  adds: readonly AddAction[],
  derive: (ids: Iterable<unknown>) => void,
  keep: boolean,
): Promise<Map<string, number>> {
  const matched = new Map<string, number>();
  const batches: AddAction[][] = [];
  let bytes = 0;
  for (const add of adds) {
    const last = batches[batches.length - 1];
    if (!last || last.length >= BATCH_FILES || bytes + add.size > BATCH_BYTES) {
      batches.push([add]);
      bytes = add.size;
    } else {
      last.push(add);
      bytes += add.size;
    }
  }
  const download = (batch: readonly AddAction[]) =>
    mapLimit(batch, DOWNLOADS, async (add) => {
      const file = join(ctx.folder, `part-${ctx.counter.n++}.parquet`);
      await ctx.deps.store.getToFile(tableKey(add.path), file);
      return file;
    });
  let kept = 0;
  let next: Promise<string[]> | undefined = batches[0] && download(batches[0]);
  try {
    for (const [b, batch] of batches.entries()) {
      const files = (await next) as string[];
      next = batches[b + 1] && download(batches[b + 1] as AddAction[]);
      const found = new Map<string, { rows: number; messageIds: string[] }>();
      for (const group of await parquetSchemas(ctx.session, files)) {
        if (ctx.session.matchable(group.columns)) {
          for (const [file, m] of await parquetMatchesMany(ctx.session, group.files, group.columns)) found.set(file, m);
          continue;
        }
        for (const file of group.files) {
          const rows = (await parquetRowsJson(ctx.deps.db, file)).filter((r) => recordMatches(ctx.matcher, r, true).match);
          found.set(file, { rows: rows.length, messageIds: [] });
        }
      }
      for (const [i, add] of batch.entries()) {
        const file = files[i] as string;
        const m = found.get(file) ?? { rows: 0, messageIds: [] };
        ctx.plan.objectsScanned++;
        derive(m.messageIds);
        if (m.rows > 0) matched.set(add.path, m.rows);
        if (keep && m.rows > 0 && kept + add.size <= KEEP_COPIES_BYTES) {
          kept += add.size;
          ctx.plan.localCopies.set(add.path, file);
        } else await rm(file, { force: true });
      }
    }
  } finally {
    // a failed batch: the one downloading meanwhile is awaited (its files go with the plan's folder)
    await next?.catch(() => undefined);
  }
  return matched;
}

/** Runs `use` on each item with its object's plain bytes, in order, reading up to READ_AHEAD objects ahead. */
async function readAhead<T extends { info: ObjectInfo }>(
  ctx: Ctx,
  items: readonly T[],
  use: (item: T, body: { bytes: Buffer; gzip: boolean }) => Promise<void>,
): Promise<void> {
  for (let i = 0; i < items.length; i += READ_AHEAD) {
    const chunk = items.slice(i, i + READ_AHEAD);
    const bodies = await mapLimit(chunk, READ_AHEAD, (item) => readPlain(ctx.deps.store, item.info.key));
    for (const [j, item] of chunk.entries()) await use(item, bodies[j] as { bytes: Buffer; gzip: boolean });
  }
}

/** Whether a data file's statistics show it holds none of the identifiers (every id column bounded, every id outside). */
export function prunedByStats(add: AddAction, ids: readonly string[]): boolean {
  if (!add.stats) return false;
  let stats: { numRecords?: number; minValues?: Record<string, unknown>; maxValues?: Record<string, unknown> };
  try {
    stats = JSON.parse(add.stats);
  } catch {
    return false;
  }
  if (stats.numRecords === 0) return true;
  for (const column of ['sender_id', 'conversation_id', 'message_id']) {
    const min = stats.minValues?.[column];
    const max = stats.maxValues?.[column];
    if (typeof min !== 'string' || typeof max !== 'string') return false;
    // Parquet orders strings by their UTF-8 bytes
    const lo = Buffer.from(min, 'utf8');
    const hi = Buffer.from(max, 'utf8');
    for (const id of ids) {
      const v = Buffer.from(id, 'utf8');
      if (Buffer.compare(lo, v) <= 0 && Buffer.compare(v, hi) <= 0) return false;
    }
  }
  return true;
}

/** Matching rows of a Parquet object (data part, split output), deriving the message ids of those rows. */
async function parquetObjectMatches(ctx: Ctx, info: { key: string }, derive: (ids: Iterable<unknown>) => void): Promise<number> {
  ctx.plan.objectsScanned++;
  return withLocalCopy(ctx.deps.store, info, ctx.folder, ctx.counter, async (file) => {
    const found = await parquetMatches(ctx.session, file);
    if (!found) return (await parquetRowsJson(ctx.deps.db, file)).filter((r) => recordMatches(ctx.matcher, r, true).match).length;
    derive(found.messageIds);
    return found.rows;
  });
}

/** Matching records of any object: Parquet rows, JSON documents, or lines of (gzip) text. */
async function scanObject(ctx: Ctx, info: ObjectInfo, own: boolean, derive: (ids: Iterable<unknown>) => void): Promise<number> {
  const { bytes } = await readPlain(ctx.deps.store, info.key);
  if (isParquet(bytes)) {
    ctx.plan.objectsScanned--;
    const file = join(ctx.folder, `scan-${ctx.counter.n++}.parquet`);
    await writeFile(file, bytes);
    try {
      return await parquetObjectMatches(ctx, { key: info.key }, derive);
    } finally {
      await rm(file, { force: true });
    }
  }
  ctx.plan.objectsScanned++;
  const text = bytes.toString('utf8');
  let count = 0;
  for (const line of splitLines(text)) {
    const { match, messageIds } = textMatches(ctx.matcher, line, own);
    if (match) {
      count++;
      derive(messageIds);
    }
  }
  if (count === 0 && splitLines(text).length > 1) {
    // a pretty-printed JSON document spans lines: judge it whole
    const whole = textMatches(ctx.matcher, text, own);
    if (whole.match) return 1;
  }
  return count;
}

/** Plans a rewrite of a (gzip) NDJSON object without the lines `matches` picks. */
async function editLines(
  ctx: Ctx,
  info: ObjectInfo,
  plan: boolean,
  matches: (line: string) => boolean,
): Promise<ObjectEdit | undefined> {
  ctx.plan.objectsScanned++;
  const { bytes, gzip } = await readPlain(ctx.deps.store, info.key);
  const lines = splitLines(bytes.toString('utf8'));
  const kept = lines.filter((line) => line.trim() === '' || !matches(line));
  const removed = lines.length - kept.length;
  if (removed === 0) return undefined;
  const text = kept.length === 0 ? '' : `${kept.join('\n')}\n`;
  const edit: ObjectEdit = {
    key: info.key,
    etag: info.etag,
    body: kept.every((l) => l.trim() === '') ? null : gzip ? gzipSync(text) : Buffer.from(text, 'utf8'),
    removed,
  };
  ctx.plan.found.push({ key: info.key, records: removed });
  if (plan) ctx.plan.edits.push(edit);
  return edit;
}

/** A poison batch (`{…, documents: [...]}`, gzip JSON) without the documents of the request. */
async function editPoison(ctx: Ctx, info: ObjectInfo): Promise<ObjectEdit | undefined> {
  ctx.plan.objectsScanned++;
  const { bytes, gzip } = await readPlain(ctx.deps.store, info.key);
  let body: { documents?: unknown };
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch {
    return editLines(ctx, info, true, (line) => textMatches(ctx.matcher, line, false).match);
  }
  if (!Array.isArray(body?.documents)) return undefined;
  const kept = body.documents.filter((d) => !recordMatches(ctx.matcher, d, false).match);
  const removed = body.documents.length - kept.length;
  if (removed === 0) return undefined;
  const text = JSON.stringify({ ...body, documents: kept });
  const edit: ObjectEdit = {
    key: info.key,
    etag: info.etag,
    body: kept.length === 0 ? null : gzip ? gzipSync(text) : Buffer.from(text, 'utf8'),
    removed,
  };
  ctx.plan.found.push({ key: info.key, records: removed });
  ctx.plan.edits.push(edit);
  return edit;
}

/** A JSON report with every string of the request replaced by `[erased]` (an object of the tenant's own, or shared). */
async function editJson(
  ctx: Ctx,
  info: ObjectInfo,
  own: boolean,
  body?: { bytes: Buffer; gzip: boolean },
): Promise<ObjectEdit | undefined> {
  ctx.plan.objectsScanned++;
  const { bytes, gzip } = body ?? (await readPlain(ctx.deps.store, info.key));
  const text = bytes.toString('utf8');
  if (ctx.matcher.everything) return undefined; // offboarding deletes the tenant's reports whole
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return editLines(ctx, info, true, (line) => textMatches(ctx.matcher, line, own).match);
  }
  let removed = 0;
  const redact = (v: unknown): unknown => {
    if (typeof v === 'string') {
      if (textMatches(ctx.matcher, v, true).match) {
        removed++;
        return '[erased]';
      }
      return v;
    }
    if (Array.isArray(v)) return v.map(redact);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redact(x)]));
    return v;
  };
  // a shared report (a run of every tenant) is redacted only where it names this tenant or no tenant
  if (!own && !recordMatches(ctx.matcher, value, true).match) return undefined;
  const redacted = redact(value);
  if (removed === 0) return undefined;
  const out = `${JSON.stringify(redacted, null, 2)}\n`;
  const edit: ObjectEdit = { key: info.key, etag: info.etag, body: gzip ? gzipSync(out) : Buffer.from(out, 'utf8'), removed };
  ctx.plan.found.push({ key: info.key, records: removed });
  ctx.plan.edits.push(edit);
  return edit;
}

/** Actions of a log file (a commit's lines, a checkpoint's rows) that name a match; offboarding: a live file of the tenant. */
async function scanLog(ctx: Ctx, info: ObjectInfo, kind: 'commit' | 'checkpoint'): Promise<number> {
  ctx.plan.objectsScanned++;
  const folder = `tenant_id=${ctx.matcher.tenant}/`;
  const judge = (action: Record<string, unknown>) => {
    if (ctx.matcher.everything) {
      const add = action.add as { path?: unknown } | null | undefined;
      return typeof add?.path === 'string' && decodeURIComponent(add.path).startsWith(folder);
    }
    return recordMatches(ctx.matcher, action, true).match;
  };
  if (kind === 'commit') {
    const { bytes } = await readPlain(ctx.deps.store, info.key);
    let count = 0;
    for (const line of splitLines(bytes.toString('utf8'))) {
      try {
        if (judge(JSON.parse(line) as Record<string, unknown>)) count++;
      } catch {
        if (textMatches(ctx.matcher, line, true).match) count++;
      }
    }
    return count;
  }
  return withLocalCopy(
    ctx.deps.store,
    info,
    ctx.folder,
    ctx.counter,
    async (file) => (await parquetRowsJson(ctx.deps.db, file)).filter(judge).length,
  );
}
