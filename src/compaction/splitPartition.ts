/**
 * One tenant-day compacted as K map tasks and B reduce tasks that may run in different processes or machines
 * (docs/SCALING.md, "Splitting one huge tenant-day across invocations"). Everything the tasks hand to each
 * other lives in the ObjectStore under `compaction-work/messages/tenant_id=<t>/dt=<d>/<splitId>/`:
 *
 *   plan.json                                     the inputs, each assigned to a range; the partition as planned
 *   range=<i>/attempt=<a>/bucket=<b>/data_<n>.parquet   map i's first delivery of each version, by hash(message_id) % B
 *   range=<i>/attempt=<a>/rejected.ndjson.gz      map i's quarantine entries (salvaged lines, rows breaking a rule)
 *   range=<i>/report.json                         map i's counts and files of attempt <a> (written last: the task is done)
 *   bucket=<b>/attempt=<a>/part-<j>.parquet       reduce b's current rows
 *   bucket=<b>/report.json                        reduce b's counts, parts and remembered deletes of attempt <a>
 *
 * Every attempt of a task (a retry, or a twin the queue redelivered while the first still runs) writes its
 * outputs under its own `attempt=<id>/`, each created put-if-absent, and deletes nothing: a twin writes beside
 * its sibling, never over it. The report is the one pointer that changes: the last attempt to finish names its
 * own outputs there, and whatever reads a report (the reduce, the commit) reads exactly the files of the attempt
 * it names (keys under that attempt's folder, at the versions it recorded). A reduce records the range attempts
 * it read; the commit refuses a reduce made from attempts that are no longer the current ones.
 *
 * The rows are exactly the single pass's: the single pass keeps, of each message, the first row in the
 * total latest-first order; a map keeps the first delivery of each version of its range in that order, the
 * reduce the first of those across ranges and then classifies exactly as the single pass. The counts are
 * exact too: in the single pass a message's valid rows sort by version, so its duplicates are its rows minus
 * its distinct versions and its superseded rows its distinct versions minus one. Hence duplicates = valid rows
 * read by the maps − versions classified by the reduces, and the reduces' tally gives the rest.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { DuckDBConnection } from '@duckdb/node-api';
import { withConnection } from '../duckdb/openDuckDb.js';
import { CompactionError, errorMessage, LeaseLostError, PartitionLockedError, UsageError } from '../errors.js';
import { quoteLiteral, quoteStringList } from '../sql/quote.js';
import {
  splitBucketAttemptPrefix,
  splitBucketPrefix,
  splitPlanKey,
  splitRangeAttemptPrefix,
  splitRangePrefix,
  splitWorkPrefix,
} from '../staging/layout.js';
import { gzipNdjson } from '../staging/ndjson.js';
import { ObjectNotFoundError } from '../store/errors.js';
import { createOnce, getBytes, listAll, type ObjectInfo, type ObjectStore } from '../store/ObjectStore.js';
import { assertTenantId } from '../tenant.js';
import { parseDate } from '../time/jst.js';
import { mapLimit } from '../util/concurrency.js';
import { DEFAULT_RETRY } from '../util/retry.js';
import { commitPartition } from './commitPartition.js';
import {
  INPUT_ORIGINS,
  type InputOrigin,
  type MergeFiles,
  mergeParams,
  parquetCopyOptionsSql,
  partitionParams,
  splitMapSql,
  splitReduceSql,
  stagedRowsSql,
} from './compactionSql.js';
import {
  type CompactionDeps,
  type CompactionPhase,
  compactedResult,
  DEFAULT_COMPACTION_SETTINGS,
  emptyResult,
  type PartitionResult,
  type PartitionRun,
} from './compactPartition.js';
import { currentSnapshot } from './lakeTable.js';
import { type PartitionManifest, readManifest } from './manifest.js';
import {
  downloadVerified,
  isInputError,
  type LocalInputs,
  type MergeOutcome,
  partFiles,
  rejectedRowLines,
  salvageRefusedFiles,
  stagingLocalName,
  verifyRowCount,
  withObjectKeys,
  writeTombstones,
} from './mergePartition.js';
import { acquireLease, adoptLease, type Lease } from './partitionLease.js';
import { type PartitionPlan, planHasWork, planPartition } from './planPartition.js';
import type { RejectedInput } from './salvage.js';
import { assertSplitShape } from './splitShape.js';
import { installTally, openTally, type RememberedDelete, TALLY_FUNCTION } from './tally.js';

/** K map tasks (ranges of the inputs), B reduce tasks (buckets of message ids). */
export interface SplitShape {
  readonly ranges: number;
  readonly buckets: number;
}

