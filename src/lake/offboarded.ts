/**
 * The tenants capture and compaction refuse (`erasures/offboarded.json`): written by `offboard`
 * (src/jobs/erase/offboard.ts), read by every capture path, which quarantines an offboarded tenant's records
 * with a reason until `offboard --tenant T --reenable`.
 */

import { ERASURE_ROOT } from '../core/staging/layout.js';
import { ObjectNotFoundError, PreconditionFailedError } from '../ports/store/errors.js';
import { getBytes, type ObjectStore } from '../ports/store/ObjectStore.js';

/** The refused list: `{"tenants": {"<t>": {"since": ISO}}}`. */
export const OFFBOARDED_KEY = `${ERASURE_ROOT}offboarded.json`;

interface OffboardedList {
  tenants: Record<string, { since: string }>;
}

/** How long a process trusts the list it read (capture reads it at most once a minute per store). */
export const OFFBOARDED_CACHE_MS = 60_000;
const cache = new WeakMap<ObjectStore, { at: number; tenants: ReadonlySet<string> }>();

/** The offboarded tenants (cached per store object for OFFBOARDED_CACHE_MS; `fresh` reads the list again). */
export async function offboardedTenants(
  store: ObjectStore,
  now: number = Date.now(),
  fresh = false,
): Promise<ReadonlySet<string>> {
  const hit = cache.get(store);
  if (!fresh && hit && now - hit.at < OFFBOARDED_CACHE_MS) return hit.tenants;
  const { list } = await readList(store);
  const tenants = new Set(Object.keys(list.tenants));
  cache.set(store, { at: now, tenants });
  return tenants;
}

/** The quarantine reason of a record of an offboarded tenant. */
export const offboardedReason = (tenant: string) =>
  `tenant ${tenant} is offboarded: its records are refused until makoto-lake offboard --tenant ${tenant} --reenable`;

async function readList(store: ObjectStore): Promise<{ list: OffboardedList; etag: string | undefined }> {
  const info = await store.head(OFFBOARDED_KEY);
  if (!info) return { list: { tenants: {} }, etag: undefined };
  try {
    const list = JSON.parse((await getBytes(store, OFFBOARDED_KEY)).toString('utf8')) as OffboardedList;
    return { list: { tenants: list?.tenants ?? {} }, etag: info.etag };
  } catch (error) {
    if (error instanceof ObjectNotFoundError) return { list: { tenants: {} }, etag: undefined };
    throw error;
  }
}

/** Changes the list with a compare-and-swap on its version (two operators at once both land). */
export async function changeOffboarded(store: ObjectStore, change: (list: OffboardedList) => boolean): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    const { list, etag } = await readList(store);
    if (!change(list)) return false;
    try {
      await store.putBytes(OFFBOARDED_KEY, `${JSON.stringify(list, null, 2)}\n`, {
        contentType: 'application/json',
        ...(etag ? { ifMatch: etag } : { ifNoneMatch: '*' as const }),
      });
      cache.set(store, { at: Date.now(), tenants: new Set(Object.keys(list.tenants)) });
      return true;
    } catch (error) {
      if (!(error instanceof PreconditionFailedError) || attempt >= 5) throw error;
    }
  }
}
