/**
 * The lake's table: `analytics/messages/` as a Delta Lake table (delta-io/delta PROTOCOL.md, reader version
 * 1, writer version 2), written by this module alone. A version becomes visible only when its commit file
 * `_delta_log/<version>.json` is created put-if-absent, so every reader sees whole commits, two writers can
 * never both write one version, and a commit whose reply was lost is settled by reading that file back.
 * Data files are never overwritten (their names are unique to a run and attempt); vacuum.ts removes what no
 * retained version references.
 *
 * The snapshot is found from `_last_checkpoint`, that checkpoint, and the commits after it, listed by the
 * prefixes of their versions (ten versions a listing), so its cost does not grow with the table's history.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DuckDBInstance } from '@duckdb/node-api';
import { ANALYTICS_ROOT } from '../../core/staging/layout.js';
import { openDuckDb } from '../../ports/duckdb/openDuckDb.js';
import { ObjectNotFoundError, PreconditionFailedError, StoreError } from '../../ports/store/errors.js';
import { getBytes, listAll, type ObjectInfo, type ObjectStore } from '../../ports/store/ObjectStore.js';
import {
  type AddAction,
  checkpointFileName,
  commitFileName,
  type DeltaAction,
  LAST_CHECKPOINT_NAME,
  type LastCheckpoint,
  LOG_FOLDER,
  logFileVersion,
  type MetadataAction,
  type PartitionValues,
  type ProtocolAction,
  pad,
  parseActions,
  type RemoveAction,
  serialiseActions,
  type TxnAction,
} from './actions.js';
import { readCheckpointFile, writeCheckpointFile } from './checkpointFile.js';
import { CommitConflictError, TableReadError } from './errors.js';

/** Where the table lives under the store's root. */
export const TABLE_ROOT = ANALYTICS_ROOT;

/** Delta's defaults: a checkpoint every 10 commits; removed files kept for time travel for 7 days. */
export const DEFAULT_CHECKPOINT_INTERVAL = 10;
export const DEFAULT_RETENTION_MS = 7 * 24 * 3_600_000;
/** Commit files are kept this long once a checkpoint covers them (Delta's delta.logRetentionDuration). */
export const DEFAULT_LOG_RETENTION_MS = 30 * 24 * 3_600_000;

/** Tags this project sets on every add: readers ignore them; the compactor reads the partition's state from them. */
export const TAG_RUN = 'makoto.run_id';
/** The run's manifest object (counts, staging inputs folded in): immutable, named only here. */
export const TAG_MANIFEST = 'makoto.manifest';
/** The partition's remembered-deletes file, when it has one. */
export const TAG_DELETES = 'makoto.deletes';
/** The lines the run quarantined, when it rejected any. */
export const TAG_QUARANTINE = 'makoto.quarantine';

export const PROTOCOL: ProtocolAction = { minReaderVersion: 1, minWriterVersion: 2 };

/** One version of the table as a reader sees it. */
export interface TableSnapshot {
  /** -1: no table yet. */
  readonly version: number;
  /** When that version was committed (its commit file's time). */
  readonly timestamp: number;
  readonly protocol: ProtocolAction | undefined;
  readonly metadata: MetadataAction | undefined;
  /** Live files by path. */
  readonly files: ReadonlyMap<string, AddAction>;
  /** Files removed within the retention (time travel still needs them), by path. */
  readonly removed: ReadonlyMap<string, RemoveAction>;
  readonly txns: ReadonlyMap<string, TxnAction>;
}

export const EMPTY_SNAPSHOT: TableSnapshot = {
  version: -1,
  timestamp: 0,
  protocol: undefined,
  metadata: undefined,
  files: new Map(),
  removed: new Map(),
  txns: new Map(),
};

/** `tenant_id=<t>/dt=<d>`: how a partition is named in maps. */
export const partitionId = (values: PartitionValues | null | undefined) => `tenant_id=${values?.tenant_id}/dt=${values?.dt}`;

/** The live files of one partition. */
export function partitionFiles(snapshot: TableSnapshot, tenant: string, date: string): AddAction[] {
  const id = partitionId({ tenant_id: tenant, dt: date });
  return [...snapshot.files.values()].filter((a) => partitionId(a.partitionValues) === id).sort(byPath);
}

