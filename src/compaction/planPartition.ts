import { errorMessage } from '../errors.js';
import { analyticsPrefix, isStagingDataKey, stagingPrefix } from '../staging/layout.js';
import { listAll, type ObjectInfo, type ObjectStore } from '../store/ObjectStore.js';
import type { AddAction } from '../table/actions.js';
import { partitionFiles, TAG_DELETES, TAG_MANIFEST, type TableSnapshot, tableKey } from '../table/deltaTable.js';
import { type PartitionManifest, readManifestAt } from './manifest.js';

/** What one partition's compaction will read, decided before anything is downloaded. */
export interface PartitionPlan {
  /** Staging data objects of the partition now. */
  readonly staging: ObjectInfo[];
  /** The table version the plan was read at: the commit goes after it (or fails on a conflict). */
  readonly readVersion: number;
  /** The partition's live files in that version. */
  readonly files: AddAction[];
  /** The manifest of the run that committed them (undefined: never compacted, or unreadable). */
  readonly manifest: PartitionManifest | undefined;
  readonly manifestKey: string | undefined;
  /** The partition as published: its live files that are there, as listed. */
  readonly published: ObjectInfo[];
  /** The remembered-deletes file the live files name. */
  readonly tombstones: ObjectInfo[];
  /** Objects the version names that are gone (they cannot be read; logged and recorded in the manifest). */
  readonly missing: string[];
}

/**
 * The plan phase: lists the partition's staging and reads its state from the table snapshot — the live
 * files, and from their tags the run manifest and the remembered-deletes file. Called with the lease held.
 */
export async function planPartition(
  store: ObjectStore,
  snapshot: TableSnapshot,
  tenant: string,
  date: string,
  log?: (event: string, fields: Record<string, unknown>) => void,
): Promise<PartitionPlan> {
  const staging = (await listAll(store, stagingPrefix(tenant, date))).filter((o) => isStagingDataKey(o.key));
  const files = partitionFiles(snapshot, tenant, date);
  const tags = files[0]?.tags ?? {};
  const manifestKey = tags[TAG_MANIFEST];
  const missing: string[] = [];
  let manifest: PartitionManifest | undefined;
  if (manifestKey) {
    try {
      manifest = await readManifestAt(store, manifestKey);
      if (!manifest) missing.push(manifestKey);
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      // a torn manifest costs only counts: the files come from the table
      log?.('manifest.unreadable', { tenant, date, error: errorMessage(error) });
    }
  }
  // a file the version names that is gone can't be read: its rows come back only from staging (recorded)
  const listed =
    files.length > 0 ? new Map((await listAll(store, analyticsPrefix(tenant, date))).map((o) => [o.key, o])) : new Map();
  const published: ObjectInfo[] = [];
  for (const key of files.map((a) => tableKey(a.path))) {
    const info = listed.get(key);
    if (info) published.push(info);
    else missing.push(key);
  }
  const tombstones: ObjectInfo[] = [];
  const deletes = tags[TAG_DELETES];
  if (deletes) {
    const info = await store.head(deletes);
    if (info) tombstones.push(info);
    else missing.push(deletes);
  }
  return { staging, readVersion: snapshot.version, files, manifest, manifestKey, published, tombstones, missing };
}

/** Whether there is anything to do: staging to fold in. */
export function planHasWork(plan: PartitionPlan): boolean {
  return plan.staging.length > 0;
}
