/**
 * The nightly planner: which partitions must be compacted again, at any age, found from listings.
 * (The file keeps its name from the fixed look-back it replaces; callers import findLatePartitions.)
 */
import {
  ANALYTICS_ROOT,
  isStagingDataKey,
  MANIFEST_ROOT,
  manifestIndexKey,
  PENDING_DELETES_ROOT,
  partitionDateOf,
  STAGING_ROOT,
  stagingTenantPrefix,
} from '../core/staging/layout.js';
import { tenantIdProblem } from '../core/tenant.js';
import { addDays } from '../core/time/jst.js';
import { mapLimit } from '../core/util/concurrency.js';
import { UnreadableJsonError } from '../ports/store/errors.js';
import { listAll, type ObjectInfo, type ObjectStore } from '../ports/store/ObjectStore.js';
import { readJson } from '../ports/store/readJson.js';
import { readManifestAt } from './manifest.js';
import { type PlacedDeletes, type PlaceOptions, pendingByTenant, placePendingDeletes } from './pendingDeletes.js';
import { type RunReads, runReadsKey } from './planPartition.js';
import { DeltaTable, TAG_MANIFEST, type TableSnapshot } from './table/deltaTable.js';

/** A partition that must be compacted, why, and how much staging it holds (for fanning jobs out). */
export interface StalePartition {
  readonly tenant: string;
  readonly date: string;
  readonly reason: string;
  readonly stagingBytes: number;
}

export interface PlanOptions {
  /** Only days on or after this one (the optional LATE_DATA_LOOKBACK_DAYS bound); undefined: every day. */
  readonly earliest?: string;
  /** The table version to plan against (default: the current one, read once). */
  readonly snapshot?: TableSnapshot;
  /** Where deletes that name no day are looked up (pendingDeletes.ts; default: a small DuckDB, the OS temp folder). */
  readonly placement?: PlaceOptions;
  /** Told what placing each tenant's pending deletes did (when it had any). */
  readonly onPlaced?: (tenant: string, placed: PlacedDeletes) => void;
  /**
   * Where the planner keeps what it read for the partitions it plans (the run manifests and the partition's
   * staging listing), so each compaction planned moments later does not read them again.
   */
  readonly reads?: RunReads;
}

/**
 * The late-data lookback of a run: none (0) unless it is a nightly (`late`) run, whose bound is
 * LATE_DATA_LOOKBACK_DAYS — 0, the default, meaning no bound (Infinity: every partition that differs from its
 * manifest). One rule for every driver of a run.
 */
export function lateLookbackDays(lateDataLookbackDays: number, late = true): number {
  return late ? lateDataLookbackDays || Number.POSITIVE_INFINITY : 0;
}

/**
 * Days other than `targetDate` that the nightly run must compact again (the caller compacts the target day
 * itself): see planCompaction. `lookbackDays` 0 or Infinity means no bound; a bound only skips checks, it
 * can never lose data (every compaction merges into what is published).
 */
export async function findLatePartitions(
  store: ObjectStore,
  tenants: readonly string[] | 'all',
  targetDate: string,
  lookbackDays: number,
): Promise<StalePartition[]> {
  const bounded = Number.isFinite(lookbackDays) && lookbackDays > 0;
  const jobs = await planCompaction(store, tenants, bounded ? { earliest: addDays(targetDate, -lookbackDays) } : {});
  return jobs.filter((job) => job.date !== targetDate);
}

/**
 * Every partition of the tenants that must be compacted: its staging holds an object (key + ETag) that the
 * run manifest of its current table version has not folded in, at any age (staging retention bounds how
 * many days have staging), or it is not in the table yet. A crash can no longer leave a partition half
 * published (the table commit is the only step readers see), so days without staging need nothing.
 *
 * First, the deletes that name no day and wait under `pending/deletes/` (one LIST for all tenants) are
 * placed in the days the table holds their messages in (placePendingDeletes), so those days are planned too.
 * Then the tenants are checked PLAN_CONCURRENCY at a time; the jobs keep the tenants' order.
 *
 * Cost: the table snapshot (read once for all tenants), and per tenant one LIST of its staging, one GET of
 * the planner's cache (`manifests/messages/tenant_id=<t>/_index.json`: run manifest key → inputs, kept for
 * days with staging that need no compaction), one GET per run manifest the cache does not hold, and one PUT
 * of the cache when it changed. Run manifests are immutable, so a cached entry is exact; a missing or wrong
 * one costs a GET. A day planned for compaction keeps the entry it had: its compaction commits a new run
 * manifest, so a new entry would be stale at once (an hourly run would write every busy tenant's cache for
 * nothing).
 *
 * @example
 * const jobs = await planCompaction(store, ['acme']);
 * // [{ tenant: 'acme', date: '2025-03-01', reason: '1 staging object newer than run …', stagingBytes: 512 }]
 */