/** The store key of a table path (Delta paths are URL-encoded and relative to the table root). */
export const tableKey = (path: string) => `${TABLE_ROOT}${decodeURIComponent(path)}`;
/** The table path of a store key under the table root. */
export const tablePath = (key: string) => {
  if (!key.startsWith(TABLE_ROOT)) throw new RangeError(`${key} is not under ${TABLE_ROOT}`);
  // a URI path, as Spark and delta-rs write them: `=` and `/` stay as they are
  return encodeURI(key.slice(TABLE_ROOT.length));
};

/** The add action of a data file as the store reports it after the upload (key, size, time), with its stats and tags. */
export function addOf(
  info: ObjectInfo,
  partitionValues: PartitionValues,
  stats: string | null,
  tags: Record<string, string>,
): AddAction {
  return {
    path: tablePath(info.key),
    partitionValues,
    size: info.size,
    modificationTime: info.lastModified.getTime(),
    dataChange: true,
    stats,
    tags,
  };
}

/** What one commit changes, as the engine hands it over. */
export interface TableChange {
  /** Partitions this commit replaces (`partitionId`): a newer commit touching one of them is a conflict. */
  readonly partitions: readonly string[];
  readonly adds: readonly AddAction[];
  readonly removes: readonly RemoveAction[];
  readonly txns: readonly TxnAction[];
  /** Free-form facts for `commitInfo` (the run id, counts). */
  readonly info: Record<string, unknown>;
}

export interface DeltaTableOptions {
  /** A DuckDB instance: checkpoints are Parquet (without one, a small instance is opened while one is read or written). */
  readonly db?: DuckDBInstance;
  /** Where checkpoints are written and read locally (default: the OS temp folder). */
  readonly workDirectory?: string;
  readonly checkpointInterval?: number;
  readonly now?: () => number;
  readonly log?: (event: string, fields: Record<string, unknown>) => void;
  /** The table's folder in the store, ending in '/' (default `analytics/messages/`). */
  readonly root?: string;
  /** At most this many changes (partitions) in one version (group commit); 1 = one version per change. */
  readonly maxBatch?: number;
}

/** Listings of the log taken when one shows a gap between versions, before the gap is reported (commitsFrom). */
const LISTINGS_ON_A_GAP = 3;

/**
 * The table of one store. Shared by every partition of a run: the snapshot is cached and brought up to date
 * by reading only the commits after the cached version.
 *
 * @example
 * const table = new DeltaTable(store, { db, workDirectory });
 * const snapshot = await table.snapshot();
 * const version = await table.commit(change, snapshot.version);
 */
export class DeltaTable {
  private latest: Promise<TableSnapshot> | undefined;
  /** Changes waiting for the next version (group commit), and whether a batch is being written now. */
  private pending: PendingCommit[] = [];
  private draining = false;
  /** The actions of the versions this object wrote, so bringing its snapshot forward need not read them back. */
  private readonly written = new Map<number, DeltaAction[]>();
  /** Checkpoints this object is writing or wrote, by version. */
  private readonly checkpoints = new Map<number, Promise<void>>();
  /** At most this many changes in one version. */
  readonly maxBatch: number;
  /** What the commits this object wrote or read changed, by version, and the newest such version. */
  private readonly seen = new Map<number, CommitFacts>();
  private known = -1;
  readonly checkpointInterval: number;
  private readonly now: () => number;
  /** The table's root folder in the store (the one holding `_delta_log/`). */
  readonly root: string;

  constructor(
    readonly store: ObjectStore,
    private readonly options: DeltaTableOptions,
  ) {
    this.checkpointInterval = options.checkpointInterval ?? DEFAULT_CHECKPOINT_INTERVAL;
    this.maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
    this.now = options.now ?? Date.now;
    this.root = options.root ?? TABLE_ROOT;
  }

  /** The current snapshot (the cached one brought forward), or the one at a version or instant (time travel). */
  async snapshot(asOf?: { version?: number; timestamp?: number }): Promise<TableSnapshot> {
    if (asOf?.version !== undefined || asOf?.timestamp !== undefined) return this.snapshotAsOf(asOf);
    const previous = this.latest;
    const next = (async () => {
      const base = previous ? await previous.catch(() => undefined) : undefined;
      return base ? this.forward(base) : this.load();
    })();
    this.latest = next;
    return next;
  }

