import { join } from 'node:path';
import type { DuckDBInstance } from '@duckdb/node-api';
import type { CompactionDeps, PartitionResult } from '../../src/compaction/compactPartition.js';
import { compactJobs } from '../../src/compaction/compactTenants.js';
import { lockKey } from '../../src/staging/layout.js';
import { TransientStoreError } from '../../src/store/errors.js';
import type { DeleteOptions, ObjectInfo, ObjectStore, PutOptions } from '../../src/store/ObjectStore.js';

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

/**
 * A decorator for one run's view of the store: records every key that run writes or deletes outside
 * `locks/`, and once `cut()` is called its lease writes fail (as if the run were cut off from the store or
 * paused), so its lease lapses while it works.
 */
export class CutOffStore implements ObjectStore {
  readonly location: string;
  readonly written: string[] = [];
  private leaseCut = false;

  constructor(private readonly inner: ObjectStore) {
    this.location = inner.location;
  }

  cut(): void {
    this.leaseCut = true;
  }

  list(prefix: string) {
    return this.inner.list(prefix);
  }
  listFolders(prefix: string) {
    return this.inner.listFolders(prefix);
  }
  head(key: string) {
    return this.inner.head(key);
  }
  getStream(key: string) {
    return this.inner.getStream(key);
  }
  getToFile(key: string, path: string) {
    return this.inner.getToFile(key, path);
  }
  putBytes(key: string, body: Uint8Array | string, options?: PutOptions): Promise<ObjectInfo> {
    this.check(key);
    return this.inner.putBytes(key, body, options);
  }
  putFile(key: string, path: string, options?: PutOptions): Promise<ObjectInfo> {
    this.check(key);
    return this.inner.putFile(key, path, options);
  }
  delete(key: string, options?: DeleteOptions): Promise<void> {
    this.check(key);
    return this.inner.delete(key, options);
  }

  private check(key: string): void {
    if (!key.startsWith('locks/')) this.written.push(key);
    else if (this.leaseCut) throw new TransientStoreError(`injected: ${key} unreachable`, { context: { key } });
  }
}

/**
 * Two runs of one tenant-day where the first stalls right before its upload (a slow commit) long enough
 * for its lease to lapse (its renewals fail meanwhile); the second takes the lease over and compacts; then
 * the first resumes. Returns both results and what each wrote.
 */
export async function runStalledCommit(
  store: ObjectStore,
  db: DuckDBInstance,
  workDirectory: string,
  tenant: string,
  date: string,
  leaseMs: number,
): Promise<{ stalled: PartitionResult; other: PartitionResult; stalledWrote: string[]; otherWrote: string[] }> {
  const slow = new CutOffStore(store);
  const fast = new CutOffStore(store);
  let resume!: () => void;
  let stalling!: () => void;
  const gate = new Promise<void>((r) => {
    resume = r;
  });
  const atCommit = new Promise<void>((r) => {
    stalling = r;
  });
  const first = compactJobs(
    {
      store: slow,
      db,
      workDirectory: join(workDirectory, 'stalled'),
      leaseMs,
      onPhase: async (phase) => {
        if (phase !== 'uploading') return;
        slow.cut();
        stalling();
        await gate;
      },
    },
    [{ tenant, date }],
    { concurrency: 1 },
  );
  await atCommit;
  // past its lease, with room for a renewal that was in flight when the stall began
  await new Promise((r) => setTimeout(r, 2 * leaseMs + 100));
  const [other] = await compactJobs(
    { store: fast, db, workDirectory: join(workDirectory, 'other'), leaseMs },
    [{ tenant, date }],
    {
      concurrency: 1,
    },
  );
  resume();
  const [stalled] = await first;
  return {
    stalled: stalled as PartitionResult,
    other: other as PartitionResult,
    stalledWrote: slow.written,
    otherWrote: fast.written,
  };
}
