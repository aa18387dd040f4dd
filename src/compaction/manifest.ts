import { manifestKey } from '../staging/layout.js';
import { ObjectNotFoundError } from '../store/errors.js';
import { getBytes, type ObjectStore } from '../store/ObjectStore.js';

/** manifests/messages/tenant_id=<t>/dt=<d>.json: what one compaction read and wrote. */
export interface PartitionManifest {
  version: 1;
  run_id: string;
  tenant_id: string;
  dt: string;
  started_at: string;
  finished_at: string;
  inputs: { key: string; size: number; etag: string; last_modified: string }[];
  rows_read: number;
  rows_rejected: number;
  objects_rejected: number;
  duplicates_removed: number;
  versions_superseded: number;
  deletes_applied: number;
  rows_written: number;
  outputs: { key: string; size: number; etag: string }[];
  quarantine: string | null;
  settings: { compression: string; target_file_bytes: number };
  previous_run_id: string | null;
}

/** The partition's manifest, or undefined when it was never compacted. */
export async function readManifest(store: ObjectStore, tenant: string, date: string): Promise<PartitionManifest | undefined> {
  try {
    return JSON.parse((await getBytes(store, manifestKey(tenant, date))).toString('utf8')) as PartitionManifest;
  } catch (error) {
    if (error instanceof ObjectNotFoundError) return undefined;
    throw error;
  }
}
