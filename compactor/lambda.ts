/**
 * Lambda entry point of the nightly compaction (template.yaml: `lambda.handler`, built from
 * compactor/lambda.ts). Thin: event → (date, tenants) → runCompaction → summaryJson.
 *
 * - EventBridge schedule (`cron(0 17 * * ? *)` = 02:00 JST): the day TARGET_DATE_OFFSET from the
 *   schedule's own time (so a late retry of the 02:00 event still compacts the same day), for TENANT_ID.
 * - Manual: `aws lambda invoke --payload '{"target_date": "2025-08-11", "tenants": ["acme"]}'`; both
 *   fields optional (`"tenants": "*"` = every tenant found in staging).
 *
 * A failed tenant never stops the others; once all finished the invocation fails (so alarms fire) with
 * the whole summary in its error message.
 */
import { availableParallelism } from 'node:os';
import { summaryJson } from '../src/app/report.js';
import { runCompaction } from '../src/app/runCompaction.js';
import { type Config, type Env, loadConfig, parseTenantList } from '../src/config.js';
import { CompactionError, UsageError } from '../src/errors.js';
import type { ObjectStore } from '../src/store/ObjectStore.js';
import { parseDate, targetDate } from '../src/time/jst.js';
import { createStore } from '../stores/createStore.js';

/** The manual payload (the seed's `{"target_date": ...}`, plus tenants). */
export interface CompactorPayload {
  readonly target_date?: string;
  readonly tenants?: readonly string[] | string;
}

export type CompactionSummaryJson = ReturnType<typeof summaryJson>;

export interface CompactorDeps {
  readonly config: Config;
  readonly store: ObjectStore;
  readonly now?: () => number;
  readonly log?: (line: string) => void;
}

/** A compaction run in which at least one tenant failed; `summary` is what the run returned. */
export class CompactionRunFailedError extends CompactionError {}

/** What an invocation asks for: the date (undefined = default) and tenants (undefined = TENANT_ID). */
export function compactionRequest(
  event: unknown,
  config: Config,
  now: number,
): { date: string; tenants: readonly string[] | 'all' } {
  if (event === null || event === undefined) return { date: targetDate(now, config.targetDateOffset), tenants: config.tenants };
  if (typeof event !== 'object' || Array.isArray(event)) {
    throw new UsageError(`the payload must be a JSON object like {"target_date": "2025-08-11"}, got ${JSON.stringify(event)}`);
  }
  const e = event as Record<string, unknown>;
  if (e.source === 'aws.events' || e['detail-type'] === 'Scheduled Event') {
    const at = typeof e.time === 'string' ? Date.parse(e.time) : Number.NaN;
    return { date: targetDate(Number.isFinite(at) ? at : now, config.targetDateOffset), tenants: config.tenants };
  }
  const unknown = Object.keys(e).filter((k) => k !== 'target_date' && k !== 'tenants');
  if (unknown.length > 0) {
    throw new UsageError(`unknown payload field(s) ${unknown.join(', ')}; expected target_date and/or tenants`);
  }
  const date =
    e.target_date === undefined
      ? targetDate(now, config.targetDateOffset)
      : typeof e.target_date === 'string'
        ? parseDate(e.target_date, 'target_date')
        : failUsage(`target_date must be a string YYYY-MM-DD, got ${JSON.stringify(e.target_date)}`);
  let tenants: readonly string[] | 'all' = config.tenants;
  if (typeof e.tenants === 'string') tenants = parseTenantList(e.tenants, 'tenants');
  else if (Array.isArray(e.tenants) && e.tenants.length > 0 && e.tenants.every((t) => typeof t === 'string')) {
    tenants = parseTenantList(e.tenants.join(','), 'tenants');
    if (tenants === 'all') throw new UsageError("tenants: '*' must be given alone, as a string");
  } else if (e.tenants !== undefined) {
    failUsage(`tenants must be a non-empty list of tenant ids or "*", got ${JSON.stringify(e.tenants)}`);
  }
  return { date, tenants };
}

/** Runs the compaction an event asks for; throws CompactionRunFailedError after all tenants finished if any failed. */
export async function runCompactorEvent(event: unknown, deps: CompactorDeps): Promise<CompactionSummaryJson> {
  const now = deps.now ?? Date.now;
  const log = deps.log ?? ((line: string) => console.log(line));
  const { date, tenants } = compactionRequest(event, deps.config, now());
  log(JSON.stringify({ message: 'compaction started', target_date: date, tenants, store: deps.store.location }));
  const summary = await runCompaction({
    store: deps.store,
    config: deps.config,
    date,
    tenants,
    now,
    onResult: (r) =>
      log(JSON.stringify({ message: 'tenant finished', tenant_id: r.tenant, dt: r.date, status: r.status, error: r.error })),
  });
  const json = summaryJson(summary);
  log(JSON.stringify({ message: 'compaction finished', ...json }));
  if (!summary.ok) {
    const failed = json.tenants.filter((t) => t.status === 'failed' || t.status === 'locked').map((t) => t.tenant_id);
    throw new CompactionRunFailedError(
      `compaction of ${date} failed for ${failed.length} of ${json.totals.tenants} tenants (${failed.join(', ')}): ${JSON.stringify(json)}`,
      { context: { date, failed } },
    );
  }
  return json;
}

/** Lambda gives one vCPU per 1,769 MB of memory, up to six. */
const MB_PER_VCPU = 1769;

/**
 * The config as the compactor runs it on Lambda: unless DUCKDB_MEMORY_LIMIT / DUCKDB_THREADS / TEMP_DIR
 * are set, DuckDB gets most of the function's memory (the Node runtime and SDK keep the rest), a thread per
 * vCPU, and its work directories under /tmp (the only writable place).
 */
export function lambdaConfig(env: Env, cpus = availableParallelism()): Config {
  const config = loadConfig(env);
  const memoryMb = Number(env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE);
  if (!Number.isInteger(memoryMb) || memoryMb <= 0) return config;
  const set = (name: string) => (env[name] ?? '').trim() !== '';
  const duckdbMb = Math.max(128, Math.min(Math.floor(memoryMb * 0.75), memoryMb - 256));
  return {
    ...config,
    tempDir: set('TEMP_DIR') ? config.tempDir : '/tmp',
    duckdb: {
      memoryLimit: set('DUCKDB_MEMORY_LIMIT') ? config.duckdb.memoryLimit : `${duckdbMb}MB`,
      threads: set('DUCKDB_THREADS') ? config.duckdb.threads : Math.max(1, Math.min(cpus, 6, Math.ceil(memoryMb / MB_PER_VCPU))),
    },
  };
}

/** The Lambda handler: config from the function's environment, the store it selects, one run. */
export async function handler(event: unknown): Promise<CompactionSummaryJson> {
  const config = lambdaConfig(process.env);
  return runCompactorEvent(event, { config, store: await createStore(config) });
}

function failUsage(message: string): never {
  throw new UsageError(message);
}