export async function planCompaction(
  store: ObjectStore,
  tenants: readonly string[] | 'all',
  options: PlanOptions = {},
): Promise<StalePartition[]> {
  const tenantIds = tenants === 'all' ? await lakeTenants(store) : [...new Set(tenants)];
  const snapshot = options.snapshot ?? (await new DeltaTable(store, {}).snapshot());
  // deletes that name no day are placed first, so the days they land in are planned tonight
  const pending = pendingByTenant(await listAll(store, PENDING_DELETES_ROOT));
  for (const tenant of tenantIds) {
    const objects = pending.get(tenant);
    if (objects) options.onPlaced?.(tenant, await placePendingDeletes(store, snapshot, tenant, objects, options.placement));
  }
  // each tenant's check is a few requests one after another; checked one tenant at a time, 1,000 tenants at
  // 20 ms a request waited a minute before the first compaction (docs/PERFORMANCE.md 8)
  const perTenant = await mapLimit(tenantIds, PLAN_CONCURRENCY, (tenant) => planTenant(store, snapshot, tenant, options));
  return perTenant.flat();
}

/** Tenants the planner checks at a time (each check is a LIST and a GET or two, and sometimes a PUT). */
export const PLAN_CONCURRENCY = 16;

/** What the planner caches of one run manifest. */
interface IndexEntry {
  readonly key: string;
  readonly run_id: string;
  /** Staging inputs (key → etag). */
  readonly inputs: Record<string, string>;
}

interface ManifestIndex {
  readonly version: 2;
  readonly manifests: Record<string, IndexEntry>;
}

async function planTenant(
  store: ObjectStore,
  snapshot: TableSnapshot,
  tenant: string,
  options: PlanOptions,
): Promise<StalePartition[]> {
  const staging = byDate(await listAll(store, stagingTenantPrefix(tenant)), isStagingDataKey);
  const manifests = new Map<string, string>();
  for (const add of snapshot.files.values()) {
    const key = add.tags?.[TAG_MANIFEST];
    if (add.partitionValues.tenant_id === tenant && add.partitionValues.dt && key) manifests.set(add.partitionValues.dt, key);
  }
  const cached = await readIndex(store, tenant);
  const next: Record<string, IndexEntry> = {};
  const jobs: StalePartition[] = [];
  for (const date of [...staging.keys()].sort()) {
    const objects = staging.get(date) ?? [];
    const manifestKey = manifests.get(date);
    const previous = cached.manifests[date];
    if (options.earliest !== undefined && date < options.earliest) {
      if (previous && previous.key === manifestKey) next[date] = previous;
      continue;
    }
    const job = (reason: string) => {
      jobs.push({ tenant, date, reason, stagingBytes: objects.reduce((n, o) => n + o.size, 0) });
      options.reads?.staging.set(runReadsKey(tenant, date), objects);
    };
    if (!manifestKey) {
      job(`never compacted: ${objects.length} staging objects`);
      continue;
    }
    let entry = previous?.key === manifestKey ? previous : undefined;
    if (!entry) {
      try {
        const body = await readManifestAt(store, manifestKey);
        if (!body) {
          job(`the run manifest ${manifestKey} is gone`);
          continue;
        }
        options.reads?.manifests.set(manifestKey, body);
        entry = { key: manifestKey, run_id: body.run_id, inputs: Object.fromEntries(body.inputs.map((i) => [i.key, i.etag])) };
      } catch (error) {
        if (!(error instanceof UnreadableJsonError)) throw error;
        job(error.message);
        continue;
      }
    }
    const changed = objects.filter((o) => entry.inputs[o.key] !== o.etag).length;
    if (changed > 0) {
      job(`${changed} staging object${changed === 1 ? '' : 's'} newer than run ${entry.run_id}`);
      if (previous) next[date] = previous;
    } else next[date] = entry;
  }
  if (JSON.stringify(next) !== JSON.stringify(cached.manifests)) {
    const index: ManifestIndex = { version: 2, manifests: next };
    await store.putBytes(manifestIndexKey(tenant), `${JSON.stringify(index)}\n`, { contentType: 'application/json' });
  }
  return jobs;
}

/** The objects of a tenant listing grouped by their dt= day (only keys `keep` accepts). */
function byDate(objects: readonly ObjectInfo[], keep: (key: string) => boolean): Map<string, ObjectInfo[]> {
  const days = new Map<string, ObjectInfo[]>();
  for (const o of objects) {
    const date = partitionDateOf(o.key);
    if (!date || !keep(o.key)) continue;
    const day = days.get(date);
    if (day) day.push(o);
    else days.set(date, [o]);
  }
  return days;
}

/** The planner's cache, or an empty one when it is missing or unreadable (it is only a cache). */
async function readIndex(store: ObjectStore, tenant: string): Promise<ManifestIndex> {
  try {
    const index = await readJson<ManifestIndex>(store, manifestIndexKey(tenant), 'planner index');
    return index?.version === 2 && typeof index.manifests === 'object' && index.manifests !== null
      ? index
      : { version: 2, manifests: {} };
  } catch (error) {
    if (error instanceof UnreadableJsonError) return { version: 2, manifests: {} };
    throw error;
  }
}

/** Tenants with staging or with compacted partitions (valid tenant ids only). */
export async function lakeTenants(store: ObjectStore): Promise<string[]> {
  const tenants = new Set<string>();
  for (const root of [STAGING_ROOT, MANIFEST_ROOT, ANALYTICS_ROOT]) {
    for await (const folder of store.listFolders(root)) {
      const tenant = folder.startsWith('tenant_id=') ? folder.slice('tenant_id='.length) : '';
      if (tenant && !tenantIdProblem(tenant)) tenants.add(tenant);
    }
  }
  return [...tenants].sort();
}
