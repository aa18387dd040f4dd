import { errorMessage } from '../errors.js';
import { analyticsPrefix, isStagingDataKey, isVisibleKey, manifestKey, stagingPrefix } from '../staging/layout.js';
import { listAll, type ObjectInfo, type ObjectStore } from '../store/ObjectStore.js';
import { type ManifestObject, type PartitionManifest, readManifestVersion } from './manifest.js';

/** What one partition's compaction will read, decided before anything is downloaded. */
export interface PartitionPlan {
  /** Staging data objects of the partition now. */
  readonly staging: ObjectInfo[];
  /** The current manifest and the ETag the commit is conditional on (undefined: none, or unreadable). */
  readonly manifest: PartitionManifest | undefined;
  readonly manifestEtag: string | undefined;
  /** The partition as published: the parts the manifest names (or, with no readable manifest, every visible .parquet). */
  readonly published: ObjectInfo[];
  /** The tombstone file the manifest names. */
  readonly tombstones: ObjectInfo[];
  /** Objects the manifest names that are gone (they cannot be read; logged and recorded in the manifest). */
  readonly missing: string[];
  /** Everything under the partition's analytics folder now. */
  readonly folder: ObjectInfo[];
  /** Whether the folder's visible files are exactly the manifest's outputs (key, size, etag). */
  readonly folderMatches: boolean;
}

/**
 * The plan phase: lists the partition's staging and analytics folder and reads its manifest (with the
 * ETag the commit will be conditional on). Called with the lease held.
 */
export async function planPartition(
  store: ObjectStore,
  tenant: string,
  date: string,
  log?: (event: string, fields: Record<string, unknown>) => void,
): Promise<PartitionPlan> {
  const staging = (await listAll(store, stagingPrefix(tenant, date))).filter((o) => isStagingDataKey(o.key));
  const folder = await listAll(store, analyticsPrefix(tenant, date));
  let current: Awaited<ReturnType<typeof readManifestVersion>>;
  let manifestEtag: string | undefined;
  try {
    current = await readManifestVersion(store, tenant, date);
    manifestEtag = current?.etag;
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    // a torn manifest: every visible part is read as published (the merge removes duplicates), and the
    // commit replaces that version only
    log?.('manifest.unreadable', { tenant, date, error: errorMessage(error) });
    manifestEtag = (await store.head(manifestKey(tenant, date)))?.etag;
  }
  const manifest = current?.manifest;
  const visible = folder.filter((o) => isVisibleKey(o.key));
  const byKey = new Map(folder.map((o) => [o.key, o]));
  const missing: string[] = [];
  const present = (key: string) => {
    const info = byKey.get(key);
    if (!info) missing.push(key);
    return info;
  };
  const published = manifest
    ? manifest.outputs.map((o) => present(o.key)).filter((o): o is ObjectInfo => o !== undefined)
    : visible.filter((o) => o.key.endsWith('.parquet'));
  const tombstones: ObjectInfo[] = [];
  if (manifest?.tombstones) {
    const info = await store.head(manifest.tombstones.key);
    if (info) tombstones.push(info);
    else missing.push(manifest.tombstones.key);
  }
  return {
    staging,
    manifest,
    manifestEtag,
    published,
    tombstones,
    missing,
    folder,
    folderMatches: manifest !== undefined ? sameObjects(visible, manifest.outputs) : visible.length === 0,
  };
}

/** Whether there is anything to do: staging to fold in, or a folder that is not what its manifest says. */
export function planHasWork(plan: PartitionPlan): boolean {
  return plan.staging.length > 0 || !plan.folderMatches;
}

/** Whether a listing holds exactly these objects (same keys, sizes and ETags). */
export function sameObjects(listed: readonly ObjectInfo[], expected: readonly ManifestObject[]): boolean {
  if (listed.length !== expected.length) return false;
  const want = new Map(expected.map((o) => [o.key, o]));
  return listed.every((o) => {
    const w = want.get(o.key);
    return w !== undefined && w.etag === o.etag && w.size === o.size;
  });
}