  /**
   * The current version as one partition's compaction needs it: the version, and that partition's live files
   * (other partitions' files only as far as the commits after the checkpoint name them). When this object
   * already holds the whole snapshot it is brought forward; otherwise only the partition's rows of the
   * checkpoint are read, so one job's cost does not grow with the table's size.
   */
  async partitionSnapshot(partition: PartitionValues): Promise<TableSnapshot> {
    if (this.latest) return this.snapshot();
    const hint = await this.lastCheckpoint();
    let base = EMPTY_SNAPSHOT;
    if (hint) {
      try {
        base = await this.readCheckpoint(hint.version, partition);
      } catch (error) {
        if (!(error instanceof ObjectNotFoundError)) throw error;
      }
    }
    return this.forward(base);
  }

  /** Loads the current snapshot from the latest checkpoint and the commits after it. */
  private async load(): Promise<TableSnapshot> {
    const hint = await this.lastCheckpoint();
    let base = EMPTY_SNAPSHOT;
    if (hint) {
      try {
        base = await this.readCheckpoint(hint.version);
      } catch (error) {
        if (!(error instanceof ObjectNotFoundError)) throw error;
        // a hint left by a checkpoint removed since: read from the start
        base = EMPTY_SNAPSHOT;
      }
    }
    return this.forward(base);
  }

  /**
   * Applies the commits after `base.version`, found ten versions at a time by prefix. When the commit after
   * the base is gone (no version 0 and no usable `_last_checkpoint`: the log was cleaned up, or an erase is
   * deleting the versions below its checkpoint while this reads), the newest checkpoint a full listing finds
   * is the base instead: a reader never fails on a cleanup in progress.
   */
  private async forward(base: TableSnapshot): Promise<TableSnapshot> {
    const commits = await this.commitsFrom(base.version + 1);
    const first = commits[0] ? logFileVersion(commits[0].key)?.version : undefined;
    if (first === undefined ? base.version === -1 : first !== base.version + 1) {
      const newest = await this.newestCheckpoint();
      if (newest && newest.version > base.version) return this.forward(await this.readCheckpoint(newest.version));
      if (base.version === -1 && first === undefined) {
        const any = await listAll(this.store, `${this.root}${LOG_FOLDER}`);
        if (any.some((o) => logFileVersion(o.key)?.kind === 'commit')) {
          throw new TableReadError('the Delta log has commits but no version 0 and no checkpoint');
        }
      }
    }
    return this.replay(base, commits);
  }

  /**
   * The commit files of versions `from` and later, in version order, without a gap between them. A version is
   * written only by a writer that read the one before it, so a gap is a listing that raced with commits (a
   * folder read while files were added: its entries come in hash order, so a file added meanwhile can be
   * missed while a later one is seen): listed again, a few times, before replay calls the log broken.
   */
  private async commitsFrom(from: number): Promise<ObjectInfo[]> {
    for (let attempt = 1; ; attempt++) {
      const commits = await this.listCommitsFrom(from);
      const versions = commits.map((o) => logFileVersion(o.key)?.version as number);
      if (attempt === LISTINGS_ON_A_GAP || versions.every((v, i) => i === 0 || v === (versions[i - 1] as number) + 1))
        return commits;
    }
  }