/** What every task of one split needs to find the others' work: pass it from task to task. */
export interface SplitRef {
  readonly tenant: string;
  readonly date: string;
  readonly splitId: string;
  readonly ranges: number;
  readonly buckets: number;
}

/**
 * How long a split's lease lasts without renewal. The lease is held from startSplit to commitSplit across
 * processes; each task renews it when it starts (adoptLease), while it works (heartbeat, every quarter) and
 * when it hands over. The gap between tasks (an orchestrator queueing the next stage) must stay under this:
 * 30 minutes is two Lambda timeouts. A split that crashed holds the day for at most this long; then any run
 * takes the lease over and the split's commit fails on it (and on the table version it planned at).
 */
export const SPLIT_LEASE_MS = 30 * 60_000;

/** One input of the split: a staging object, a published part or the tombstone file, and its range. */
interface SplitInput {
  readonly origin: InputOrigin;
  readonly key: string;
  readonly size: number;
  readonly etag: string;
  /** Its place among the inputs of its origin (staging: in the partition's listing, which names the local copy). */
  readonly number: number;
  readonly range: number;
}

/** plan.json */
interface SplitPlanFile {
  readonly version: 1;
  readonly split_id: string;
  readonly tenant_id: string;
  readonly dt: string;
  readonly ranges: number;
  readonly buckets: number;
  readonly started_at: string;
  readonly inputs: SplitInput[];
  /** The partition as planned: the table version the commit goes after, and the files it replaces. */
  readonly plan: JsonPlan;
}

type JsonInfo = Omit<ObjectInfo, 'lastModified'> & { lastModified: string };
type JsonPlan = Omit<PartitionPlan, 'staging' | 'published' | 'tombstones'> & {
  staging: JsonInfo[];
  published: JsonInfo[];
  tombstones: JsonInfo[];
};

/** range=<i>/report.json */
interface RangeReport {
  readonly range: number;
  /** A new id per attempt: a reduce records the attempts it read, the commit checks they are still current. */
  readonly attempt: string;
  /** Rows read by origin (staging: every row DuckDB read, rejected ones too). */
  readonly read: Record<InputOrigin, number>;
  /** Rows that break a staging rule (the tally's rejected). */
  readonly rejected_rows: number;
  /** Lines the salvage quarantined, and whole objects (or their tails). */
  readonly salvaged_lines: number;
  readonly objects_rejected: number;
  /** Rows read that are valid: every delivery of every version in this range. */
  readonly valid_rows: number;
  /** Versions kept (one row each), over all buckets. */
  readonly versions: number;
  readonly buckets: { readonly bucket: number; readonly key: string; readonly etag: string; readonly rows: number }[];
  /** range=<i>/rejected.ndjson.gz, or null when nothing was rejected. */
  readonly rejected_key: string | null;
  readonly timings_ms: Record<string, number>;
}

/** bucket=<b>/report.json */
interface BucketReport {
  readonly bucket: number;
  readonly attempt: string;
  /** The range attempts whose outputs this reduce read, by range. */
  readonly range_attempts: string[];
  readonly counts: { readonly current: number; readonly deleted: number; readonly superseded: number };
  readonly parts: { readonly key: string; readonly size: number; readonly etag: string; readonly rows: number }[];
  readonly deletes: RememberedDelete[];
  readonly timings_ms: Record<string, number>;
}

