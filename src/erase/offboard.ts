/**
 * Offboarding a tenant: every object of the tenant removed (table files through a table commit, the rest
 * deleted), its records taken out of the shared quarantine, and the tenant put on the refused list
 * (`erasures/offboarded.json`) that capture reads: new records of the tenant are quarantined with a reason
 * until `offboard --tenant T --reenable`.
 */
import { ObjectNotFoundError, PreconditionFailedError } from '../store/errors.js';
import { getBytes, type ObjectStore } from '../store/ObjectStore.js';
import { assertTenantId } from '../tenant.js';
import type { EraseOutcome } from './eraseTenant.js';
import type { EraseDeps } from './planErase.js';
import { ERASURE_ROOT } from './receipt.js';

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
async function changeList(store: ObjectStore, change: (list: OffboardedList) => boolean): Promise<boolean> {
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

/**
 * `offboard --tenant T`: refuses the tenant first (so nothing new arrives while its objects go), then erases
 * everything of it and deletes what is left under its prefixes; the receipt's verification scans it all again.
 */
export async function offboardTenant(deps: EraseDeps, tenant: string, options: { dryRun?: boolean } = {}): Promise<EraseOutcome> {
  assertTenantId(tenant);
  // loaded here, not at the top: capture imports this module for the refused list alone, and the erase brings
  // the table and DuckDB, which the stream Lambda's bundle does not carry
  const { eraseTenant } = await import('./eraseTenant.js');
  if (options.dryRun) return eraseTenant(deps, { tenant, everything: true, dryRun: true });
  const since = new Date((deps.now ?? Date.now)()).toISOString();
  await changeList(deps.store, (list) => {
    if (list.tenants[tenant]) return false;
    list.tenants[tenant] = { since };
    return true;
  });
  return eraseTenant(deps, { tenant, everything: true });
}

/** `offboard --tenant T --reenable`: capture and compaction accept the tenant again. Returns whether it was offboarded. */
export async function reenableTenant(store: ObjectStore, tenant: string): Promise<boolean> {
  assertTenantId(tenant);
  return changeList(store, (list) => {
    if (!list.tenants[tenant]) return false;
    delete list.tenants[tenant];
    return true;
  });
}
