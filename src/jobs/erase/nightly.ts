/**
 * What the nightly run does for privacy before it compacts (src/jobs/runCompaction.ts):
 * - re-applies every erase of the last ERASE_STANDING_DAYS days (from its receipt's hashes): a record of an
 *   erased person captured after the erase (a late delivery, the app's own delete of the source item) is
 *   erased the next night, before it is compacted;
 * - offboards again a tenant on the refused list that has objects (captured before capture saw the list);
 * - drops the partitions past `LAKE_RETENTION_DAYS` (retention.ts).
 * A failure is logged and never fails the run: the partitions are committed, the next night tries again.
 */
import { errorMessage } from '../../core/errors.js';
import { ERASURE_ROOT } from '../../core/staging/layout.js';
import { offboardedTenants } from '../../lake/offboarded.js';
import { listAll } from '../../ports/store/ObjectStore.js';
import { eraseTenant, reapplyReceipt } from './eraseTenant.js';
import type { EraseDeps } from './planErase.js';
import { readReceipt } from './receipt.js';
import { applyRetention, type RetentionSetting } from './retention.js';
import { tenantObjects } from './tenantObjects.js';

/** How long an erase keeps being re-applied each night. */
export const ERASE_STANDING_DAYS = 7;

export interface NightlyErasureReport {
  /** Receipts re-applied that found something again. */
  readonly reapplied: string[];
  readonly offboarded: string[];
  readonly retention: string[];
  readonly errors: string[];
}

export async function nightlyErasures(deps: EraseDeps, retention: RetentionSetting, now: number): Promise<NightlyErasureReport> {
  const report: NightlyErasureReport = { reapplied: [], offboarded: [], retention: [], errors: [] };
  const attempt = async (what: string, work: () => Promise<void>) => {
    try {
      await work();
    } catch (error) {
      report.errors.push(`${what}: ${errorMessage(error)}`);
      deps.log?.('erase.nightly_failed', { what, error: errorMessage(error) });
    }
  };
  await attempt('standing erasures', async () => {
    for (const info of await listAll(deps.store, ERASURE_ROOT)) {
      if (!/^erasures\/tenant_id=[^/]+\/[^/]+\.json$/.test(info.key)) continue;
      const receipt = await readReceipt(deps.store, info.key);
      if (receipt.kind !== 'erase' || Date.parse(receipt.started_at) < now - ERASE_STANDING_DAYS * 86_400_000) continue;
      if (await reapplyReceipt(deps, info.key)) report.reapplied.push(info.key);
    }
  });
  await attempt('offboarded tenants', async () => {
    for (const tenant of await offboardedTenants(deps.store, now, true)) {
      if ((await tenantObjects(deps.store, tenant)).length === 0) continue;
      await eraseTenant(deps, { tenant, everything: true });
      report.offboarded.push(tenant);
    }
  });
  await attempt('retention', async () => {
    report.retention.push(...(await applyRetention(deps, retention, now)).partitions);
  });
  return report;
}
