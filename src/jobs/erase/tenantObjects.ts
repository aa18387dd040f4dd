/** Every object of one tenant under every prefix of the layout (docs/ARCHITECTURE.md), but its receipts. */
import {
  analyticsTenantPrefix,
  CHECKPOINT_ROOT,
  COMPACTION_QUARANTINE_ROOT,
  LOCK_ROOT,
  manifestTenantPrefix,
  pendingDeleteTenantPrefix,
  RUNS_ROOT,
  splitWorkTenantPrefix,
  stagingTenantPrefix,
  TOMBSTONE_ROOT,
} from '../../core/staging/layout.js';
import { assertTenantId } from '../../core/tenant.js';
import { listAll, type ObjectInfo, type ObjectStore } from '../../ports/store/ObjectStore.js';

/** The prefixes that hold only the tenant's objects. */
export function tenantPrefixes(tenant: string): string[] {
  const t = assertTenantId(tenant);
  return [
    stagingTenantPrefix(t),
    analyticsTenantPrefix(t),
    manifestTenantPrefix(t),
    `${TOMBSTONE_ROOT}tenant_id=${t}/`,
    `${COMPACTION_QUARANTINE_ROOT}tenant_id=${t}/`,
    `${LOCK_ROOT}tenant_id=${t}/`,
    splitWorkTenantPrefix(t),
    pendingDeleteTenantPrefix(t),
  ];
}

/** The tenant's objects: its own prefixes, its backfill checkpoints and its results in run folders. */
export async function tenantObjects(store: ObjectStore, tenant: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for (const prefix of tenantPrefixes(tenant)) out.push(...(await listAll(store, prefix)));
  const marker = `/tenant_id=${assertTenantId(tenant)}/`;
  for (const root of [CHECKPOINT_ROOT, RUNS_ROOT])
    out.push(...(await listAll(store, root)).filter((o) => o.key.includes(marker)));
  return out;
}
