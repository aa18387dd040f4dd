/**
 * Retention by policy (`LAKE_RETENTION_DAYS`): partitions whose JST day is older than N days (per tenant when
 * overridden) are removed from the table by one commit in the nightly run — the same path as any replaced
 * part: the files go with the vacuum once the time-travel retention has passed — and their staging is
 * deleted so the late-data planner does not compact them back. Each run that drops anything writes a receipt
 * line under `erasures/retention/`.
 */

import { firstKeptDay, KEEP_FOREVER, parseRetentionSetting, type RetentionSetting } from '../../core/retentionSetting.js';
import { ERASURE_ROOT, parseStagingKey, STAGING_ROOT } from '../../core/staging/layout.js';
import { assertTenantId, tenantIdProblem } from '../../core/tenant.js';
import { lakeTable, tableMetadata } from '../../lake/lakeTable.js';
import { type RemoveAction, removeOf } from '../../lake/table/actions.js';
import { partitionId } from '../../lake/table/deltaTable.js';
import { listAll } from '../../ports/store/ObjectStore.js';
import type { EraseDeps } from './planErase.js';
import { newEraseId } from './receipt.js';

export { firstKeptDay, KEEP_FOREVER, parseRetentionSetting, type RetentionSetting };

export interface RetentionReport {
  /** `tenant_id=<t>/dt=<d>` of every partition dropped. */
  readonly partitions: string[];
  readonly version: number | undefined;
  readonly stagingObjects: number;
  readonly receipt: string | undefined;
}

export async function applyRetention(deps: EraseDeps, setting: RetentionSetting, now: number): Promise<RetentionReport> {
  if (setting.days === 0 && Object.values(setting.tenants).every((d) => d === 0))
    return { partitions: [], version: undefined, stagingObjects: 0, receipt: undefined };
  const table = lakeTable({ store: deps.store, db: deps.db, workDirectory: deps.workDirectory });
  const snapshot = await table.snapshot();
  const expired = (tenant: string | null | undefined, date: string | null | undefined) => {
    if (!tenant || !date || tenantIdProblem(tenant)) return false;
    const first = firstKeptDay(setting, tenant, now);
    return first !== undefined && date < first;
  };
  const removes: RemoveAction[] = [];
  const partitions = new Set<string>();
  for (const add of snapshot.files.values()) {
    if (!expired(add.partitionValues.tenant_id, add.partitionValues.dt)) continue;
    partitions.add(partitionId(add.partitionValues));
    removes.push(removeOf(add, now));
  }
  let version: number | undefined;
  if (removes.length > 0) {
    version = await table.commit(
      {
        partitions: [...partitions],
        adds: [],
        removes,
        txns: [],
        info: { operation: 'DELETE', operationParameters: { mode: 'Retention', partitions: partitions.size } },
      },
      snapshot.version,
      () => tableMetadata(now),
    );
  }
  // staging of expired days: the late-data planner would otherwise compact them back into the table
  let stagingObjects = 0;
  for (const info of await listAll(deps.store, STAGING_ROOT)) {
    const at = parseStagingKey(info.key);
    if (at && expired(at.tenant, at.date)) {
      await deps.store.delete(info.key);
      stagingObjects++;
    }
  }
  if (partitions.size === 0 && stagingObjects === 0) return { partitions: [], version, stagingObjects, receipt: undefined };
  const receipt = `${ERASURE_ROOT}retention/${newEraseId(now)}.json`;
  const dropped = [...partitions].sort();
  await deps.store.putBytes(
    receipt,
    `${JSON.stringify({ version: 1, kind: 'retention', at: new Date(now).toISOString(), setting, partitions: dropped, table_version: version ?? null, staging_objects: stagingObjects }, null, 2)}\n`,
    { contentType: 'application/json' },
  );
  deps.log?.('erase.retention', { partitions: dropped.length, version, stagingObjects });
  return { partitions: dropped, version, stagingObjects, receipt };
}

export { assertTenantId };
