/**
 * The split's work prefix, `compaction-work/messages/tenant_id=<t>/dt=<d>/<splitId>/`: the files the tasks hand
 * each other (the plan, the range and bucket reports, the map outputs they name), how they are read and
 * written, and where a reduce places its parts.
 */

import { CompactionError } from '../../core/errors.js';
import {
  analyticsKey,
  splitBucketPrefix,
  splitPlanKey,
  splitRangeAttemptPrefix,
  splitRangePrefix,
} from '../../core/staging/layout.js';
import { mapLimit } from '../../core/util/concurrency.js';
import type { PartitionPlan } from '../../lake/planPartition.js';
import { ObjectNotFoundError } from '../../ports/store/errors.js';
import { listAll, type ObjectInfo, type ObjectStore } from '../../ports/store/ObjectStore.js';
import { requireJson } from '../../ports/store/readJson.js';
import type { InputOrigin } from '../compactionSql.js';
import type { PlacedPart } from '../mergePartition.js';
import type { RejectedInput } from '../salvage.js';
import type { RememberedDelete } from '../tally.js';
import type { SplitRef } from './splitRef.js';

/** One input of the split: a staging object, a published part or the tombstone file, and its range. */
export interface SplitInput {
  readonly origin: InputOrigin;
  readonly key: string;
  readonly size: number;
  readonly etag: string;
  /** Its place among the inputs of its origin (staging: in the partition's listing, which names the local copy). */
  readonly number: number;
  readonly range: number;
}

/** plan.json */
export interface SplitPlanFile {
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

export type JsonInfo = Omit<ObjectInfo, 'lastModified'> & { lastModified: string };

export type JsonPlan = Omit<PartitionPlan, 'staging' | 'published' | 'tombstones'> & {
  staging: JsonInfo[];
  published: JsonInfo[];
  tombstones: JsonInfo[];
};

/** range=<i>/report.json */
export interface RangeReport {
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
export interface BucketReport {
  readonly bucket: number;
  readonly attempt: string;
  /** The range attempts whose outputs this reduce read, by range. */
  readonly range_attempts: string[];
  readonly counts: { readonly current: number; readonly deleted: number; readonly superseded: number };
  /** The parts as placed in the partition's folder (keys of this attempt only), with their Delta statistics. */
  readonly parts: PlacedPart[];
  readonly deletes: RememberedDelete[];
  readonly timings_ms: Record<string, number>;
}

/** A quarantine entry as a map stores it: `order` places it as the single pass would (see rejectedInOrder). */
export interface StoredRejected {
  readonly order: string;
  readonly entry: RejectedInput;
}

export async function readPlan(store: ObjectStore, ref: SplitRef): Promise<SplitPlanFile> {
  const plan = await readTaskFile<SplitPlanFile>(store, splitPlanKey(ref.tenant, ref.date, ref.splitId), 'the split plan');
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
export async function readRangeReports(store: ObjectStore, ref: SplitRef): Promise<RangeReport[]> {
  return mapLimit(range(ref.ranges), 8, async (i) => {
    const report = await readTaskFile<RangeReport>(
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
export async function readBucketReports(
  store: ObjectStore,
  ref: SplitRef,
  ranges: readonly RangeReport[],
): Promise<BucketReport[]> {
  const reports = await mapLimit(range(ref.buckets), 8, (b) =>
    readTaskFile<BucketReport>(
      store,
      `${splitBucketPrefix(ref.tenant, ref.date, ref.splitId, b)}report.json`,
      `bucket ${b}'s report`,
    ),
  );
  const current = ranges.map((r) => r.attempt);
  for (const report of reports) {
    const own = report.parts.map((_, j) => placedPartKey(ref, report.bucket, report.attempt, j));
    const named = report.parts.map((p) => p.key);
    if (named.join() !== own.join()) {
      throw new CompactionError(
        `bucket ${report.bucket}'s report names ${named.join(', ')}, not its attempt's parts (${own.join(', ')}): nothing was published`,
      );
    }
    if (report.range_attempts.join() !== current.join()) {
      throw new CompactionError(`bucket ${report.bucket} was reduced from map outputs that have since been replaced`);
    }
  }
  return reports;
}

/** A plan or report a task wrote; missing means its task has not finished (an error here). */
async function readTaskFile<T>(store: ObjectStore, key: string, what: string): Promise<T> {
  try {
    return await requireJson<T>(store, key, 'split work file');
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

export async function putJson(store: ObjectStore, key: string, body: unknown): Promise<void> {
  await store.putBytes(key, JSON.stringify(body), { contentType: 'application/json' });
}

export async function deleteAll(store: ObjectStore, prefix: string): Promise<void> {
  const objects = await listAll(store, prefix);
  await mapLimit(objects, 8, (o) => store.delete(o.key));
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * Where reduce `bucket`'s attempt places its part `j`: in the partition's folder, under a name no other task
 * or attempt uses (`part-<j>-<splitId>-<bucket>-<16 hex digits of the attempt>.parquet`).
 */
export function placedPartKey(ref: SplitRef, bucket: number, attempt: string, j: number): string {
  return analyticsKey(ref.tenant, ref.date, `${ref.splitId}-${bucket}-${attempt.replace(/-/g, '').slice(0, 16)}`, j);
}

/** An intermediate is the version its report names, or it was replaced by another attempt since. */
export function assertVersion(info: ObjectInfo, etag: string, reported: string): void {
  if (info.etag !== etag) {
    throw new CompactionError(`${info.key} is not the version ${reported} (another attempt replaced it): nothing was published`, {
      context: { key: info.key },
    });
  }
}
