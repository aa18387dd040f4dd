/**
 * When a tenant-day is split and into how many tasks: small and free of the engine, so that the config and
 * the planners can use it. The split itself is splitPartition.ts.
 */
import { UsageError } from './errors.js';

/** K map tasks (ranges of the inputs), B reduce tasks (buckets of message ids). */
export interface SplitShape {
  readonly ranges: number;
  readonly buckets: number;
}

/** The most ranges or buckets one split may have. */
export const MAX_SPLIT_TASKS = 256;

/**
 * Staging bytes above which a tenant-day is split when no SPLIT_THRESHOLD_BYTES is set (docs/SCALING.md,
 * "Threshold": about a quarter of the staging a single pass handles within one Lambda's 10 GB of /tmp).
 */
export const DEFAULT_SPLIT_THRESHOLD_BYTES = 1024 * 1024 * 1024;

/** The most tasks per stage a planner gives a split (a job may ask for up to MAX_SPLIT_TASKS). */
export const MAX_PLANNED_SPLIT_TASKS = 64;

/**
 * The shape of a split for a tenant-day of `stagingBytes`, or undefined when it stays a single pass
 * (below the threshold, or `thresholdBytes` 0: never split). Each task takes about half a threshold's
 * worth: K = B = ceil(2 · bytes / threshold), at least 2, at most MAX_PLANNED_SPLIT_TASKS.
 */
export function splitShapeFor(stagingBytes: number, thresholdBytes: number): SplitShape | undefined {
  if (thresholdBytes <= 0 || stagingBytes < thresholdBytes) return undefined;
  const tasks = Math.min(MAX_PLANNED_SPLIT_TASKS, Math.max(2, Math.ceil((2 * stagingBytes) / thresholdBytes)));
  return { ranges: tasks, buckets: tasks };
}

/** Validates a split shape (a job's `split` field, a CLI option): whole numbers from 1 to MAX_SPLIT_TASKS. */
export function assertSplitShape(shape: SplitShape, what = 'split'): SplitShape {
  for (const field of ['ranges', 'buckets'] as const) {
    const n = shape[field];
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1 || n > MAX_SPLIT_TASKS) {
      throw new UsageError(`${what}.${field} must be a whole number from 1 to ${MAX_SPLIT_TASKS}, got ${JSON.stringify(n)}`);
    }
  }
  return { ranges: shape.ranges, buckets: shape.buckets };
}
