/** The split's commit: the reports gathered into the single pass's outcome, committed as the single pass commits. */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { CompactionError, errorMessage, LeaseLostError } from '../../core/errors.js';
import { splitWorkPrefix } from '../../core/staging/layout.js';
import { mapLimit } from '../../core/util/concurrency.js';
import { type PartitionManifest, readManifest } from '../../lake/manifest.js';
import { adoptLease, type Lease } from '../../lake/partitionLease.js';
import type { PartitionPlan } from '../../lake/planPartition.js';
import { withConnection } from '../../ports/duckdb/openDuckDb.js';
import { getBytes, type ObjectStore } from '../../ports/store/ObjectStore.js';
import { commitPartition } from '../commitPartition.js';
import { type CompactionDeps, compactedResult, type PartitionResult, type PartitionRun } from '../compactPartition.js';
import { type MergeOutcome, writeTombstones } from '../mergePartition.js';
import type { RejectedInput } from '../salvage.js';
import { planFromJson } from './plan.js';
import { assertRef, type SplitMode, type SplitRef } from './splitRef.js';
import { leaseOptions, logHandOverFailed, partitionRun, sum } from './task.js';
import {
  assertVersion,
  type BucketReport,
  deleteAll,
  type RangeReport,
  readBucketReports,
  readPlan,
  readRangeReports,
  type StoredRejected,
} from './workPrefix.js';

/**
 * Verifies every range and bucket reported, row counts from the Parquet footers, writes parts + tombstones +
 * quarantine + the run manifest and one table commit (after the version seen at start, and on the lease), cleans the
 * work prefix, releases the lease. Throws CompactionError, publishing nothing, when a report is missing or
 * stale or a count does not hold; the lease and the work prefix stay for a retry or abandonSplit.
 */
export async function commitSplit(deps: CompactionDeps, ref: SplitRef, mode: SplitMode = 'tasks'): Promise<PartitionResult> {
  assertRef(ref);
  const now = deps.now ?? Date.now;
  let lease: Lease;
  try {
    lease = await adoptLease(deps.store, ref.tenant, ref.date, ref.splitId, leaseOptions(deps, mode));
  } catch (error) {
    if (!(error instanceof LeaseLostError)) throw error;
    // a commit retried after it went through (its reply lost) finds its own manifest published
    const committed = await committedSplitResult(deps, ref);
    if (committed) return committed;
    throw error;
  }
  const timings: Record<string, number> = {};
  let work: string | undefined;
  let committed = false;
  try {
    const splitPlan = await readPlan(deps.store, ref);
    const plan = planFromJson(splitPlan.plan);
    const ranges = await readRangeReports(deps.store, ref);
    const buckets = await readBucketReports(deps.store, ref, ranges);
    await mkdir(deps.workDirectory, { recursive: true });
    work = await mkdtemp(join(deps.workDirectory, `${ref.tenant}-${ref.date}-commit-`));
    const run = partitionRun(deps, ref, work, lease, Date.parse(splitPlan.started_at), timings);
    const outcome = await run.timed('gather', () => gatherOutcome(run, plan, ranges, buckets));
    const { outputs } = await commitPartition(run, lease, plan, outcome);
    committed = true;
    await run.timed('cleanup', () => deleteAll(deps.store, splitWorkPrefix(ref.tenant, ref.date, ref.splitId)));
    const sum = (pick: (t: Record<string, number>) => number | undefined) =>
      [...ranges, ...buckets].reduce((n, r) => n + (pick(r.timings_ms) ?? 0), 0);
    const result = compactedResult(
      { tenant: ref.tenant, date: ref.date, runId: ref.splitId },
      outcome,
      outputs,
      now() - run.started,
      { map: sum((t) => t.map), reduce: sum((t) => t.reduce), ...timings },
    );
    deps.log?.('partition.compacted', { tenant: ref.tenant, date: ref.date, runId: ref.splitId, rows: result.rowsWritten });
    await run.phase('done');
    return result;
  } catch (error) {
    throw new CompactionError(
      `commit of split ${ref.splitId} of tenant ${ref.tenant} for ${ref.date} failed: ${errorMessage(error)}`,
      { cause: error, context: { tenant: ref.tenant, date: ref.date, runId: ref.splitId } },
    );
  } finally {
    try {
      if (work) await rm(work, { recursive: true, force: true });
    } finally {
      if (committed) await lease.release();
      else await lease.handOver().catch((error: unknown) => logHandOverFailed(deps, ref, error));
    }
  }
}

/**
 * The result of the split's commit if it already went through – the partition's manifest names the split –
 * as the manifest records it; else undefined (a torn manifest is not this split's).
 */
