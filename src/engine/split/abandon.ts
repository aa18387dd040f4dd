/** Abandoning a split that cannot finish: its work removed, its lease released, nothing published. */
import { LeaseLostError } from '../../core/errors.js';
import { splitWorkPrefix } from '../../core/staging/layout.js';
import { adoptLease, type Lease } from '../../lake/partitionLease.js';
import { type CompactionDeps, emptyResult, type PartitionResult } from '../compactPartition.js';
import { assertRef, type SplitMode, type SplitRef } from './splitRef.js';
import { leaseOptions } from './task.js';
import { deleteAll } from './workPrefix.js';

/**
 * A split that cannot finish: removes its work prefix, releases the lease (if it still holds it), returns
 * status 'failed' with the reason. Publishes nothing and leaves the published partition as it is.
 */
export async function abandonSplit(
  deps: CompactionDeps,
  ref: SplitRef,
  reason: string,
  mode: SplitMode = 'tasks',
): Promise<PartitionResult> {
  assertRef(ref);
  const now = deps.now ?? Date.now;
  const started = now();
  let lease: Lease | undefined;
  try {
    // without the run's abort: a split stopped by SIGTERM is still cleaned up rather than left holding the day
    lease = await adoptLease(deps.store, ref.tenant, ref.date, ref.splitId, leaseOptions({ ...deps, signal: undefined }, mode));
  } catch (error) {
    // lapsed and taken over, or gone: the work prefix is still ours to remove, the lease is not
    if (!(error instanceof LeaseLostError)) throw error;
  }
  try {
    await deleteAll(deps.store, splitWorkPrefix(ref.tenant, ref.date, ref.splitId));
  } finally {
    await lease?.release();
  }
  deps.log?.('split.abandoned', { tenant: ref.tenant, date: ref.date, runId: ref.splitId, reason });
  return emptyResult({ tenant: ref.tenant, date: ref.date, runId: ref.splitId }, 'failed', now() - started, {}, reason);
}
