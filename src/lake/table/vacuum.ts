/**
 * Vacuum by reference difference: deletes the files that no table version inside the retention references,
 * and only those older than the retention (a file younger than that may belong to a commit in progress).
 * What a version references: its data files, and the objects its files' tags name (a run's manifest and
 * remembered-deletes file, which live beside the table). The whole plan is made before anything is deleted:
 * any read error aborts the vacuum with nothing deleted. Commit files go only once a checkpoint covers them
 * and they are older than the log retention.
 */

import { ObjectNotFoundError } from '../../ports/store/errors.js';
import { getBytes, listAll, type ObjectInfo, type ObjectStore } from '../../ports/store/ObjectStore.js';
import { LAST_CHECKPOINT_NAME, type LastCheckpoint, LOG_FOLDER, logFileVersion } from './actions.js';
import {
  DEFAULT_LOG_RETENTION_MS,
  DEFAULT_RETENTION_MS,
  type DeltaTable,
  TABLE_ROOT,
  type TableSnapshot,
  tableKey,
} from './deltaTable.js';

export interface VacuumOptions {
  /** Files referenced by a version committed within this many ms stay (default 7 days, Delta's default). */
  readonly retainMs?: number;
  /** List what would be deleted, delete nothing. */
  readonly dryRun?: boolean;
  readonly now?: number;
  /**
   * Folders outside the table whose files only the table's tags reference (run manifests, remembered
   * deletes) or nothing references once old (abandoned work): swept by the same rule.
   */
  readonly sideRoots?: readonly string[];
  /** Keys under the side roots that are never vacuumed (caches that are rebuilt from the log). */
  readonly keep?: (key: string) => boolean;
  readonly logRetentionMs?: number;
}

export interface VacuumReport {
  readonly version: number;
  readonly dryRun: boolean;
  /** Keys deleted (or, in a dry run, that would be). */
  readonly deleted: string[];
  readonly deletedBytes: number;
  /** Log files (commits and checkpoints covered by a later checkpoint) deleted or that would be. */
  readonly logFilesDeleted: string[];
  /** Files kept because a retained version references them. */
  readonly referenced: number;
}

export async function vacuum(store: ObjectStore, table: DeltaTable, options: VacuumOptions = {}): Promise<VacuumReport> {
  const now = options.now ?? Date.now();
  const retainMs = options.retainMs ?? DEFAULT_RETENTION_MS;
  const snapshot = await table.snapshot();
  const referenced = referencedKeys(snapshot, now - retainMs);
  const candidates: ObjectInfo[] = [];
  for (const o of await listAll(store, TABLE_ROOT)) if (!o.key.startsWith(`${TABLE_ROOT}${LOG_FOLDER}`)) candidates.push(o);
  for (const root of options.sideRoots ?? []) candidates.push(...(await listAll(store, root)));
  const doomed = candidates.filter(
    (o) => !referenced.has(o.key) && !(options.keep?.(o.key) ?? false) && o.lastModified.getTime() < now - retainMs,
  );
  const logFiles = await expiredLogFiles(store, now - (options.logRetentionMs ?? DEFAULT_LOG_RETENTION_MS));
  if (!options.dryRun) {
    for (const o of doomed) await store.delete(o.key);
    for (const o of logFiles) await store.delete(o.key);
  }
  return {
    version: snapshot.version,
    dryRun: options.dryRun ?? false,
    deleted: doomed.map((o) => o.key),
    deletedBytes: doomed.reduce((n, o) => n + o.size, 0),
    logFilesDeleted: logFiles.map((o) => o.key),
    referenced: referenced.size,
  };
}

/** Every key a version committed since `since` references: live files, files removed since then, and their tags' keys. */
export function referencedKeys(snapshot: TableSnapshot, since: number): Set<string> {
  const keys = new Set<string>();
  const note = (path: string, tags: Record<string, string> | null | undefined) => {
    keys.add(tableKey(path));
    for (const value of Object.values(tags ?? {})) if (value.includes('/')) keys.add(value);
  };
  for (const add of snapshot.files.values()) note(add.path, add.tags);
  for (const remove of snapshot.removed.values()) {
    if ((remove.deletionTimestamp ?? now()) >= since) note(remove.path, remove.tags);
  }
  return keys;
}

const now = () => Date.now();

/** Commits and checkpoints older than the newest checkpoint and than `before` (a checkpoint covers them). */
async function expiredLogFiles(store: ObjectStore, before: number): Promise<ObjectInfo[]> {
  let hint: LastCheckpoint;
  try {
    hint = JSON.parse((await getBytes(store, `${TABLE_ROOT}${LAST_CHECKPOINT_NAME}`)).toString('utf8')) as LastCheckpoint;
  } catch (error) {
    if (error instanceof ObjectNotFoundError || error instanceof SyntaxError) return [];
    throw error;
  }
  if (!Number.isSafeInteger(hint?.version)) return [];
  const log = await listAll(store, `${TABLE_ROOT}${LOG_FOLDER}`);
  if (!log.some((o) => logFileVersion(o.key)?.version === hint.version && logFileVersion(o.key)?.kind === 'checkpoint'))
    return [];
  return log.filter((o) => {
    const v = logFileVersion(o.key);
    return v !== undefined && v.version < hint.version && o.lastModified.getTime() < before;
  });
}
