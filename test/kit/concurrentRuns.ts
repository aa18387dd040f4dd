import { join } from 'node:path';
import type { DuckDBInstance } from '@duckdb/node-api';
import type { CompactionDeps, PartitionResult } from '../../src/compaction/compactPartition.js';
import { compactJobs } from '../../src/compaction/compactTenants.js';
import { lockKey } from '../../src/staging/layout.js';
import type { ObjectStore } from '../../src/store/ObjectStore.js';

export interface ConcurrentRunsResult {
  /** The run that took the lease first (held it while the other tried). */
  readonly first: PartitionResult;
  /** The run started while the first held the lease. */
  readonly second: PartitionResult;
  /** Whether the lease object existed while the first run was inside the partition. */
  readonly leaseSeen: boolean;
}

/**
 * Two compactions of the same tenant-day at once, as a manual run during the nightly one: the first is
 * held inside the partition (just after taking the lease) until the second has finished trying.
 */
export async function runConcurrentCompactions(
  store: ObjectStore,
  db: DuckDBInstance,
  workDirectory: string,
  tenant: string,
  date: string,
  now: number,
): Promise<ConcurrentRunsResult> {
  let inside!: () => void;
  let resume!: () => void;
  const entered = new Promise<void>((r) => {
    inside = r;
  });
  const gate = new Promise<void>((r) => {
    resume = r;
  });
  const deps = (name: string, onPhase?: CompactionDeps['onPhase']): CompactionDeps => ({
    store,
    db,
    workDirectory: join(workDirectory, name),
    now: () => now,
    onPhase,
  });
  const first = compactJobs(
    deps('first', async (phase) => {
      if (phase !== 'locked') return;
      inside();
      await gate;
    }),
    [{ tenant, date }],
    { concurrency: 1 },
  );
  await entered;
  const leaseSeen = (await store.head(lockKey(tenant, date))) !== undefined;
  const second = await compactJobs(deps('second'), [{ tenant, date }], { concurrency: 1 });
  resume();
  const [firstResult] = await first;
  return { first: firstResult as PartitionResult, second: second[0] as PartitionResult, leaseSeen };
}