export async function committedSplitResult(deps: CompactionDeps, ref: SplitRef): Promise<PartitionResult | undefined> {
  const manifest = await readManifest(deps.store, ref.tenant, ref.date).catch((readError: unknown) => {
    if (readError instanceof SyntaxError) return undefined;
    throw readError;
  });
  return manifest?.run_id === ref.splitId ? resultOfManifest(ref, manifest) : undefined;
}

/** The result of a split that is already committed, from its manifest. */
function resultOfManifest(ref: SplitRef, m: PartitionManifest): PartitionResult {
  return {
    tenant: ref.tenant,
    date: ref.date,
    runId: ref.splitId,
    status: 'compacted',
    inputs: m.inputs.length,
    rowsRead: m.rows_read,
    rowsCarried: m.rows_carried ?? 0,
    deletesRemembered: m.deletes_remembered ?? 0,
    rowsRejected: m.rows_rejected,
    objectsRejected: m.objects_rejected,
    duplicatesRemoved: m.duplicates_removed,
    versionsSuperseded: m.versions_superseded,
    deletesApplied: m.deletes_applied,
    rowsWritten: m.rows_written,
    outputFiles: m.outputs.map((o) => o.key),
    bytesWritten: m.outputs.reduce((n, o) => n + o.size, 0),
    durationMs: Date.parse(m.finished_at) - Date.parse(m.started_at),
    timingsMs: {},
  };
}

/**
 * The merge outcome as the single pass would have produced it, from the reports: the buckets' parts as they
 * lie in the partition's folder (each checked by a HEAD: there, at the version its bucket reported, and its
 * statistics' row count the one reported — no data part is downloaded), the tombstone file written, the
 * counts summed.
 */
async function gatherOutcome(
  run: PartitionRun,
  plan: PartitionPlan,
  ranges: readonly RangeReport[],
  buckets: readonly BucketReport[],
): Promise<MergeOutcome> {
  const { deps } = run;
  const counts = {
    current: sum(buckets, (b) => b.counts.current),
    deleted: sum(buckets, (b) => b.counts.deleted),
    superseded: sum(buckets, (b) => b.counts.superseded),
    duplicate: sum(ranges, (r) => r.valid_rows) - sum(buckets, (b) => b.counts.current + b.counts.deleted + b.counts.superseded),
    rejected: sum(ranges, (r) => r.rejected_rows),
  };
  for (const b of buckets) {
    const rows = sum(b.parts, (p) => p.rows);
    if (rows !== b.counts.current) {
      throw new CompactionError(`bucket ${b.bucket}'s parts hold ${rows} rows by its report, it counted ${b.counts.current}`);
    }
  }
  const placed = buckets.flatMap((b) => b.parts);
  // each part is checked before the manifest: a part that fails stops the commit with no manifest written
  await mapLimit(placed, 8, async (p) => {
    const records = (JSON.parse(p.stats) as { numRecords?: unknown }).numRecords;
    if (records !== p.rows) {
      throw new CompactionError(`${p.key} holds ${records} rows, its bucket reported ${p.rows}: the manifest was not written`, {
        context: { key: p.key },
      });
    }
    const info = await deps.store.head(p.key);
    if (!info) {
      throw new CompactionError(`${p.key}, which its bucket reported, is gone: the manifest was not written`, {
        context: { key: p.key },
      });
    }
    assertVersion(info, p.etag, 'its bucket reported');
  });
  const tombstoneFile = await withConnection(deps.db, (connection) =>
    writeTombstones(
      connection,
      run,
      buckets.flatMap((b) => b.deletes),
    ),
  );
  const rejected = await rejectedInOrder(deps.store, ranges);
  return {
    staging: plan.staging,
    published: [...plan.published, ...plan.tombstones],
    counts,
    rowsRead: sum(ranges, (r) => r.read.staging),
    rowsCarried: sum(ranges, (r) => r.read.published),
    deletesRemembered: sum(ranges, (r) => r.read.tombstone),
    rowsRejected: counts.rejected + sum(ranges, (r) => r.salvaged_lines),
    objectsRejected: sum(ranges, (r) => r.objects_rejected),
    rejected,
    parts: [],
    placed,
    tombstoneFile,
    split: { ranges: ranges.length, buckets: buckets.length },
  };
}

/** Every range's quarantine entries in the single pass's order (stable: a range's own order is kept). */
async function rejectedInOrder(store: ObjectStore, ranges: readonly RangeReport[]): Promise<RejectedInput[]> {
  const stored: StoredRejected[] = [];
  for (const r of ranges) {
    if (r.rejected_key === null) continue;
    const text = gunzipSync(await getBytes(store, r.rejected_key)).toString('utf8');
    for (const line of text.split('\n')) if (line !== '') stored.push(JSON.parse(line) as StoredRejected);
  }
  return stored
    .map((s, i) => ({ s, i }))
    .sort((a, b) => (a.s.order < b.s.order ? -1 : a.s.order > b.s.order ? 1 : a.i - b.i))
    .map(({ s }) => s.entry);
}
