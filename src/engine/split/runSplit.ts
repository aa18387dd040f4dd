/** The in-process driver: every task of a split in this process, in order. */
import { errorMessage } from '../../core/errors.js';
import type { CompactionDeps, PartitionResult } from '../compactPartition.js';
import { abandonSplit } from './abandon.js';
import { commitSplit } from './commit.js';
import { mapRange } from './map.js';
import { startSplit } from './plan.js';
import { reduceBucket } from './reduce.js';
import type { SplitMode, SplitShape } from './splitRef.js';

/**
 * All tasks in one process, in order (the CLI, tests, the bench): start, K maps, B reduces, commit. A task
 * that fails abandons the split: the result is 'failed' with the reason, and nothing is published. The lease
 * is the single pass's (SplitMode 'in-process'): a split whose process was killed holds the day no longer
 * than a killed single pass does.
 */
export async function runSplit(deps: CompactionDeps, tenant: string, date: string, shape: SplitShape): Promise<PartitionResult> {
  const mode: SplitMode = 'in-process';
  const started = await startSplit(deps, tenant, date, shape, mode);
  if ('result' in started) return started.result;
  const { ref } = started;
  try {
    for (let range = 0; range < ref.ranges; range++) await mapRange(deps, ref, range, mode);
    for (let bucket = 0; bucket < ref.buckets; bucket++) await reduceBucket(deps, ref, bucket, mode);
    return await commitSplit(deps, ref, mode);
  } catch (error) {
    const reason = `compaction of tenant ${ref.tenant} for ${ref.date} failed: ${errorMessage(error)}`;
    return await abandonSplit(deps, ref, reason, mode);
  }
}
