import { STAGING_ROOT } from '../../core/staging/layout.js';

/** One partition that received staging: the days a redrive or backfill touched, to compact and check. */
export interface StagedDay {
  readonly tenant: string;
  readonly dt: string;
}

const STAGING_PARTITION = /^tenant_id=([^/]+)\/dt=(\d{4}-\d{2}-\d{2})\//;

/**
 * The (tenant, day) partitions of the staging objects among `keys` (quarantine and other keys are left
 * out), each once, ordered by day then tenant.
 *
 * @example
 * stagedDays(['staging/messages/tenant_id=acme/dt=2025-08-11/ddb-…_1_2.ndjson.gz']) // [{ tenant: 'acme', dt: '2025-08-11' }]
 */
export function stagedDays(keys: readonly string[]): StagedDay[] {
  const found = new Map<string, StagedDay>();
  for (const key of keys) {
    if (!key.startsWith(STAGING_ROOT)) continue;
    const match = STAGING_PARTITION.exec(key.slice(STAGING_ROOT.length));
    if (!match) continue;
    const [, tenant, dt] = match as unknown as [string, string, string];
    found.set(`${dt}/${tenant}`, { tenant, dt });
  }
  return [...found.values()].sort((a, b) => a.dt.localeCompare(b.dt) || a.tenant.localeCompare(b.tenant));
}

/**
 * What to print after a command that staged: the partitions, and the `compact` command per day that folds
 * them in now (the nightly run takes them otherwise). Empty when nothing was staged.
 */
export function stagedDaysLines(days: readonly StagedDay[]): string[] {
  if (days.length === 0) return [];
  const byDay = new Map<string, string[]>();
  for (const d of days) byDay.set(d.dt, [...(byDay.get(d.dt) ?? []), d.tenant]);
  return [
    `staged ${days.length} tenant-day${days.length === 1 ? '' : 's'}: ${days.map((d) => `${d.tenant} ${d.dt}`).join(', ')}`,
    ...[...byDay].map(([dt, tenants]) => `  compact them with: npx makoto-lake compact ${dt} ${tenants.join(',')}`),
  ];
}
