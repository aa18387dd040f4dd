import type { PartitionStatus } from './compactPartition.js';

/**
 * Whether a partition result counts as failed: it failed, or another run held the partition (`locked`), so
 * it was not compacted by this run. The run's `ok`, the "failed" lists of the finished lines, the progress
 * line and a job's retry all use this one rule.
 */
export function resultFailed(result: { readonly status: PartitionStatus }): boolean {
  return result.status === 'failed' || result.status === 'locked';
}
