/**
 * Offboarding a tenant: every object of the tenant removed (table files through a table commit, the rest
 * deleted), its records taken out of the shared quarantine, and the tenant put on the refused list
 * (`erasures/offboarded.json`) that capture reads: new records of the tenant are quarantined with a reason
 * until `offboard --tenant T --reenable`.
 */

import { assertTenantId } from '../../core/tenant.js';
import { changeOffboarded } from '../../lake/offboarded.js';
import type { ObjectStore } from '../../ports/store/ObjectStore.js';
import { type EraseOutcome, eraseTenant } from './eraseTenant.js';
import type { EraseDeps } from './planErase.js';

/**
 * `offboard --tenant T`: refuses the tenant first (so nothing new arrives while its objects go), then erases
 * everything of it and deletes what is left under its prefixes; the receipt's verification scans it all again.
 */
export async function offboardTenant(deps: EraseDeps, tenant: string, options: { dryRun?: boolean } = {}): Promise<EraseOutcome> {
  assertTenantId(tenant);
  if (options.dryRun) return eraseTenant(deps, { tenant, everything: true, dryRun: true });
  const since = new Date((deps.now ?? Date.now)()).toISOString();
  await changeOffboarded(deps.store, (list) => {
    if (list.tenants[tenant]) return false;
    list.tenants[tenant] = { since };
    return true;
  });
  return eraseTenant(deps, { tenant, everything: true });
}

/** `offboard --tenant T --reenable`: capture and compaction accept the tenant again. Returns whether it was offboarded. */
export async function reenableTenant(store: ObjectStore, tenant: string): Promise<boolean> {
  assertTenantId(tenant);
  return changeOffboarded(store, (list) => {
    if (!list.tenants[tenant]) return false;
    delete list.tenants[tenant];
    return true;
  });
}
