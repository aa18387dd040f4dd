import { parseTenantList } from '../core/config.js';
import { UsageError } from '../core/errors.js';
import { parseDate } from '../core/time/jst.js';
import { type CompactionJob, parseJob, parseRunRef, type RunRef } from './fanOut.js';

/** A manual compaction request, as the Lambda payload and the HTTP body carry it. */
export interface CompactionPayload {
  /** Undefined: today in JST + TARGET_DATE_OFFSET. */
  readonly date: string | undefined;
  /** Undefined: TENANT_ID. */
  readonly tenants: readonly string[] | 'all' | undefined;
  /** Also re-compact earlier days whose staging changed (LATE_DATA_LOOKBACK_DAYS). */
  readonly late: boolean;
  /** An intraday run (the INTRADAY_MINUTES schedule): today's changed partitions (runCompaction `intraday`). */
  readonly intraday?: boolean;
}

const FIELDS = ['target_date', 'tenants', 'late', 'intraday'];
const EXAMPLE = '{"target_date": "2025-08-11", "tenants": ["tenant-a"]}';

/**
 * Validates `{"target_date": "2025-08-11", "tenants": ["a", "b"], "late": true}` – the seed's Lambda
 * payload, also the body of the Azure `POST /api/compact`. Every field is optional; `tenants` may be "*"
 * (every tenant in staging). Throws UsageError naming the field and the bad value (→ 400 / usage error).
 */
export function parseCompactionPayload(body: unknown): CompactionPayload {
  if (body === undefined || body === null) return { date: undefined, tenants: undefined, late: false };
  if (typeof body !== 'object' || Array.isArray(body)) throw new UsageError(`the payload must be a JSON object like ${EXAMPLE}`);
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((k) => !FIELDS.includes(k));
  if (unknown.length > 0) throw new UsageError(`unknown field(s) ${unknown.join(', ')}; expected ${FIELDS.join(', ')}`);
  const { target_date: date, tenants, late, intraday } = fields;
  if (intraday !== undefined && typeof intraday !== 'boolean') {
    throw new UsageError(`intraday must be true or false, got ${JSON.stringify(intraday)}`);
  }
  if (intraday === true && (date !== undefined || late !== undefined)) {
    throw new UsageError('intraday compacts today (and yesterday before 02:00 JST): it takes no target_date and no late');
  }
  if (date !== undefined && typeof date !== 'string') {
    throw new UsageError(`target_date must be a string YYYY-MM-DD, got ${JSON.stringify(date)}`);
  }
  if (late !== undefined && typeof late !== 'boolean')
    throw new UsageError(`late must be true or false, got ${JSON.stringify(late)}`);
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
  return {
    date: date === undefined ? undefined : parseDate(date, 'target_date'),
    tenants: list,
    late: late === true,
    ...(intraday === true ? { intraday: true } : {}),
  };
}

/** One job of a fan-out run, as the Step Functions Map hands it to the compactor: `{"job": {…}, "run": {…}}`. */
export interface JobPayload {
  readonly job: CompactionJob;
  readonly run: RunRef;
}

/** Whether a payload is a fan-out job (it has a `job` field) rather than a manual compaction request. */
export function isJobPayload(body: unknown): boolean {
  return typeof body === 'object' && body !== null && !Array.isArray(body) && 'job' in body;
}

/**
 * Validates `{"job": {"tenant": "acme", "date": "2025-08-11", "stagingBytes": 1234},
 * "run": {"run_id": "20250811T170000000Z-1a2b3c4d", "target_date": "2025-08-11"}}`. Throws UsageError.
 */
export function parseJobPayload(body: unknown): JobPayload {
  if (!isJobPayload(body)) throw new UsageError('a job payload must be a JSON object with "job" and "run"');
  const { job, run, ...rest } = body as Record<string, unknown>;
  if (Object.keys(rest).length > 0) throw new UsageError(`unknown field(s) ${Object.keys(rest).join(', ')}; expected job, run`);
  return { job: parseJob(job), run: parseRunRef(run) };
}

/**
 * The nightly privacy step of a fan-out run (`{"privacy": true}`: the state machine's first task, before the
 * plan): re-applies recent erases, offboards again, applies LAKE_RETENTION_DAYS (src/jobs/nightlyPrivacy.ts).
 */
export function isPrivacyPayload(body: unknown): boolean {
  return typeof body === 'object' && body !== null && !Array.isArray(body) && 'privacy' in body;
}

/** Validates `{"privacy": true}`. Throws UsageError. */
export function parsePrivacyPayload(body: unknown): { readonly privacy: true } {
  if (!isPrivacyPayload(body)) throw new UsageError('a privacy payload must be a JSON object {"privacy": true}');
  const { privacy, ...rest } = body as Record<string, unknown>;
  if (Object.keys(rest).length > 0) throw new UsageError(`unknown field(s) ${Object.keys(rest).join(', ')}; expected privacy`);
  if (privacy !== true) throw new UsageError(`privacy must be true, got ${JSON.stringify(privacy)}`);
  return { privacy: true };
}