  /** The commit files of versions `from` and later as one listing shows them: one LIST per ten versions. */
  private async listCommitsFrom(from: number): Promise<ObjectInfo[]> {
    const commits: ObjectInfo[] = [];
    for (let decade = Math.floor(from / 10); ; decade++) {
      const listed = await listAll(this.store, `${this.root}${LOG_FOLDER}${pad(decade * 10).slice(0, 19)}`);
      for (const o of listed) {
        const v = logFileVersion(o.key);
        if (v?.kind === 'commit' && v.version >= from) commits.push(o);
      }
      const last = Math.max(-1, ...listed.map((o) => logFileVersion(o.key)?.version ?? -1));
      if (last < decade * 10 + 9) break;
    }
    return commits.sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  private async replay(base: TableSnapshot, commits: readonly ObjectInfo[]): Promise<TableSnapshot> {
    const sorted = [...commits].sort((a, b) => a.key.localeCompare(b.key));
    const state = mutable(base);
    for (const info of sorted) {
      const version = logFileVersion(info.key)?.version as number;
      if (version !== state.version + 1) {
        throw new TableReadError(`the Delta log jumps from version ${state.version} to ${version}`, {
          context: { version },
        });
      }
      const actions = this.written.get(version) ?? (await this.readCommit(version));
      this.remember(version, actions);
      apply(state, actions, version, info.lastModified.getTime());
    }
    return frozen(state);
  }

  /** The snapshot at a version, or the last version committed at or before an instant. */
  private async snapshotAsOf(asOf: { version?: number; timestamp?: number }): Promise<TableSnapshot> {
    const listed = await listAll(this.store, `${this.root}${LOG_FOLDER}`);
    const commits = listed.filter((o) => logFileVersion(o.key)?.kind === 'commit');
    let target: number;
    if (asOf.version !== undefined) target = asOf.version;
    else {
      const at = commits.filter((o) => o.lastModified.getTime() <= (asOf.timestamp as number));
      if (at.length === 0)
        throw new TableReadError(
          `no table version was committed at or before ${new Date(asOf.timestamp as number).toISOString()}`,
        );
      target = Math.max(...at.map((o) => logFileVersion(o.key)?.version as number));
    }
    const checkpoints = listed
      .map((o) => logFileVersion(o.key))
      .filter((v) => v?.kind === 'checkpoint' && v.version <= target)
      .map((v) => v?.version as number);
    const start = checkpoints.length > 0 ? Math.max(...checkpoints) : -1;
    const needed = commits.filter((o) => {
      const v = logFileVersion(o.key)?.version as number;
      return v > start && v <= target;
    });
    if (start + needed.length !== target) {
      throw new TableReadError(`table version ${target} cannot be read: its commits are no longer kept`, {
        context: { version: target },
      });
    }
    const base = start >= 0 ? await this.readCheckpoint(start) : EMPTY_SNAPSHOT;
    return this.replay(base, needed);
  }

  private async readCommit(version: number): Promise<DeltaAction[]> {
    const key = `${this.root}${commitFileName(version)}`;
    return parseActions(key, (await getBytes(this.store, key)).toString('utf8'));
  }

  private async lastCheckpoint(): Promise<LastCheckpoint | undefined> {
    try {
      const hint = JSON.parse((await getBytes(this.store, `${this.root}${LAST_CHECKPOINT_NAME}`)).toString('utf8'));
      return Number.isSafeInteger(hint?.version) ? (hint as LastCheckpoint) : undefined;
    } catch (error) {
      // only a hint: missing or torn, the log is read from its start
      if (error instanceof ObjectNotFoundError || error instanceof SyntaxError) return undefined;
      throw error;
    }
  }

  /** The newest checkpoint in the log, from a listing of all of it (only when `_last_checkpoint` is missing). */
  private async newestCheckpoint(): Promise<LastCheckpoint | undefined> {
    const versions = (await listAll(this.store, `${this.root}${LOG_FOLDER}`))
      .map((o) => logFileVersion(o.key))
      .filter((v) => v?.kind === 'checkpoint')
      .map((v) => v?.version as number);
    return versions.length > 0 ? { version: Math.max(...versions), size: 0 } : undefined;
  }

  private async readCheckpoint(version: number, partition?: PartitionValues): Promise<TableSnapshot> {
    return this.withCheckpointWork(async (db, work) => {
      const file = join(work, 'checkpoint.parquet');
      const info = await this.store.getToFile(`${this.root}${checkpointFileName(version)}`, file);
      const state = mutable(EMPTY_SNAPSHOT);
      apply(state, await readCheckpointFile(db, file, partition), version, info.lastModified.getTime());
      return frozen(state);
    });
  }

  /** A temp folder and a DuckDB instance (the caller's, or a small one opened for this) for one checkpoint. */
  private async withCheckpointWork<T>(work: (db: DuckDBInstance, folder: string) => Promise<T>): Promise<T> {
    // a job's work folder may not exist yet when its first snapshot reads a checkpoint (a fresh invocation)
    const parent = this.options.workDirectory ?? tmpdir();
    await mkdir(parent, { recursive: true });
    const folder = await mkdtemp(join(parent, 'delta-checkpoint-'));
    const db = this.options.db ?? (await openDuckDb({ memoryLimit: '512MB', threads: 1, workDirectory: folder }));
    try {
      return await work(db, folder);
    } finally {
      if (!this.options.db) db.closeSync();
      await rm(folder, { recursive: true, force: true });
    }
  }

  /**
   * Commits `change` as the version after `readVersion`, or after any newer version whose commits touch
   * none of `change.partitions` (then it is retried there); a newer commit on one of them is a
   * CommitConflictError. The first version of a table also carries its protocol and metadata. Returns the
   * version written. A write whose outcome is unknown (a lost reply, a timeout) is settled by reading that
   * version back: the commit carries a unique id in its commitInfo.
   *
   * Group commit: the changes handed to this object while its previous commit is being written go into the
   * next version together (one log file adding many partitions' files), up to `maxBatch` of them. A conflict
   * on one of them rejects only that change (its partition re-plans); the others are written at the next
   * version. Changes of the same partition never share a version (the later one waits for the next).
   */
  async commit(change: TableChange, readVersion: number, metadata: () => MetadataAction): Promise<number> {
    const version = await new Promise<number>((resolve, reject) => {
      this.pending.push({ change, readVersion, metadata, touched: new Set(change.partitions), resolve, reject });
      void this.drain();
    });
    // outside the commit loop: a checkpoint never holds up the next commit
    await this.checkpointIfDue(version);
    return version;
  }

  /** Writes the waiting changes, a batch a version, one batch at a time (commits of one process never race). */
  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.pending.length > 0) {
        const batch = this.takeBatch();
        await this.commitBatch(batch).catch((error: unknown) => {
          for (const entry of batch) entry.reject(error);
        });
      }
    } finally {
      this.draining = false;
    }
  }

  /** The next batch: waiting changes in arrival order, none sharing a partition with an earlier one. */
  private takeBatch(): PendingCommit[] {
    const batch: PendingCommit[] = [];
    const taken = new Set<string>();
    const waiting: PendingCommit[] = [];
    for (const entry of this.pending) {
      const overlaps = [...entry.touched].some((p) => taken.has(p));
      if (overlaps || batch.length >= this.maxBatch) waiting.push(entry);
      else {
        batch.push(entry);
        for (const p of entry.touched) taken.add(p);
      }
    }
    this.pending = waiting;
    return batch;
  }

  private async commitBatch(entries: readonly PendingCommit[]): Promise<void> {
    const commitId = randomUUID();
    let live = [...entries];
    // a newer version touching a change's partitions rejects that change alone; the batch goes on without it
    const check = (facts: CommitFacts, version: number) => {
      live = live.filter((entry) => {
        const conflict = version > entry.readVersion ? conflictOf(facts, entry.touched, version) : undefined;
        if (conflict) entry.reject(conflict);
        return !conflict;
      });
    };
    let version = Math.min(...live.map((e) => e.readVersion)) + 1;
    for (; version <= this.known; version++) check(this.seen.get(version) ?? factsOf(await this.readCommit(version)), version);
    for (let unknownTries = 0; ; ) {
      if (live.length === 0) return;
      const actions = batchActions(live, version, commitId, this.now());
      const key = `${this.root}${commitFileName(version)}`;
      try {
        await this.store.putBytes(key, serialiseActions(actions), { ifNoneMatch: '*', contentType: 'application/json' });
        this.committed(version, live, actions, false);
        return;
      } catch (error) {
        if (!(error instanceof PreconditionFailedError)) {
          // unknown outcome: read the version back (bounded), and write again only if it is absent
          if (!(error instanceof StoreError) || ++unknownTries > 5) throw error;
          const written = await this.readCommit(version).catch((readError: unknown) => {
            if (readError instanceof ObjectNotFoundError) return undefined;
            throw readError;
          });
          if (written === undefined) continue;
          if (commitIdOf(written) === commitId) {
            this.committed(version, live, written, true);
            return;
          }
          check(this.remember(version, written), version);
          version++;
          continue;
        }
        // every version written since: ours (the store's client retried a write whose reply was lost), or a
        // conflict, or else the commit is tried again after the newest of them
        let newest = version;
        for (const info of await this.commitsFrom(version)) {
          const v = logFileVersion(info.key)?.version as number;
          const winner = await this.readCommit(v);
          if (commitIdOf(winner) === commitId) {
            this.committed(v, live, winner, true);
            return;
          }
          check(this.remember(v, winner), v);
          newest = Math.max(newest, v);
        }
        version = newest + 1;
        this.options.log?.('table.commit_retried', { version, partitions: live.reduce((n, e) => n + e.touched.size, 0) });
      }
    }
  }

  /**
   * A commit that landed (`settled`: found by reading it back): remembered (its actions too, so this object's
   * snapshot is brought forward over it without reading it back), logged, and each change told its version.
   */
  private committed(version: number, entries: readonly PendingCommit[], actions: DeltaAction[], settled: boolean): void {
    const partitions = new Set(entries.flatMap((e) => [...e.touched]));
    this.seen.set(version, { partitions, table: version === 0 });
    this.known = Math.max(this.known, version);
    this.written.set(version, actions);
    if (this.written.size > MAX_WRITTEN_KEPT) this.written.delete(Math.min(...this.written.keys()));
    this.options.log?.('table.committed', {
      version,
      partitions: partitions.size,
      ...(entries.length > 1 ? { batched: entries.length } : {}),
      ...(settled ? { settled } : {}),
    });
    for (const entry of entries) entry.resolve(version);
  }

  /** What a commit changed, kept for the commits of this process that follow it. */
  private remember(version: number, actions: readonly DeltaAction[]): CommitFacts {
    const facts = factsOf(actions);
    this.seen.set(version, facts);
    this.known = Math.max(this.known, version);
    return facts;
  }

  /** Writes a checkpoint at `version` when it is a multiple of the interval; a failure is logged, never thrown. */
  private async checkpointIfDue(version: number): Promise<void> {
    if (version === 0 || version % this.checkpointInterval !== 0) return;
    // the changes of one batch share its version: one of them writes the checkpoint, the others wait for it
    const due =
      this.checkpoints.get(version) ??
      this.checkpoint(version).catch((error: unknown) => {
        this.options.log?.('table.checkpoint_failed', { version, error: (error as Error).message });
      });
    this.checkpoints.set(version, due);
    if (this.checkpoints.size > 16) this.checkpoints.delete(Math.min(...this.checkpoints.keys()));
    await due;
  }

  /** Writes the classic checkpoint of `version` and moves `_last_checkpoint` to it (never backwards). */
  async checkpoint(version: number): Promise<void> {
    const latest = await this.snapshot();
    const snapshot = latest.version === version ? latest : await this.snapshot({ version });
    const retainedSince = this.now() - DEFAULT_RETENTION_MS;
    const actions: DeltaAction[] = [
      ...(snapshot.protocol ? [{ protocol: snapshot.protocol }] : []),
      ...(snapshot.metadata ? [{ metaData: snapshot.metadata }] : []),
      ...[...snapshot.txns.values()].map((txn) => ({ txn })),
      ...[...snapshot.files.values()].sort(byPath).map((add) => ({ add })),
      ...[...snapshot.removed.values()]
        .filter((r) => (r.deletionTimestamp ?? 0) >= retainedSince)
        .sort(byPath)
        .map((remove) => ({ remove })),
    ];
    await this.withCheckpointWork(async (db, work) => {
      const file = join(work, 'checkpoint.parquet');
      await writeCheckpointFile(db, actions, file);
      try {
        await this.store.putFile(`${this.root}${checkpointFileName(version)}`, file, {
          ifNoneMatch: '*',
          contentType: 'application/vnd.apache.parquet',
        });
      } catch (error) {
        if (!(error instanceof PreconditionFailedError)) throw error; // another writer checkpointed it: same content
      }
      const current = await this.lastCheckpoint();
      if (current && current.version >= version) return;
      const hint: LastCheckpoint = { version, size: actions.length };
      await this.store.putBytes(`${this.root}${LAST_CHECKPOINT_NAME}`, `${JSON.stringify(hint)}\n`, {
        contentType: 'application/json',
      });
      this.options.log?.('table.checkpointed', { version, actions: actions.length });
    });
  }
}

