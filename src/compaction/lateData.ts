/**
 * The nightly planner: which partitions must be compacted again, at any age, found from listings.
 * (The file keeps its name from the fixed look-back it replaces; callers import findLatePartitions.)
 */
import {
  ANALYTICS_ROOT,
  analyticsTenantPrefix,
  isStagingDataKey,
  isVisibleKey,
  MANIFEST_ROOT,
  manifestIndexKey,
  manifestTenantPrefix,
  partitionDateOf,
  STAGING_ROOT,
  stagingTenantPrefix,
} from '../staging/layout.js';
import { ObjectNotFoundError } from '../store/errors.js';
import { getBytes, listAll, type ObjectInfo, type ObjectStore } from '../store/ObjectStore.js';
import { tenantIdProblem } from '../tenant.js';
import { addDays } from '../time/jst.js';
import { type ManifestObject, parseManifest } from './manifest.js';
import { sameObjects } from './planPartition.js';

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
 * Every partition of the tenants that must be compacted: (a) its staging holds an object (key + ETag) its
 * manifest has not folded in, at any age (staging retention bounds how many days have staging), or it was
 * never compacted; (b) its analytics folder is not what its manifest says (a stale extra part, a missing
 * part, a part whose ETag or size differ: a crash mid-upload, or between the manifest and the cleanup).
 *
 * Cost per tenant: one LIST each of its staging, analytics and manifest folders (paged), one GET of the
 * planner's cache (`manifests/messages/tenant_id=<t>/_index.json`: manifest → ETag, outputs and, for days
 * with staging, inputs), one GET per manifest whose ETag the cache does not hold, and one PUT of the cache
 * when it changed. The cache is only a cache: a missing or wrong entry costs a GET. The job list depends only
 * on the store's content.
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
  const jobs: StalePartition[] = [];
  for (const tenant of tenantIds) jobs.push(...(await planTenant(store, tenant, options)));
  return jobs;
}

/** What the planner caches of one manifest. */
interface IndexEntry {
  readonly etag: string;
  readonly run_id: string;
  readonly outputs: ManifestObject[];
  /** Staging inputs (key → etag), kept only while the day has staging. */
  readonly inputs?: Record<string, string>;
}

interface ManifestIndex {
  readonly version: 1;
  readonly manifests: Record<string, IndexEntry>;
}

async function planTenant(store: ObjectStore, tenant: string, options: PlanOptions): Promise<StalePartition[]> {
  const staging = byDate(await listAll(store, stagingTenantPrefix(tenant)), isStagingDataKey);
  const parts = byDate(await listAll(store, analyticsTenantPrefix(tenant)), isVisibleKey);
  const manifests = new Map<string, ObjectInfo>();
  for (const o of await listAll(store, manifestTenantPrefix(tenant))) {
    const date = partitionDateOf(o.key);
    if (date && o.key.endsWith('.json')) manifests.set(date, o);
  }
  const cached = await readIndex(store, tenant);
  const next: Record<string, IndexEntry> = {};
  const jobs: StalePartition[] = [];
  const days = [...new Set([...staging.keys(), ...parts.keys(), ...manifests.keys()])].sort();
  for (const date of days) {
    const objects = staging.get(date) ?? [];
    const folder = parts.get(date) ?? [];
    const manifest = manifests.get(date);
    const previous = cached.manifests[date];
    if (options.earliest !== undefined && date < options.earliest) {
      if (manifest && previous?.etag === manifest.etag) next[date] = previous;
      continue;
    }
    const job = (reason: string) => jobs.push({ tenant, date, reason, stagingBytes: objects.reduce((n, o) => n + o.size, 0) });
    if (!manifest) {
      if (objects.length > 0) job(`never compacted: ${objects.length} staging objects`);
      else if (folder.length > 0) job(`parts without a manifest: ${folder.length}`);
      continue;
    }
    let entry = previous;
    if (entry?.etag !== manifest.etag || (objects.length > 0 && entry.inputs === undefined)) {
      try {
        const body = parseManifest(manifest.key, await getBytes(store, manifest.key));
        entry = {
          etag: manifest.etag,
          run_id: body.run_id,
          outputs: body.outputs,
          inputs: Object.fromEntries(body.inputs.map((i) => [i.key, i.etag])),
        };
      } catch (error) {
        if (error instanceof ObjectNotFoundError) continue; // replaced since the listing: the next night sees it
        if (!(error instanceof SyntaxError)) throw error;
        job(error.message);
        continue;
      }
    }
    const { inputs, ...kept } = entry;
    next[date] = objects.length > 0 ? entry : kept;
    const reasons: string[] = [];
    const changed = objects.filter((o) => inputs?.[o.key] !== o.etag).length;
    if (changed > 0) reasons.push(`${changed} staging object${changed === 1 ? '' : 's'} newer than run ${entry.run_id}`);
    if (!sameObjects(folder, entry.outputs))
      reasons.push(`folder differs from run ${entry.run_id}: ${folderDifference(folder, entry.outputs)}`);
    if (reasons.length > 0) job(reasons.join('; '));
  }
  if (JSON.stringify(next) !== JSON.stringify(cached.manifests)) {
    const index: ManifestIndex = { version: 1, manifests: next };
    await store.putBytes(manifestIndexKey(tenant), `${JSON.stringify(index)}\n`, { contentType: 'application/json' });
  }
  return jobs;
}

/** "1 stale part, 1 missing part, 1 changed part" (only the non-zero ones). */
export function folderDifference(folder: readonly ObjectInfo[], outputs: readonly ManifestObject[]): string {
  const listed = new Map(folder.map((o) => [o.key, o]));
  const named = new Set(outputs.map((o) => o.key));
  const stale = folder.filter((o) => !named.has(o.key)).length;
  const missing = outputs.filter((o) => !listed.has(o.key)).length;
  const changed = outputs.filter((o) => {
    const l = listed.get(o.key);
    return l !== undefined && (l.etag !== o.etag || l.size !== o.size);
  }).length;
  const counted = (n: number, what: string) => (n > 0 ? [`${n} ${what} part${n === 1 ? '' : 's'}`] : []);
  return [...counted(stale, 'stale'), ...counted(missing, 'missing'), ...counted(changed, 'changed')].join(', ');
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
    const index = JSON.parse((await getBytes(store, manifestIndexKey(tenant))).toString('utf8')) as ManifestIndex;
    return index?.version === 1 && typeof index.manifests === 'object' && index.manifests !== null
      ? index
      : { version: 1, manifests: {} };
  } catch (error) {
    if (error instanceof ObjectNotFoundError || error instanceof SyntaxError) return { version: 1, manifests: {} };
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
