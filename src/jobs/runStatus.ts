/**
 * The status check a run ends with (src/jobs/endRun.ts), judged from the run's own results rather than by
 * re-planning the partitions it just compacted.
 */

import { errorMessage } from '../core/errors.js';
import { isStagingDataKey, runManifestKey, stagingPrefix } from '../core/staging/layout.js';
import type { PartitionResult } from '../engine/compactPartition.js';
import { readManifestAt } from '../lake/manifest.js';
import { DeltaTable, type TableSnapshot } from '../lake/table/deltaTable.js';
import { judged, type LakeStatus, lakeWide, type PartitionStatus, partitionStatus } from '../ops/status.js';
import { listAll, type ObjectStore } from '../ports/store/ObjectStore.js';

/** What a run's result tells the status check: the partition, its status and, once compacted, its run's figures. */
export type RunResultForStatus = Pick<
  PartitionResult,
  'tenant' | 'date' | 'status' | 'runId' | 'rowsRejected' | 'objectsRejected' | 'rowsWritten'
>;

/**
 * The status check a compaction run ends with, from the run's own results: a partition the run compacted is
 * judged by what its run wrote – the manifest it committed (read by its key, no table snapshot, no re-plan),
 * its parts (written and verified by that commit), its rejected lines (its quarantine file, not reviewed yet)
 * – and only its staging is listed again, to see what arrived since. A partition the run did not compact
 * (no staging, another run's lease) is judged from the table as `makoto-lake status` does; a failed one is
 * skipped (the run already counts it). A check the store refuses comes back as its error, never thrown: it
 * must not fail a run whose partitions committed.
 */
export async function statusAfterRun(
  store: ObjectStore,
  results: readonly RunResultForStatus[],
  at: number,
): Promise<{ checked: number; status: LakeStatus } | { checked: number; error: string }> {
  const checked = results.filter((r) => r.status !== 'failed');
  try {
    let snapshot: Promise<TableSnapshot> | undefined;
    const fromTable = (r: RunResultForStatus) => {
      snapshot ??= new DeltaTable(store, {}).snapshot();
      return snapshot.then((s) => partitionStatus(store, s, r.tenant, r.date, at));
    };
    const partitions: PartitionStatus[] = [];
    for (const r of checked) {
      const own = r.status === 'compacted' && r.runId ? await compactedStatus(store, r, at) : undefined;
      partitions.push(own ?? (await fromTable(r)));
    }
    return { checked: checked.length, status: await lakeWide(store, partitions, at) };
  } catch (error) {
    return { checked: checked.length, error: errorMessage(error) };
  }
}

/**
 * A partition the run compacted, from its result and the manifest its run committed; undefined when that
 * manifest is gone (then the partition is judged from the table).
 */
async function compactedStatus(store: ObjectStore, r: RunResultForStatus, now: number): Promise<PartitionStatus | undefined> {
  const manifest = await readManifestAt(store, runManifestKey(r.tenant, r.date, r.runId));
  if (!manifest) return undefined;
  const staging = (await listAll(store, stagingPrefix(r.tenant, r.date))).filter((o) => isStagingDataKey(o.key));
  return judged({
    tenant: r.tenant,
    date: r.date,
    now,
    staging,
    manifest,
    version: undefined,
    parts: { stale: 0, missing: 0, changed: 0, named: manifest.outputs.length },
    quarantined: r.rowsRejected + r.objectsRejected,
  });
}