/** One change waiting for its version (DeltaTable.commit). */
interface PendingCommit {
  readonly change: TableChange;
  readonly readVersion: number;
  readonly metadata: () => MetadataAction;
  readonly touched: ReadonlySet<string>;
  readonly resolve: (version: number) => void;
  readonly reject: (error: unknown) => void;
}

/** Changes a version carries at most, by default: a log file of ~1 MB at a few adds each. */
export const DEFAULT_MAX_BATCH = 1000;
/** Own commits' actions kept for bringing the snapshot forward (a run's worth). */
const MAX_WRITTEN_KEPT = 10_000;

/**
 * The actions of one version carrying `entries`: one commitInfo (a single change's facts as they are; a
 * batch's under `batch`), the protocol and metadata for version 0, then each change's txns, removes and adds.
 */
function batchActions(entries: readonly PendingCommit[], version: number, commitId: string, now: number): DeltaAction[] {
  const info =
    entries.length === 1
      ? (entries[0] as PendingCommit).change.info
      : {
          operationParameters: { mode: 'ReplacePartitions', partitions: entries.flatMap((e) => e.change.partitions) },
          batch: entries.map((e) => e.change.info),
        };
  return [
    { commitInfo: { timestamp: now, operation: 'WRITE', engineInfo: 'makoto-lake', txnId: commitId, ...info } },
    ...(version === 0 ? [{ protocol: PROTOCOL }, { metaData: (entries[0] as PendingCommit).metadata() }] : []),
    ...entries.flatMap((e) => e.change.txns.map((txn) => ({ txn }))),
    ...entries.flatMap((e) => e.change.removes.map((remove) => ({ remove }))),
    ...entries.flatMap((e) => e.change.adds.map((add) => ({ add }))),
  ];
}

