/** The split's start: the lease, the plan of its inputs cut into ranges, written once for every task. */
import { errorMessage, PartitionLockedError } from '../../core/errors.js';
import { assertSplitShape } from '../../core/splitShape.js';
import { splitPlanKey } from '../../core/staging/layout.js';
import { assertTenantId } from '../../core/tenant.js';
import { parseDate } from '../../core/time/jst.js';
import { newRunId } from '../../core/time/runId.js';
import { currentSnapshot } from '../../lake/lakeTable.js';
import { acquireLease, type Lease } from '../../lake/partitionLease.js';
import { type PartitionPlan, planHasWork, planPartition } from '../../lake/planPartition.js';
import type { ObjectInfo } from '../../ports/store/ObjectStore.js';
import { type CompactionDeps, emptyResult, type PartitionResult } from '../compactPartition.js';
import type { SplitMode, SplitRef, SplitShape } from './splitRef.js';
import { leaseOptions } from './task.js';
import type { JsonInfo, JsonPlan, SplitInput, SplitPlanFile } from './workPrefix.js';

/**
 * Takes the partition lease for the whole split (under splitId), plans the inputs once (staging + published
 * parts + tombstones, sorted; assigned to K ranges), writes the plan under compaction-work/…; returns the
 * ref, or a finished PartitionResult (status 'no-input' / 'locked') when there is nothing to split.
 *
 * @example
 * const started = await startSplit(deps, 'acme', '2025-08-11', { ranges: 4, buckets: 4 });
 * if ('ref' in started) { for (let i = 0; i < 4; i++) await mapRange(deps, started.ref, i); ... }
 */
export async function startSplit(
  deps: CompactionDeps,
  tenantInput: string,
  dateInput: string,
  shape: SplitShape,
  mode: SplitMode = 'tasks',
): Promise<{ ref: SplitRef } | { result: PartitionResult }> {
  const tenant = assertTenantId(tenantInput);
  const date = parseDate(dateInput);
  const { ranges, buckets } = assertSplitShape(shape);
  const now = deps.now ?? Date.now;
  const started = now();
  const splitId = newRunId(started);
  const base = { tenant, date, runId: splitId };
  let lease: Lease;
  try {
    lease = await acquireLease(deps.store, tenant, date, splitId, leaseOptions(deps, mode));
  } catch (error) {
    if (!(error instanceof PartitionLockedError)) throw error;
    return { result: emptyResult(base, 'locked', now() - started, {}, errorMessage(error)) };
  }
  let handedOver = false;
  try {
    const plan = await planPartition(
      deps.store,
      await currentSnapshot(deps, { tenant_id: tenant, dt: date }),
      tenant,
      date,
      deps.log,
    );
    if (!planHasWork(plan)) return { result: emptyResult(base, 'no-input', now() - started, {}) };
    if (plan.missing.length > 0) deps.log?.('partition.missing_inputs', { ...base, keys: plan.missing });
    const body: SplitPlanFile = {
      version: 1,
      split_id: splitId,
      tenant_id: tenant,
      dt: date,
      ranges,
      buckets,
      started_at: new Date(started).toISOString(),
      inputs: assignRanges(plan, ranges),
      plan: planToJson(plan),
    };
    await lease.confirm();
    await deps.store.putBytes(splitPlanKey(tenant, date, splitId), JSON.stringify(body), { contentType: 'application/json' });
    await lease.handOver();
    handedOver = true;
    deps.log?.('split.started', { ...base, ranges, buckets, inputs: body.inputs.length });
    return { ref: { tenant, date, splitId, ranges, buckets } };
  } finally {
    if (!handedOver) await lease.release();
  }
}

/**
 * Staging in listing order, then the published parts, then the tombstone file, cut into `ranges` contiguous
 * runs of about equal bytes (a range may be empty when there are fewer inputs than ranges).
 */
function assignRanges(plan: PartitionPlan, ranges: number): SplitInput[] {
  const listed = [
    ...plan.staging.map((o, number) => ({ o, origin: 'staging' as const, number })),
    ...plan.published.map((o, number) => ({ o, origin: 'published' as const, number })),
    ...plan.tombstones.map((o, number) => ({ o, origin: 'tombstone' as const, number })),
  ];
  const total = listed.reduce((n, l) => n + l.o.size, 0);
  let before = 0;
  return listed.map(({ o, origin, number }, j) => {
    const middle = before + o.size / 2;
    before += o.size;
    const share = total > 0 ? middle / total : (j + 0.5) / listed.length;
    return { origin, key: o.key, size: o.size, etag: o.etag, number, range: Math.min(ranges - 1, Math.floor(share * ranges)) };
  });
}

const infoToJson = (o: ObjectInfo): JsonInfo => ({
  key: o.key,
  size: o.size,
  etag: o.etag,
  lastModified: o.lastModified.toISOString(),
});

const infoFromJson = (o: JsonInfo): ObjectInfo => ({
  key: o.key,
  size: o.size,
  etag: o.etag,
  lastModified: new Date(o.lastModified),
});

function planToJson(plan: PartitionPlan): JsonPlan {
  return {
    ...plan,
    staging: plan.staging.map(infoToJson),
    published: plan.published.map(infoToJson),
    tombstones: plan.tombstones.map(infoToJson),
  };
}

export function planFromJson(plan: JsonPlan): PartitionPlan {
  return {
    ...plan,
    staging: plan.staging.map(infoFromJson),
    published: plan.published.map(infoFromJson),
    tombstones: plan.tombstones.map(infoFromJson),
  };
}
