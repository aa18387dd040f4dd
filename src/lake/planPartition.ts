import { errorMessage } from '../core/errors.js';
import { analyticsPrefix, isStagingDataKey, stagingPrefix } from '../core/staging/layout.js';
import { listAll, type ObjectInfo, type ObjectStore } from '../ports/store/ObjectStore.js';
import { type PartitionManifest, readManifestAt } from './manifest.js';
import type { AddAction } from './table/actions.js';
import { partitionFiles, TAG_DELETES, TAG_MANIFEST, TAG_QUARANTINE, type TableSnapshot, tableKey } from './table/deltaTable.js';

/** What one partition's compaction will read, decided before anything is downloaded. */
export interface PartitionPlan {
  /** Staging data objects of the partition now that this run reads (an incremental plan: only those not folded in yet). */
  readonly staging: ObjectInfo[];
  /**
   * Staging objects the partition's current version already folded in (its manifest's inputs, same key and
   * ETag) that an incremental plan does not read again; absent for a full plan. The manifest lists them as inputs.
   */
  readonly folded?: ObjectInfo[];
  /** The table version the plan was read at: the commit goes after it (or fails on a conflict). */
  readonly readVersion: number;
  /** The partition's live files in that version. */
  readonly files: AddAction[];
  /** The manifest of the run that committed them (undefined: never compacted, or unreadable). */
  readonly manifest: PartitionManifest | undefined;
  readonly manifestKey: string | undefined;
  /** The partition as published: its live files that are there, as listed. */
  readonly published: ObjectInfo[];
  /** The remembered-deletes file the live files name. */
  readonly tombstones: ObjectInfo[];
  /** Objects the version names that are gone (they cannot be read; logged and recorded in the manifest). */
  readonly missing: string[];
}

export interface PlanPartitionOptions {
  /**
   * Read only the staging the current version has not folded in (an intraday run), where that gives the rows
   * a full re-fold would (incrementalFold); otherwise every staging object of the day.
   */
  readonly incremental?: boolean;
  /** What the run read already (its planner): a run manifest found here is not read again. */
  readonly reads?: RunReads;
  /**
   * The partition's staging as the run's planner listed it moments before (RunReads.staging), used instead of
   * listing again; undefined: list now.
   */
  readonly listed?: readonly ObjectInfo[];
}

/**
 * What one run's planner read that each partition's plan would read again moments later. Run manifests are
 * written once under a key unique to their run and never changed, so a body read earlier in the run is
 * exactly what a second GET returns. A staging listing can be a few seconds old by the time the partition is
 * planned: an object written since is folded in by the next run, as if it had arrived a moment later, and
 * an object gone since makes the compaction plan again from a fresh listing (compactPartition).
 */
export interface RunReads {
  /** Run manifests by key. */
  readonly manifests: Map<string, PartitionManifest>;
  /** The staging data objects of each partition the planner planned, by runReadsKey(tenant, date). */
  readonly staging: Map<string, ObjectInfo[]>;
}

/** An empty RunReads for one run. */
export const runReads = (): RunReads => ({ manifests: new Map(), staging: new Map() });

/** The key of a partition's listing in RunReads.staging. */
export const runReadsKey = (tenant: string, date: string) => `${tenant}/${date}`;

/**
 * The plan phase: lists the partition's staging and reads its state from the table snapshot — the live
 * files, and from their tags the run manifest and the remembered-deletes file. Called with the lease held.
 */
export async function planPartition(
  store: ObjectStore,
  snapshot: TableSnapshot,
  tenant: string,
  date: string,
  log?: (event: string, fields: Record<string, unknown>) => void,
  options: PlanPartitionOptions = {},
): Promise<PartitionPlan> {
  const staging = options.listed
    ? [...options.listed]
    : (await listAll(store, stagingPrefix(tenant, date))).filter((o) => isStagingDataKey(o.key));
  const files = partitionFiles(snapshot, tenant, date);
  const tags = files[0]?.tags ?? {};
  const manifestKey = tags[TAG_MANIFEST];
  const missing: string[] = [];
  let manifest: PartitionManifest | undefined;
  if (manifestKey) {
    try {
      manifest = options.reads?.manifests.get(manifestKey) ?? (await readManifestAt(store, manifestKey));
      if (!manifest) missing.push(manifestKey);
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      // a torn manifest costs only counts: the files come from the table
      log?.('manifest.unreadable', { tenant, date, error: errorMessage(error) });
    }
  }
  // a file the version names that is gone can't be read: its rows come back only from staging (recorded)
  const listed =
    files.length > 0 ? new Map((await listAll(store, analyticsPrefix(tenant, date))).map((o) => [o.key, o])) : new Map();
  const published: ObjectInfo[] = [];
  for (const key of files.map((a) => tableKey(a.path))) {
    const info = listed.get(key);
    if (info) published.push(info);
    else missing.push(key);
  }
  const tombstones: ObjectInfo[] = [];
  const deletes = tags[TAG_DELETES];
  if (deletes) {
    const info = await store.head(deletes);
    if (info) tombstones.push(info);
    else missing.push(deletes);
  }
  const plan = { staging, readVersion: snapshot.version, files, manifest, manifestKey, published, tombstones, missing };
  return options.incremental ? incrementalFold(plan, tags) : plan;
}

/**
 * The plan that reads only the staging objects the partition's manifest has not folded in (key and ETag),
 * with the published parts and remembered deletes: the published rows are the winners of what was folded,
 * so merging the new staging into them gives the rows a re-fold of the whole day would. Kept full when that
 * is not known to hold: no readable manifest, a file the version names is gone, or the version quarantined
 * lines (a re-fold quarantines them again; the next version must name them). Backfilled versions are
 * checked in the merge, which asks for a full plan then (FullFoldNeeded).
 */
function incrementalFold(plan: PartitionPlan, tags: Readonly<Record<string, string>>): PartitionPlan {
  if (!plan.manifest || plan.missing.length > 0 || tags[TAG_QUARANTINE]) return plan;
  const inputs = new Map(plan.manifest.inputs.map((i) => [i.key, i.etag]));
  const folded = plan.staging.filter((o) => inputs.get(o.key) === o.etag);
  if (folded.length === 0) return plan;
  return { ...plan, staging: plan.staging.filter((o) => inputs.get(o.key) !== o.etag), folded };
}

/** Whether there is anything to do: staging to fold in. */
export function planHasWork(plan: PartitionPlan): boolean {
  return plan.staging.length > 0;
}
