import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { DuckDBInstance } from '@duckdb/node-api';
import { lockKey } from '../../src/core/staging/layout.js';
import type { CompactionDeps, PartitionResult } from '../../src/engine/compactPartition.js';
import { compactJobs } from '../../src/engine/compactTenants.js';
import { DeltaTable, partitionFiles, TAG_RUN, tableKey } from '../../src/lake/table/deltaTable.js';
import { PreconditionFailedError, TransientStoreError } from '../../src/ports/store/errors.js';
import {
  type DeleteOptions,
  getBytes,
  type ObjectInfo,
  type ObjectStore,
  type PutOptions,
} from '../../src/ports/store/ObjectStore.js';

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
 * `locks/` (once the store accepted it) and every write the store refused (put-if-absent on a key that
 * exists); once `cut()` is called its lease writes fail (as if the run were cut off from the store or
 * paused), so its lease lapses while it works. `holdWrites` pauses the writes of matching keys (the write has
 * left the run, the store has not received it) until the gate opens.
 */
export class CutOffStore implements ObjectStore {
  readonly location: string;
  readonly written: string[] = [];
  readonly refused: string[] = [];
  private leaseCut = false;
  private hold: { match: (key: string) => boolean; gate: Promise<void>; onHold: () => void } | undefined;

  constructor(private readonly inner: ObjectStore) {
    this.location = inner.location;
  }

  cut(): void {
    this.leaseCut = true;
  }

  /** The first write of a key that `match` accepts cuts the lease off, calls `onHold` and waits for `gate`. */
  holdWrites(match: (key: string) => boolean, gate: Promise<void>, onHold: () => void): void {
    this.hold = { match, gate, onHold };
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
    return this.write(key, () => this.inner.putBytes(key, body, options));
  }
  putFile(key: string, path: string, options?: PutOptions): Promise<ObjectInfo> {
    return this.write(key, () => this.inner.putFile(key, path, options));
  }
  delete(key: string, options?: DeleteOptions): Promise<void> {
    return this.write(key, () => this.inner.delete(key, options));
  }

  private async write<T>(key: string, operation: () => Promise<T>): Promise<T> {
    if (key.startsWith('locks/')) {
      if (this.leaseCut) throw new TransientStoreError(`injected: ${key} unreachable`, { context: { key } });
      return operation();
    }
    const hold = this.hold;
    if (hold?.match(key)) {
      this.hold = undefined;
      this.cut();
      hold.onHold();
      await hold.gate;
    }
    try {
      const result = await operation();
      this.written.push(key);
      return result;
    } catch (error) {
      if (error instanceof PreconditionFailedError) this.refused.push(key);
      throw error;
    }
  }
}

/** Where the stalled run stops: before its upload, or with its table commit in flight (sent, not yet received). */
export type StallPoint = 'before-upload' | 'commit-in-flight';

/** A published file as a reader would get it: key, size in the version, size and content hash in the store. */
export interface PublishedFile {
  readonly key: string;
  readonly size: number;
  readonly run: string | undefined;
  readonly storedSize: number | undefined;
  readonly sha256: string | undefined;
}

/** The partition's files in the table's current version, each read back from the store. */
export async function publishedFiles(
  store: ObjectStore,
  tenant: string,
  date: string,
): Promise<{ version: number; files: PublishedFile[] }> {
  const snapshot = await new DeltaTable(store, {}).snapshot();
  const files: PublishedFile[] = [];
  for (const add of partitionFiles(snapshot, tenant, date)) {
    const key = tableKey(add.path);
    const info = await store.head(key);
    const bytes = info ? await getBytes(store, key) : undefined;
    files.push({
      key,
      size: add.size,
      run: add.tags?.[TAG_RUN],
      storedSize: info?.size,
      sha256: bytes && createHash('sha256').update(bytes).digest('hex'),
    });
  }
  return { version: snapshot.version, files };
}

export interface StalledCommitOutcome {
  readonly stalled: PartitionResult;
  readonly other: PartitionResult;
  /** Keys each run wrote or deleted (outside `locks/`) that the store accepted. */
  readonly stalledWrote: string[];
  readonly otherWrote: string[];
  /** Writes of the stalled run the store refused (its table commit, put-if-absent on a version that exists). */
  readonly stalledRefused: string[];
  /** The stalled run's engine events (`partition.commit_conflict` and the like) with their error. */
  readonly stalledEvents: { event: string; error?: string }[];
  /** The partition in the table right after the taker's run, before the stalled run resumes; and at the end. */
  readonly afterTaker: { version: number; files: PublishedFile[] };
  readonly atEnd: { version: number; files: PublishedFile[] };
}

/**
 * Two runs of one tenant-day where the first stalls (a slow commit, a paused VM) long enough for its lease to
 * lapse (its renewals fail meanwhile); the second takes the lease over and compacts; then the first resumes.
 * `stall` is where the first stops: right before its upload (`before-upload`), or with the write of its
 * table commit in flight (`commit-in-flight`: its parts and run manifest are in the store, the commit reaches
 * the store only after the second run committed). Returns both results, what each wrote, and the partition's
 * published files before and after the first resumed.
 */
export async function runStalledCommit(
  store: ObjectStore,
  db: DuckDBInstance,
  workDirectory: string,
  tenant: string,
  date: string,
  leaseMs: number,
  stall: StallPoint = 'before-upload',
): Promise<StalledCommitOutcome> {
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
  if (stall === 'commit-in-flight') slow.holdWrites((key) => /\/_delta_log\/\d{20}\.json$/.test(key), gate, stalling);
  const stalledEvents: { event: string; error?: string }[] = [];
  const first = compactJobs(
    {
      store: slow,
      db,
      workDirectory: join(workDirectory, 'stalled'),
      leaseMs,
      log: (event, fields) => stalledEvents.push(typeof fields.error === 'string' ? { event, error: fields.error } : { event }),
      onPhase: async (phase) => {
        if (stall !== 'before-upload' || phase !== 'uploading') return;
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
  const afterTaker = await publishedFiles(store, tenant, date);
  resume();
  const [stalled] = await first;
  return {
    stalled: stalled as PartitionResult,
    other: other as PartitionResult,
    stalledWrote: slow.written,
    otherWrote: fast.written,
    stalledRefused: slow.refused,
    stalledEvents,
    afterTaker,
    atEnd: await publishedFiles(store, tenant, date),
  };
}