/** The conflict of a newer version with a change touching `touched`, or undefined when there is none. */
function conflictOf(facts: CommitFacts, touched: ReadonlySet<string>, version: number): CommitConflictError | undefined {
  for (const partition of facts.partitions) {
    if (touched.has(partition)) {
      return new CommitConflictError(`table version ${version} changed partition ${partition} since this run read it`, {
        context: { version, partition },
      });
    }
  }
  // another writer created the table first (version 0): our commit goes after it
  if (facts.table && version !== 0) {
    return new CommitConflictError(`table version ${version} changed the table's metadata or protocol`, {
      context: { version },
    });
  }
  return undefined;
}

/** The partitions a commit touched, and whether it set the table's protocol or metadata. */
interface CommitFacts {
  readonly partitions: ReadonlySet<string>;
  readonly table: boolean;
}

function factsOf(actions: readonly DeltaAction[]): CommitFacts {
  const partitions = new Set<string>();
  let table = false;
  for (const a of actions) {
    const values = a.add?.partitionValues ?? a.remove?.partitionValues;
    if (values) partitions.add(partitionId(values));
    if (a.metaData || a.protocol) table = true;
  }
  return { partitions, table };
}

/** The id this module writes into each commit's commitInfo (`txnId`), or undefined for another writer's. */
function commitIdOf(actions: readonly DeltaAction[]): string | undefined {
  const id = actions.find((a) => a.commitInfo)?.commitInfo?.txnId;
  return typeof id === 'string' ? id : undefined;
}

