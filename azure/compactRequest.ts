import { parseTenantList } from '../src/config.js';
import { UsageError } from '../src/errors.js';
import { parseDate } from '../src/time/jst.js';

export interface CompactRequest {
  /** Undefined: today in JST + TARGET_DATE_OFFSET, as the timer. */
  readonly date: string | undefined;
  /** Undefined: TENANT_ID. */
  readonly tenants: readonly string[] | 'all' | undefined;
}

const FIELDS = ['target_date', 'tenants'];

/**
 * Validates the body of `POST /api/compact`: `{"target_date": "2025-08-11", "tenants": ["a", "b"]}`.
 * Both fields are optional; `tenants` may also be "*" (every tenant in staging). Throws UsageError
 * (→ 400) with a message that names the field and the bad value.
 */
export function parseCompactRequest(body: unknown): CompactRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new UsageError('body must be a JSON object like {"target_date": "2025-08-11", "tenants": ["tenant-a"]}');
  }
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((k) => !FIELDS.includes(k));
  if (unknown.length > 0) throw new UsageError(`unknown field(s) ${unknown.join(', ')}; expected target_date, tenants`);
  const { target_date: date, tenants } = fields;
  if (date !== undefined && typeof date !== 'string') {
    throw new UsageError(`target_date must be a string YYYY-MM-DD, got ${JSON.stringify(date)}`);
  }
  let list: readonly string[] | 'all' | undefined;
  if (tenants === '*') list = 'all';
  else if (tenants !== undefined) {
    if (!Array.isArray(tenants) || tenants.length === 0 || !tenants.every((t) => typeof t === 'string')) {
      throw new UsageError(`tenants must be a non-empty array of tenant ids or "*", got ${JSON.stringify(tenants)}`);
    }
    const invalid = tenants.find((t) => /[,*]/.test(t));
    if (invalid !== undefined) throw new UsageError(`tenants: invalid tenant id ${JSON.stringify(invalid)}`);
    try {
      list = [...new Set(parseTenantList(tenants.join(','), 'tenants') as readonly string[])];
    } catch (error) {
      throw new UsageError((error as Error).message, { cause: error });
    }
  }
  return { date: date === undefined ? undefined : parseDate(date, 'target_date'), tenants: list };
}
