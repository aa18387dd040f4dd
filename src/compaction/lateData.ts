import { isStagingDataKey, STAGING_ROOT, stagingPrefix } from '../staging/layout.js';
import { listAll, type ObjectStore } from '../store/ObjectStore.js';
import { tenantIdProblem } from '../tenant.js';
import { addDays } from '../time/jst.js';
import { readManifest } from './manifest.js';

/** A partition that must be compacted again, and why. */
export interface StalePartition {
  readonly tenant: string;
  readonly date: string;
  readonly reason: string;
}

/**
 * Days before `targetDate` (up to `lookbackDays`) whose staging changed after their last compaction:
 * stream lag near midnight, Lambda retries, edits or deletes of older messages and replays all land in
 * an older day's staging. The check compares the staging listing with the manifest's inputs (key and
 * version), so it costs listings and one small manifest read per day with staging, never a download.
 */
export async function findLatePartitions(
  store: ObjectStore,
  tenants: readonly string[] | 'all',
  targetDate: string,
  lookbackDays: number,
): Promise<StalePartition[]> {
  const window = new Set(Array.from({ length: lookbackDays }, (_, i) => addDays(targetDate, -(i + 1))));
  if (window.size === 0) return [];
  const tenantIds = tenants === 'all' ? await stagingTenants(store) : tenants;
  const stale: StalePartition[] = [];
  for (const tenant of tenantIds) {
    const days: string[] = [];
    for await (const folder of store.listFolders(`${STAGING_ROOT}tenant_id=${tenant}/`)) {
      const date = folder.startsWith('dt=') ? folder.slice(3) : '';
      if (window.has(date)) days.push(date);
    }
    for (const date of days.sort()) {
      const objects = (await listAll(store, stagingPrefix(tenant, date))).filter((o) => isStagingDataKey(o.key));
      if (objects.length === 0) continue;
      const manifest = await readManifest(store, tenant, date);
      if (!manifest) {
        stale.push({ tenant, date, reason: `never compacted: ${objects.length} staging objects` });
        continue;
      }
      const seen = new Map(manifest.inputs.map((i) => [i.key, i.etag]));
      const changed = objects.filter((o) => seen.get(o.key) !== o.etag);
      if (changed.length > 0) {
        stale.push({
          tenant,
          date,
          reason: `${changed.length} staging object${changed.length === 1 ? '' : 's'} newer than run ${manifest.run_id}`,
        });
      }
    }
  }
  return stale;
}

async function stagingTenants(store: ObjectStore): Promise<string[]> {
  const tenants: string[] = [];
  for await (const folder of store.listFolders(STAGING_ROOT)) {
    const tenant = folder.startsWith('tenant_id=') ? folder.slice('tenant_id='.length) : '';
    if (tenant && !tenantIdProblem(tenant)) tenants.push(tenant);
  }
  return tenants;
}