/** A quarantine entry as a map stores it: `order` places it as the single pass would (see rejectedInOrder). */
interface StoredRejected {
  readonly order: string;
  readonly entry: RejectedInput;
}

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
): Promise<{ ref: SplitRef } | { result: PartitionResult }> {
  const tenant = assertTenantId(tenantInput);
  const date = parseDate(dateInput);
  const { ranges, buckets } = assertSplitShape(shape);
  const now = deps.now ?? Date.now;
  const started = now();
  const splitId = `${new Date(started).toISOString().replace(/[-:.]/g, '')}-${randomUUID().slice(0, 8)}`;
  const base = { tenant, date, runId: splitId };
  let lease: Lease;
  try {
    lease = await acquireLease(deps.store, tenant, date, splitId, leaseOptions(deps));
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
 * Map task `range`: reads its inputs, validates and counts every row, keeps the first delivery of each
 * version and writes those bucketed by message id, its quarantine entries and its report. Idempotent: every
 * attempt writes its outputs under its own `attempt=<id>/` (put-if-absent, nothing deleted), then points the
 * range's report at them; a retried or duplicated attempt leaves the other's outputs as they are.
 */
export async function mapRange(deps: CompactionDeps, ref: SplitRef, range: number): Promise<void> {
  assertTask(ref, 'range', range, ref.ranges);
  await withTask(deps, ref, `range-${range}`, async (task) => {
    const plan = await readPlan(deps.store, ref);
    const attempt = randomUUID();
    const prefix = splitRangeAttemptPrefix(ref.tenant, ref.date, ref.splitId, range, attempt);
    const inputs = plan.inputs.filter((i) => i.range === range);
    const local = await task.run.timed('download', () => downloadRange(task.run, inputs));
    const mapped = await task.run.timed('map', () => runMap(task, ref, range, local));
    await task.lease.confirm();
    const files = await task.run.timed('upload', () =>
      mapLimit(mapped.buckets, task.run.settings.transferConcurrency, async (b) => {
        const key = `${prefix}bucket=${b.bucket}/${basename(b.path)}`;
        const info = await createOnce(deps.store, key, task.run.signal, (options) =>
          deps.store.putFile(key, b.path, { ...options, contentType: 'application/vnd.apache.parquet' }),
        );
        return { bucket: b.bucket, key, etag: info.etag, rows: b.rows };
      }),
    );
    const rejectedKey = mapped.rejected.length === 0 ? null : `${prefix}rejected.ndjson.gz`;
    if (rejectedKey) {
      const body = gzipNdjson(mapped.rejected);
      await createOnce(deps.store, rejectedKey, task.run.signal, (options) =>
        deps.store.putBytes(rejectedKey, body, { ...options, contentType: 'application/gzip' }),
      );
    }
    const report: RangeReport = {
      range,
      attempt,
      read: mapped.read,
      rejected_rows: mapped.rejectedRows,
      salvaged_lines: mapped.salvaged.filter((r) => r.line !== undefined).length,
      objects_rejected: mapped.salvaged.filter((r) => r.line === undefined).length,
      valid_rows: mapped.validRows,
      versions: mapped.versions,
      buckets: files,
      rejected_key: rejectedKey,
      timings_ms: task.timings,
    };
    await task.lease.confirm();
    await putJson(deps.store, `${splitRangePrefix(ref.tenant, ref.date, ref.splitId, range)}report.json`, report);
  });
}

/**
 * Reduce task `bucket`: reads the bucket's outputs of every range (each range must have reported), keeps the
 * first delivery of each version across ranges, classifies as the single pass and writes the current rows
 * as parts with its report (counts, parts, remembered deletes). Idempotent.
 */
export async function reduceBucket(deps: CompactionDeps, ref: SplitRef, bucket: number): Promise<void> {
  assertTask(ref, 'bucket', bucket, ref.buckets);
  await withTask(deps, ref, `bucket-${bucket}`, async (task) => {
    const ranges = await readRangeReports(deps.store, ref);
    const attempt = randomUUID();
    const prefix = splitBucketAttemptPrefix(ref.tenant, ref.date, ref.splitId, bucket, attempt);
    const inputs = ranges.flatMap((r) => r.buckets.filter((b) => b.bucket === bucket));
    const inDir = join(task.run.work, 'in');
    await mkdir(inDir, { recursive: true });
    const retry = deps.retry ?? DEFAULT_RETRY;
    const files = await task.run.timed('download', () =>
      mapLimit(inputs, task.run.settings.transferConcurrency, async (input, i) => {
        const path = join(inDir, `${String(i).padStart(6, '0')}.parquet`);
        assertVersion(await downloadVerified(deps.store, input.key, path, retry), input.etag, 'its range reported');
        return path;
      }),
    );
    const reduced = await task.run.timed('reduce', () => runReduce(task, ref, bucket, files, inputs));
    await task.lease.confirm();
    const parts = await task.run.timed('upload', () =>
      mapLimit(reduced.parts, task.run.settings.transferConcurrency, async (part, j) => {
        const key = `${prefix}part-${j}.parquet`;
        const info = await createOnce(deps.store, key, task.run.signal, (options) =>
          deps.store.putFile(key, part.path, { ...options, contentType: 'application/vnd.apache.parquet' }),
        );
        return { key, size: info.size, etag: info.etag, rows: part.rows };
      }),
    );
    const report: BucketReport = {
      bucket,
      attempt,
      range_attempts: ranges.map((r) => r.attempt),
      counts: reduced.counts,
      parts,
      deletes: reduced.deletes,
      timings_ms: task.timings,
    };
    await task.lease.confirm();
    await putJson(deps.store, `${splitBucketPrefix(ref.tenant, ref.date, ref.splitId, bucket)}report.json`, report);
  });
}

/**
 * Verifies every range and bucket reported, row counts from the Parquet footers, writes parts + tombstones +
 * quarantine + the run manifest and one table commit (after the version seen at start, and on the lease), cleans the
 * work prefix, releases the lease. Throws CompactionError, publishing nothing, when a report is missing or
 * stale or a count does not hold; the lease and the work prefix stay for a retry or abandonSplit.
 */
export async function commitSplit(deps: CompactionDeps, ref: SplitRef): Promise<PartitionResult> {
  assertRef(ref);
  const now = deps.now ?? Date.now;
  let lease: Lease;
  try {
    lease = await adoptLease(deps.store, ref.tenant, ref.date, ref.splitId, leaseOptions(deps));
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
 * A split that cannot finish: removes its work prefix, releases the lease (if it still holds it), returns
 * status 'failed' with the reason. Publishes nothing and leaves the published partition as it is.
 */
export async function abandonSplit(deps: CompactionDeps, ref: SplitRef, reason: string): Promise<PartitionResult> {
  assertRef(ref);
  const now = deps.now ?? Date.now;
  const started = now();
  let lease: Lease | undefined;
  try {
    // without the run's abort: a split stopped by SIGTERM is still cleaned up rather than left holding the day
    lease = await adoptLease(deps.store, ref.tenant, ref.date, ref.splitId, leaseOptions({ ...deps, signal: undefined }));
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

/**
 * All tasks in one process, in order (the CLI, tests, the bench): start, K maps, B reduces, commit. A task
 * that fails abandons the split: the result is 'failed' with the reason, and nothing is published.
 */
export async function runSplit(deps: CompactionDeps, tenant: string, date: string, shape: SplitShape): Promise<PartitionResult> {
  const started = await startSplit(deps, tenant, date, shape);
  if ('result' in started) return started.result;
  const { ref } = started;
  try {
    for (let range = 0; range < ref.ranges; range++) await mapRange(deps, ref, range);
    for (let bucket = 0; bucket < ref.buckets; bucket++) await reduceBucket(deps, ref, bucket);
    return await commitSplit(deps, ref);
  } catch (error) {
    const reason = `compaction of tenant ${ref.tenant} for ${ref.date} failed: ${errorMessage(error)}`;
    return await abandonSplit(deps, ref, reason);
  }
}

// ---------------------------------------------------------------------------------------------------------
// planning

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

function planFromJson(plan: JsonPlan): PartitionPlan {
  return {
    ...plan,
    staging: plan.staging.map(infoFromJson),
    published: plan.published.map(infoFromJson),
    tombstones: plan.tombstones.map(infoFromJson),
  };
}

// ---------------------------------------------------------------------------------------------------------
// tasks

interface Task {
  readonly run: PartitionRun;
  readonly lease: Lease;
  readonly timings: Record<string, number>;
}

/** Runs one map or reduce task: adopts the split's lease, a local work folder, and hands the lease over after. */
async function withTask(deps: CompactionDeps, ref: SplitRef, name: string, work: (task: Task) => Promise<void>): Promise<void> {
  const timings: Record<string, number> = {};
  let lease: Lease | undefined;
  let folder: string | undefined;
  try {
    lease = await adoptLease(deps.store, ref.tenant, ref.date, ref.splitId, leaseOptions(deps));
    await mkdir(deps.workDirectory, { recursive: true });
    folder = await mkdtemp(join(deps.workDirectory, `${ref.tenant}-${ref.date}-${name}-`));
    await work({ run: partitionRun(deps, ref, folder, lease, (deps.now ?? Date.now)(), timings), lease, timings });
    await lease.handOver();
  } catch (error) {
    // the task fails with its own error; a lease that cannot be handed over on the way out is only logged
    await lease?.handOver().catch((handOverError: unknown) => {
      deps.log?.('split.hand_over_failed', {
        tenant: ref.tenant,
        date: ref.date,
        runId: ref.splitId,
        error: errorMessage(handOverError),
      });
    });
    throw new CompactionError(
      `${name.replace('-', ' ')} of split ${ref.splitId} of tenant ${ref.tenant} for ${ref.date} failed: ${errorMessage(error)}`,
      { cause: error, context: { tenant: ref.tenant, date: ref.date, runId: ref.splitId, task: name } },
    );
  } finally {
    if (folder) await rm(folder, { recursive: true, force: true });
  }
}

/** A task or commit that failed keeps its own error; a lease that cannot be handed over after it is only logged. */
function logHandOverFailed(deps: CompactionDeps, ref: SplitRef, error: unknown): void {
  deps.log?.('split.hand_over_failed', { tenant: ref.tenant, date: ref.date, runId: ref.splitId, error: errorMessage(error) });
}

function partitionRun(
  deps: CompactionDeps,
  ref: SplitRef,
  work: string,
  lease: Lease,
  started: number,
  timings: Record<string, number>,
): PartitionRun {
  const now = deps.now ?? Date.now;
  return {
    deps,
    tenant: ref.tenant,
    date: ref.date,
    runId: ref.splitId,
    settings: deps.settings ?? DEFAULT_COMPACTION_SETTINGS,
    started,
    now,
    work,
    signal: lease.signal,
    timed: async (phase, task) => {
      const t0 = performance.now();
      try {
        return await task();
      } finally {
        timings[phase] = Math.round((timings[phase] ?? 0) + performance.now() - t0);
      }
    },
    phase: async (name: CompactionPhase) => {
      // as in compactPartition: once the table commit is written, a lost lease no longer undoes it
      if (name !== 'cleaning' && name !== 'done') lease.signal.throwIfAborted();
      await deps.onPhase?.(name, { tenant: ref.tenant, date: ref.date });
    },
  };
}

interface LocalRange extends LocalInputs {
  readonly keyOf: Map<string, string>;
}

/** Downloads a range's inputs; staging copies are named by their place in the whole listing (the tie order). */
async function downloadRange(run: PartitionRun, inputs: readonly SplitInput[]): Promise<LocalRange> {
  const inDir = join(run.work, 'in');
  await mkdir(inDir, { recursive: true });
  const retry = run.deps.retry ?? DEFAULT_RETRY;
  const pathOf = (i: SplitInput) =>
    join(inDir, i.origin === 'staging' ? stagingLocalName(i.number) : `${i.origin}-${String(i.number).padStart(6, '0')}.parquet`);
  const infos = await mapLimit(inputs, run.settings.transferConcurrency, async (input) => {
    const info = await downloadVerified(run.deps.store, input.key, pathOf(input), retry);
    if (info.etag !== input.etag) {
      throw new CompactionError(`${input.key} changed after the split was planned (etag ${input.etag}, now ${info.etag})`, {
        context: { key: input.key },
      });
    }
    return info;
  });
  const keyOf = new Map(inputs.map((i) => [pathOf(i), i.key]));
  const of = (origin: InputOrigin) =>
    inputs.map((input, i) => ({ input, info: infos[i] as ObjectInfo })).filter((x) => x.input.origin === origin);
  const published = (origin: InputOrigin) => of(origin).map((x) => ({ path: pathOf(x.input), key: x.input.key }));
  return {
    keyOf,
    stagingInfo: of('staging').map((x) => x.info),
    staging: of('staging').map((x) => pathOf(x.input)),
    stagingNumbers: of('staging').map((x) => x.input.number),
    published: published('published'),
    tombstones: published('tombstone'),
  };
}

/** The map statement over one range, with the single pass's salvage of files DuckDB refuses. */
async function runMap(task: Task, ref: SplitRef, range: number, local: LocalRange) {
  const { run } = task;
  const outDir = join(run.work, 'out');
  const runKey = `${ref.splitId}/range=${range}`;
  try {
    return await withTallyConnection(run, runKey, async (connection, tally) => {
      const files: MergeFiles = local;
      const copy = async () => {
        await rm(outDir, { recursive: true, force: true });
        tally.reset();
        if (files.staging.length + files.published.length + files.tombstones.length === 0) return;
        await connection.run(
          `COPY (${splitMapSql(files, TALLY_FUNCTION, runKey, ref.buckets)}) TO ${quoteLiteral(outDir)} (FORMAT parquet, COMPRESSION ${run.settings.compression}, ROW_GROUP_SIZE_BYTES ${Math.trunc(run.settings.rowGroupBytes)}, PARTITION_BY (bucket))`,
          mergeParams(run.tenant, run.date, files),
        );
      };
      let salvaged: RejectedInput[] = [];
      try {
        await copy();
      } catch (error) {
        if (!isInputError(error)) throw error;
        salvaged = await salvageRefusedFiles(connection, run, local, local.keyOf);
        await copy();
      }
      const { counts, read } = tally.read();
      const rows = { sql: `(${stagedRowsSql(local.staging)})`, params: partitionParams(run.tenant, run.date) };
      const rejectedRows = counts.rejected > 0 ? await rejectedRowLines(connection, run, rows, local.keyOf) : [];
      const buckets = await bucketFiles(connection, outDir);
      const versions = buckets.reduce((n, b) => n + b.rows, 0);
      if (versions !== counts.current) {
        throw new CompactionError(
          `the map outputs hold ${versions} rows, the map counted ${counts.current}: nothing was published`,
        );
      }
      const totalRead = INPUT_ORIGINS.reduce((n, o) => n + read[o], 0);
      return {
        read,
        rejectedRows: counts.rejected,
        validRows: totalRead - counts.rejected,
        versions,
        buckets,
        salvaged,
        rejected: storedRejected(salvaged, rejectedRows, local),
      };
    });
  } catch (error) {
    run.signal.throwIfAborted();
    throw withObjectKeys(error, local.keyOf);
  }
}

/** Runs `work` on a connection of the run's instance, counting through a fresh tally under `runKey`. */
async function withTallyConnection<T>(
  run: PartitionRun,
  runKey: string,
  work: (connection: DuckDBConnection, tally: ReturnType<typeof openTally>) => Promise<T>,
): Promise<T> {
  await installTally(run.deps.db);
  const tally = openTally(runKey);
  try {
    return await withConnection(run.deps.db, (connection) => work(connection, tally), run.signal);
  } finally {
    tally.end();
  }
}

/**
 * The quarantine entries of a range, each with its place in the single pass's order: the salvaged ones
 * first, by the object's place in the listing; then the rows breaking a rule, by the local file name.
 */
function storedRejected(salvaged: RejectedInput[], rows: RejectedInput[], local: LocalRange): StoredRejected[] {
  const numberOf = new Map(local.stagingInfo.map((info, i) => [info.key, local.stagingNumbers?.[i] ?? i]));
  const nameOf = new Map(local.staging.map((path, i) => [local.stagingInfo[i]?.key, basename(path)]));
  return [
    ...salvaged.map((entry) => ({ order: `0 ${String(numberOf.get(entry.object_key) ?? 0).padStart(12, '0')}`, entry })),
    ...rows.map((entry) => ({ order: `1 ${nameOf.get(entry.object_key) ?? ''}`, entry })),
  ];
}

/** The map's files by bucket (PARTITION_BY writes `bucket=<b>/data_<n>.parquet`), each with its footer's row count. */
async function bucketFiles(connection: DuckDBConnection, outDir: string) {
  let dirs: string[];
  try {
    dirs = await readdir(outDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const files: { bucket: number; path: string }[] = [];
  for (const dir of dirs.sort()) {
    const bucket = /^bucket=(\d+)$/.exec(dir)?.[1];
    if (bucket === undefined) throw new CompactionError(`unexpected map output ${dir} in ${outDir}`);
    for (const name of (await readdir(join(outDir, dir))).sort())
      files.push({ bucket: Number(bucket), path: join(outDir, dir, name) });
  }
  const rows = await footerRows(
    connection,
    files.map((f) => f.path),
  );
  return files.map((f, i) => ({ ...f, rows: rows[i] as number }));
}

/** Each file's row count from its Parquet footer (no data read). */
async function footerRows(connection: DuckDBConnection, files: readonly string[]): Promise<number[]> {
  if (files.length === 0) return [];
  const reader = await connection.runAndReadAll(
    `SELECT file_name, sum(num_rows)::BIGINT AS row_count FROM parquet_file_metadata(${quoteStringList(files)}) GROUP BY file_name`,
  );
  const byFile = new Map(reader.getRowObjectsJS().map((r) => [String(r.file_name), Number(r.row_count)]));
  return files.map((f) => byFile.get(f) ?? 0);
}

/** The reduce statement over one bucket's map outputs; verifies the inputs' and the parts' footers. */
async function runReduce(
  task: Task,
  ref: SplitRef,
  bucket: number,
  files: readonly string[],
  inputs: readonly { key: string; rows: number }[],
) {
  const { run } = task;
  const outDir = join(run.work, 'out');
  const runKey = `${ref.splitId}/bucket=${bucket}`;
  return withTallyConnection(run, runKey, async (connection, tally) => {
    const rows = await footerRows(connection, files);
    for (const [i, input] of inputs.entries()) {
      if (rows[i] !== input.rows) {
        throw new CompactionError(`${input.key} holds ${rows[i]} rows, its range reported ${input.rows}`, {
          context: { key: input.key },
        });
      }
    }
    if (files.length === 0) return { counts: { current: 0, deleted: 0, superseded: 0 }, parts: [], deletes: [] };
    await connection.run(
      `COPY (${splitReduceSql(files, TALLY_FUNCTION, runKey)}) TO ${quoteLiteral(outDir)} (${parquetCopyOptionsSql(run.settings)})`,
    );
    const { counts, deletes } = tally.read();
    if (counts.duplicate !== 0 || counts.rejected !== 0) {
      throw new CompactionError(
        `the reduce found ${counts.duplicate} duplicates and ${counts.rejected} rejected rows, expected none`,
      );
    }
    const paths = counts.current === 0 ? [] : await partFiles(outDir);
    await verifyRowCount(connection, paths, counts.current, 'bucket parts');
    const partRows = await footerRows(connection, paths);
    return {
      counts: { current: counts.current, deleted: counts.deleted, superseded: counts.superseded },
      parts: paths.map((path, i) => ({ path, rows: partRows[i] as number })),
      deletes,
    };
  });
}

// ---------------------------------------------------------------------------------------------------------
// commit

/**
 * The merge outcome as the single pass would have produced it, from the reports: the buckets' parts
 * downloaded and their footers checked against the reports, the tombstone file written, the counts summed.
 */
async function gatherOutcome(
  run: PartitionRun,
  plan: PartitionPlan,
  ranges: readonly RangeReport[],
  buckets: readonly BucketReport[],
): Promise<MergeOutcome> {
  const { deps } = run;
  const outDir = join(run.work, 'out');
  await mkdir(outDir, { recursive: true });
  const retry = deps.retry ?? DEFAULT_RETRY;
  const named = buckets.flatMap((b) =>
    b.parts.map((p, j) => ({ ...p, path: join(outDir, `bucket-${b.bucket}-part-${j}.parquet`) })),
  );
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
  const tombstoneFile = await withConnection(deps.db, (connection) =>
    writeTombstones(
      connection,
      run,
      buckets.flatMap((b) => b.deletes),
    ),
  );
  // each part is checked (the version its bucket reported, its footer's row count) right before its upload,
  // and before the manifest: a part that fails stops the commit with no manifest written
  const fetchPart = async (index: number) => {
    const p = named[index] as (typeof named)[number];
    assertVersion(await downloadVerified(deps.store, p.key, p.path, retry), p.etag, 'its bucket reported');
    const [rows] = await withConnection(deps.db, (connection) => footerRows(connection, [p.path]));
    if (rows !== p.rows) {
      throw new CompactionError(`${p.key} holds ${rows} rows, its bucket reported ${p.rows}: the manifest was not written`, {
        context: { key: p.key },
      });
    }
  };
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
    parts: named.map((p) => p.path),
    fetchPart,
    tombstoneFile,
    split: { ranges: ranges.length, buckets: buckets.length },
  };
}

/** An intermediate is the version its report names, or it was replaced by another attempt since. */
function assertVersion(info: ObjectInfo, etag: string, reported: string): void {
  if (info.etag !== etag) {
    throw new CompactionError(`${info.key} is not the version ${reported} (another attempt replaced it): nothing was published`, {
      context: { key: info.key },
    });
  }
}

const sum = <T>(items: readonly T[], pick: (item: T) => number) => items.reduce((n, item) => n + pick(item), 0);

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

// ---------------------------------------------------------------------------------------------------------
// the work prefix

async function readPlan(store: ObjectStore, ref: SplitRef): Promise<SplitPlanFile> {
  const plan = await readJson<SplitPlanFile>(store, splitPlanKey(ref.tenant, ref.date, ref.splitId), 'the split plan');
  if (plan.ranges !== ref.ranges || plan.buckets !== ref.buckets) {
    throw new CompactionError(
      `the split plan has ${plan.ranges} ranges and ${plan.buckets} buckets, the ref ${ref.ranges} and ${ref.buckets}`,
    );
  }
  return plan;
}

/**
 * Every range's report, in range order; a range that has not reported fails the caller. Each report names
 * only files of its own attempt (the caller then reads those keys at the versions recorded).
 */
async function readRangeReports(store: ObjectStore, ref: SplitRef): Promise<RangeReport[]> {
  return mapLimit(range(ref.ranges), 8, async (i) => {
    const report = await readJson<RangeReport>(
      store,
      `${splitRangePrefix(ref.tenant, ref.date, ref.splitId, i)}report.json`,
      `range ${i}'s report`,
    );
    const own = splitRangeAttemptPrefix(ref.tenant, ref.date, ref.splitId, i, report.attempt);
    assertOwnFiles(`range ${i}'s report`, own, [...report.buckets.map((b) => b.key), report.rejected_key]);
    return report;
  });
}

/** Every bucket's report, each made from the current range attempts (a map retried after its reduce makes it stale). */
async function readBucketReports(store: ObjectStore, ref: SplitRef, ranges: readonly RangeReport[]): Promise<BucketReport[]> {
  const reports = await mapLimit(range(ref.buckets), 8, (b) =>
    readJson<BucketReport>(
      store,
      `${splitBucketPrefix(ref.tenant, ref.date, ref.splitId, b)}report.json`,
      `bucket ${b}'s report`,
    ),
  );
  const current = ranges.map((r) => r.attempt);
  for (const report of reports) {
    const own = splitBucketAttemptPrefix(ref.tenant, ref.date, ref.splitId, report.bucket, report.attempt);
    assertOwnFiles(
      `bucket ${report.bucket}'s report`,
      own,
      report.parts.map((p) => p.key),
    );
    if (report.range_attempts.join() !== current.join()) {
      throw new CompactionError(`bucket ${report.bucket} was reduced from map outputs that have since been replaced`);
    }
  }
  return reports;
}

async function readJson<T>(store: ObjectStore, key: string, what: string): Promise<T> {
  try {
    return JSON.parse((await getBytes(store, key)).toString('utf8')) as T;
  } catch (error) {
    if (error instanceof ObjectNotFoundError) {
      throw new CompactionError(`${what} is missing (${key}): its task has not finished`, { cause: error, context: { key } });
    }
    throw error;
  }
}

/** A report names only files under its own attempt's folder: never another attempt's, never a shared key. */
function assertOwnFiles(what: string, prefix: string, keys: readonly (string | null)[]): void {
  for (const key of keys) {
    if (key !== null && !key.startsWith(prefix)) {
      throw new CompactionError(`${what} names ${key}, which is not its attempt's (${prefix}): nothing was published`, {
        context: { key },
      });
    }
  }
}

async function putJson(store: ObjectStore, key: string, body: unknown): Promise<void> {
  await store.putBytes(key, JSON.stringify(body), { contentType: 'application/json' });
}

async function deleteAll(store: ObjectStore, prefix: string): Promise<void> {
  const objects = await listAll(store, prefix);
  await mapLimit(objects, 8, (o) => store.delete(o.key));
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

function leaseOptions(deps: CompactionDeps) {
  return {
    leaseMs: deps.leaseMs ?? SPLIT_LEASE_MS,
    acrossProcesses: true,
    ...(deps.now === undefined ? {} : { now: deps.now }),
    ...(deps.signal === undefined ? {} : { signal: deps.signal }),
  };
}

function assertRef(ref: SplitRef): void {
  assertTenantId(ref.tenant);
  parseDate(ref.date);
  assertSplitShape(ref);
  splitWorkPrefix(ref.tenant, ref.date, ref.splitId);
}

function assertTask(ref: SplitRef, what: 'range' | 'bucket', n: number, count: number): void {
  assertRef(ref);
  if (!Number.isSafeInteger(n) || n < 0 || n >= count) {
    throw new UsageError(`${what} must be a whole number from 0 to ${count - 1}, got ${JSON.stringify(n)}`);
  }
}
