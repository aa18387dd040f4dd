import { manifestKey } from '../core/staging/layout.js';
import type { ObjectStore } from '../ports/store/ObjectStore.js';
import { parseJsonBody, readJson, readJsonVersion } from '../ports/store/readJson.js';
import { DeltaTable, partitionFiles, TAG_MANIFEST } from './table/deltaTable.js';

/** An object a run read or wrote, as the manifest records it. */
export interface ManifestObject {
  key: string;
  size: number;
  etag: string;
}

/**
 * manifests/messages/tenant_id=<t>/dt=<d>/<run>.json (the previous release: `dt=<d>.json`): what one compaction
 * read and wrote, named by the tags of the files it committed to the table. Counts reconcile exactly:
 * `rows_read + rows_carried + deletes_remembered = rows_rejected (by rule, i.e. minus salvaged lines) +
 * duplicates_removed + versions_superseded + deletes_applied + rows_written`.
 */
export interface PartitionManifest {
  version: 1;
  run_id: string;
  tenant_id: string;
  dt: string;
  started_at: string;
  finished_at: string;
  /** Staging objects folded in (key + etag): the planner compares them with the staging listing. */
  inputs: { key: string; size: number; etag: string; last_modified: string }[];
  /** Staging rows DuckDB read. */
  rows_read: number;
  rows_rejected: number;
  objects_rejected: number;
  duplicates_removed: number;
  versions_superseded: number;
  /** Messages whose latest version is a user delete (= rows of the tombstone file written). */
  deletes_applied: number;
  rows_written: number;
  outputs: ManifestObject[];
  quarantine: string | null;
  settings: { compression: string; target_file_bytes: number };
  previous_run_id: string | null;
  /** Published rows read back from the previous run's parts (absent in manifests written before merging). */
  rows_carried?: number;
  /** Remembered deletes read from the previous run's tombstone file. */
  deletes_remembered?: number;
  /** The previous run's parts and tombstone file this run merged. */
  published_inputs?: ManifestObject[];
  /** The deletes this run remembers (key + etag + rows), or null when there are none. */
  tombstones?: (ManifestObject & { rows: number }) | null;
  /** Objects the previous manifest named that were gone when this run read the partition. */
  missing_inputs?: string[];
  /**
   * Present when the run read only the staging not folded in before (an intraday run): how many of `inputs`
   * earlier runs folded in and this one did not read again (their rows came from the published parts).
   */
  inputs_carried?: number;
  /** Present when the run was split across tasks: its K ranges and B buckets (docs/SCALING.md). */
  split?: { ranges: number; buckets: number };
}

/**
 * The manifest of the run that committed a partition's current files (from the table's current snapshot),
 * or undefined when the partition is not in the table.
 */
export async function readManifest(store: ObjectStore, tenant: string, date: string): Promise<PartitionManifest | undefined> {
  const snapshot = await new DeltaTable(store, {}).snapshot();
  const key = partitionFiles(snapshot, tenant, date)[0]?.tags?.[TAG_MANIFEST];
  return key ? readManifestAt(store, key) : undefined;
}

/** A run manifest by its key, or undefined when it is gone. A torn body is an UnreadableJsonError naming the key. */
export async function readManifestAt(store: ObjectStore, key: string): Promise<PartitionManifest | undefined> {
  return readJson<PartitionManifest>(store, key, 'manifest');
}

/** The previous release's per-partition manifest (converted to the table's version 0), or undefined. */
export async function readLegacyManifest(
  store: ObjectStore,
  tenant: string,
  date: string,
): Promise<PartitionManifest | undefined> {
  return (await readManifestVersion(store, tenant, date))?.manifest;
}

/**
 * The previous release's manifest with the ETag it was read at (the commit's condition), or undefined when there is none. The
 * ETag comes from a HEAD before the read: if the manifest is replaced in between, the conditional commit
 * fails rather than overwriting the newer one.
 */
export async function readManifestVersion(
  store: ObjectStore,
  tenant: string,
  date: string,
): Promise<{ manifest: PartitionManifest; etag: string } | undefined> {
  const read = await readJsonVersion<PartitionManifest>(store, manifestKey(tenant, date), 'manifest');
  return read && { manifest: read.value, etag: read.etag };
}

/** Parses a manifest body; a torn or foreign body is an error naming the key (never "no manifest"). */
export function parseManifest(key: string, body: Buffer): PartitionManifest {
  return parseJsonBody<PartitionManifest>(key, body, 'manifest');
}