interface MutableSnapshot {
  version: number;
  timestamp: number;
  protocol: ProtocolAction | undefined;
  metadata: MetadataAction | undefined;
  files: Map<string, AddAction>;
  removed: Map<string, RemoveAction>;
  txns: Map<string, TxnAction>;
}

const mutable = (s: TableSnapshot): MutableSnapshot => ({
  version: s.version,
  timestamp: s.timestamp,
  protocol: s.protocol,
  metadata: s.metadata,
  files: new Map(s.files),
  removed: new Map(s.removed),
  txns: new Map(s.txns),
});

const frozen = (s: MutableSnapshot): TableSnapshot => ({ ...s });

/** Applies one commit's (or a checkpoint's) actions, in the protocol's reconciliation order. */
function apply(state: MutableSnapshot, actions: readonly DeltaAction[], version: number, timestamp: number): void {
  for (const a of actions) {
    if (a.protocol) {
      if (a.protocol.minReaderVersion > 1) {
        throw new TableReadError(
          `table version ${version} needs Delta reader version ${a.protocol.minReaderVersion}; this reader implements 1`,
          {
            context: { version },
          },
        );
      }
      state.protocol = a.protocol;
    }
    if (a.metaData) state.metadata = a.metaData;
    if (a.txn) state.txns.set(a.txn.appId, a.txn);
    if (a.remove) {
      const path = normalisePath(a.remove.path);
      state.files.delete(path);
      state.removed.set(path, a.remove);
    }
    if (a.add) {
      const path = normalisePath(a.add.path);
      state.files.set(path, a.add);
      state.removed.delete(path);
    }
  }
  state.version = version;
  state.timestamp = timestamp;
}

/** Paths compare after URL-decoding (PROTOCOL.md: a path is a URI; writers may encode differently). */
const normalisePath = (path: string) => decodeURIComponent(path);

const byPath = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
