/**
 * The audit record of one erase or offboard, `erasures/tenant_id=<t>/<erase id>.json`: when, what was asked
 * (salted hashes only), counts per kind of object, the table versions created, what could not be removed
 * and the verification. Written `in-progress` before the first change (so a re-run after a crash resumes the
 * same erase with the message ids it had derived) and replaced by the final record at the end.
 */

import { UsageError } from '../../core/errors.js';
import { ERASURE_ROOT } from '../../core/staging/layout.js';
import { assertTenantId } from '../../core/tenant.js';
import { newRunId } from '../../core/time/runId.js';
import { ObjectNotFoundError } from '../../ports/store/errors.js';
import { getBytes, listAll, type ObjectStore } from '../../ports/store/ObjectStore.js';

export const erasureTenantPrefix = (tenant: string) => `${ERASURE_ROOT}tenant_id=${assertTenantId(tenant)}/`;
export const receiptKey = (tenant: string, eraseId: string) => {
  if (!/^[A-Za-z0-9-]{1,40}$/.test(eraseId)) throw new UsageError(`invalid erase id ${JSON.stringify(eraseId)}`);
  return `${erasureTenantPrefix(tenant)}${eraseId}.json`;
};

/** `20250811T170000123Z-1a2b3c4d`: when, and unique — a run id (newRunId). */
export const newEraseId = newRunId;

export interface EraseCounts {
  /** Table partitions the erase commit rewrote. */
  partitions: number;
  /** Live data files read (not pruned by their statistics) and rewritten. */
  data_files_read: number;
  data_files_pruned: number;
  data_files_rewritten: number;
  /** Rows removed from the live data files. */
  rows: number;
  /** Files no longer in the current version (replaced parts, remembered deletes, compaction quarantine) that held a match: deleted. */
  old_files: number;
  staging_objects: number;
  staging_lines: number;
  tombstone_rows: number;
  compaction_quarantine_records: number;
  ingest_quarantine_records: number;
  poison_documents: number;
  split_work_folders: number;
  /** Reports (runs, manifests, caches, locks, backfill checkpoints) from which a matching value was removed. */
  reports: number;
  /** Log files (commits, checkpoints) older than the erase's checkpoint, deleted. */
  log_files: number;
  /** Objects deleted outright (offboard: everything else the tenant had). */
  objects_deleted: number;
}

export const zeroCounts = (): EraseCounts => ({
  partitions: 0,
  data_files_read: 0,
  data_files_pruned: 0,
  data_files_rewritten: 0,
  rows: 0,
  old_files: 0,
  staging_objects: 0,
  staging_lines: 0,
  tombstone_rows: 0,
  compaction_quarantine_records: 0,
  ingest_quarantine_records: 0,
  poison_documents: 0,
  split_work_folders: 0,
  reports: 0,
  log_files: 0,
  objects_deleted: 0,
});

/** An object that still holds a match, and how many records. */
export interface Remaining {
  readonly key: string;
  readonly records: number;
  readonly reason?: string;
}

export interface Verification {
  readonly at: string;
  readonly objects_scanned: number;
  readonly remaining: Remaining[];
  readonly ok: boolean;
}

export interface EraseReceipt {
  readonly version: 1;
  readonly erase_id: string;
  readonly kind: 'erase' | 'offboard';
  readonly tenant_id: string;
  status: 'in-progress' | 'done' | 'incomplete';
  readonly started_at: string;
  finished_at: string | null;
  /** Hashes are sha256(`<salt>:<identifier>`), hex. */
  readonly request: { salt: string; senders: string[]; conversations: string[]; messages: string[] };
  /** Message ids found to belong to the request (a sender's messages), hashed likewise. */
  derived_messages: string[];
  counts: EraseCounts;
  table_versions: number[];
  verification: Verification | null;
  /** The nightly runs that found records of the request again (captured after the erase) and erased them. */
  reapplied?: { at: string; counts: EraseCounts; table_versions: number[] }[];
  /** Where the store keeps object versions or backups: what this erase did about them. */
  object_versions: string;
}

export async function writeReceipt(store: ObjectStore, receipt: EraseReceipt): Promise<string> {
  const key = receiptKey(receipt.tenant_id, receipt.erase_id);
  await store.putBytes(key, `${JSON.stringify(receipt, null, 2)}\n`, { contentType: 'application/json' });
  return key;
}

export async function readReceipt(store: ObjectStore, key: string): Promise<EraseReceipt> {
  let body: Buffer;
  try {
    body = await getBytes(store, key);
  } catch (error) {
    if (error instanceof ObjectNotFoundError) throw new UsageError(`no receipt ${key} in ${store.location}`, { cause: error });
    throw error;
  }
  try {
    const receipt = JSON.parse(body.toString('utf8')) as EraseReceipt;
    if (receipt.version !== 1 || typeof receipt.request?.salt !== 'string') throw new SyntaxError('not an erase receipt');
    return receipt;
  } catch (error) {
    throw new UsageError(`${key} is not an erase receipt: ${(error as Error).message}`, { cause: error });
  }
}

/** The tenant's receipts still `in-progress` (a crashed erase, resumed by the same request). */
export async function pendingReceipts(store: ObjectStore, tenant: string): Promise<EraseReceipt[]> {
  const out: EraseReceipt[] = [];
  for (const info of await listAll(store, erasureTenantPrefix(tenant))) {
    if (!info.key.endsWith('.json')) continue;
    const receipt = await readReceipt(store, info.key).catch(() => undefined);
    if (receipt?.status === 'in-progress') out.push(receipt);
  }
  return out;
}
