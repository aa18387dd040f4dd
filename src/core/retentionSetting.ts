/**
 * The `LAKE_RETENTION_DAYS` setting alone (no store, no table, no DuckDB): config imports it, and config is
 * bundled into every entry point, the stream Lambda included. Applying it is `retention.ts`.
 */
import { ConfigError } from './errors.js';
import { tenantIdProblem } from './tenant.js';
import { addDays, jstDate } from './time/jst.js';

/** `LAKE_RETENTION_DAYS`: days kept for every tenant (0 = for ever), and per-tenant overrides. */
export interface RetentionSetting {
  readonly days: number;
  readonly tenants: Readonly<Record<string, number>>;
}

export const KEEP_FOREVER: RetentionSetting = { days: 0, tenants: {} };

/**
 * Parses `LAKE_RETENTION_DAYS`: `365`, or `365,acme=90,globex=0` (a tenant's own number of days; 0 = for
 * ever). Unset or empty: keep every day.
 */
export function parseRetentionSetting(text: string | undefined, name = 'LAKE_RETENTION_DAYS'): RetentionSetting {
  if (text === undefined || text.trim() === '') return KEEP_FOREVER;
  const days = (value: string, what: string) => {
    if (!/^\d{1,5}$/.test(value.trim()))
      throw new ConfigError(`${name}: ${what} must be a whole number of days, got ${JSON.stringify(value)}`);
    return Number(value.trim());
  };
  const [first, ...rest] = text.split(',');
  const tenants: Record<string, number> = {};
  for (const part of rest) {
    const [tenant, value] = part.split('=');
    if (tenant === undefined || value === undefined || tenantIdProblem(tenant.trim()))
      throw new ConfigError(`${name}: expected TENANT=DAYS after the first comma, got ${JSON.stringify(part)}`);
    tenants[tenant.trim()] = days(value, `the days of ${tenant.trim()}`);
  }
  return { days: days(first ?? '', 'the default'), tenants };
}

/** The first day a tenant keeps (older partitions go), or undefined when it keeps every day. */
export function firstKeptDay(setting: RetentionSetting, tenant: string, now: number): string | undefined {
  const days = setting.tenants[tenant] ?? setting.days;
  return days > 0 ? addDays(jstDate(now), -days + 1) : undefined;
}
