import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { DuckDBInstance } from '@duckdb/node-api';
import { CompactionError, errorMessage } from '../core/errors.js';
import { assertTenantId } from '../core/tenant.js';
import { parseDate } from '../core/time/jst.js';
import { newRunId } from '../core/time/runId.js';
import { inFolder } from '../core/util/inFolder.js';
import type { RetryPolicy } from '../core/util/retry.js';
import { currentSnapshot } from '../lake/lakeTable.js';
import { acquireLease, type Lease } from '../lake/partitionLease.js';
import { planHasWork, planPartition, type RunReads, runReadsKey } from '../lake/planPartition.js';
import { CommitConflictError } from '../lake/table/errors.js';
import { ObjectNotFoundError } from '../ports/store/errors.js';
import type { ObjectInfo, ObjectStore } from '../ports/store/ObjectStore.js';
import { commitPartition } from './commitPartition.js';
import type { ParquetOptions } from './compactionSql.js';
import { FullFoldNeeded, type MergeOutcome, mergePartition } from './mergePartition.js';

export interface CompactionSettings extends ParquetOptions {
  /** Parallel object downloads/uploads within one partition. */
  readonly transferConcurrency: number;
}

export const DEFAULT_COMPACTION_SETTINGS: CompactionSettings = {
  compression: 'snappy',
  targetFileBytes: 256 * 1024 * 1024,
  rowGroupSize: 122_880,
  rowGroupBytes: 32 * 1024 * 1024,
  transferConcurrency: 8,
};

export interface CompactionDeps {
  readonly store: ObjectStore;
  readonly db: DuckDBInstance;
  /** A folder this run may use; each partition works in its own sub-folder, removed afterwards. */
  readonly workDirectory: string;
  readonly settings?: CompactionSettings;
  readonly log?: (event: string, fields: Record<string, unknown>) => void;
  readonly now?: () => number;
  /** Retries of a download that failed transiently or came back shorter than the object. */
  readonly retry?: RetryPolicy;
  /** How long the partition lease lasts without renewal; a crashed run's lease is taken over after this. */
  readonly leaseMs?: number;
  /** The run's abort (SIGINT/SIGTERM): stops the lease's heartbeat. */
  readonly signal?: AbortSignal;
  /** Called as each phase starts; the crash tests use it to kill the process at a chosen point. */
  readonly onPhase?: (phase: CompactionPhase, context: { tenant: string; date: string }) => void | Promise<void>;
}

export type CompactionPhase =
  | 'locked'
  | 'downloading'
  | 'compacting'
  | 'verifying'
  | 'uploading'
  | 'committing'
  | 'cleaning'
  | 'done';

/** Phases after the table commit was written: the partition is committed whatever stops the run now. */
const AFTER_COMMIT: ReadonlySet<CompactionPhase> = new Set(['cleaning', 'done']);

export type PartitionStatus = 'compacted' | 'no-input' | 'failed' | 'locked';

export interface PartitionResult {
  readonly tenant: string;
  readonly date: string;
  readonly status: PartitionStatus;
  readonly runId: string;
  /** Staging objects read. */
  readonly inputs: number;
  /** Staging rows read. */
  readonly rowsRead: number;
  /** Rows of the partition as published, read back and merged. */
  readonly rowsCarried: number;
  /** Remembered user deletes read and applied again. */
  readonly deletesRemembered: number;
  /** Staging lines quarantined (malformed, wrong type, or breaking a staging rule). */
  readonly rowsRejected: number;
  /** Whole staging objects (or their unreadable tails) quarantined: empty or truncated gzip. */
  readonly objectsRejected: number;
  readonly duplicatesRemoved: number;
  readonly versionsSuperseded: number;
  readonly deletesApplied: number;
  readonly rowsWritten: number;
  readonly outputFiles: string[];
  readonly bytesWritten: number;
  readonly durationMs: number;
  readonly timingsMs: Readonly<Record<string, number>>;
  readonly error?: string;
  /** Why a day other than the requested one was compacted (staging its current run has not folded in). */
  readonly reason?: string;
}

export interface CompactPartitionOptions {
  /**
   * Fold in only the staging the partition's current version has not folded in (an intraday run; see
   * planPartition's incrementalFold for when the whole day is read anyway).
   */
  readonly incremental?: boolean;
  /** What the run's planner read (RunReads): the first plan uses it instead of reading again. */
  readonly reads?: RunReads;
}

/** The lease as the commit uses it. */
export type PartitionLease = Pick<Lease, 'confirm'>;

/** One compaction of one partition: what its three phases share. */
export interface PartitionRun {
  readonly deps: CompactionDeps;
  readonly tenant: string;
  readonly date: string;
  readonly runId: string;
  readonly settings: CompactionSettings;
  readonly started: number;
  readonly now: () => number;
  /** The run's own temp folder. */
  readonly work: string;
  /** The lease's signal: aborted when the lease is lost or the run is stopped. */
  readonly signal: AbortSignal;
  readonly timed: <T>(phase: string, work: () => Promise<T>) => Promise<T>;
  readonly phase: (name: CompactionPhase) => Promise<void>;
}

/**
 * Compacts one tenant-day by merging into what is published: the partition's current parts (lowest
 * priority), its remembered user deletes and every staging object present now go through one DuckDB
 * statement that keeps the latest version of each message; the result replaces the partition. Staging
 * expiry therefore never removes a row, and a re-run gives the same rows.
 *
 * Phases: plan (the partition's files and run manifest from the table's current version, and its staging;
 * nothing to do when there is no staging), run (download, merge, verify the written row counts), commit
 * (new files, then one table commit; a newer commit of the partition means planning again, up to
 * MAX_COMMIT_ATTEMPTS times). The partition lease is held throughout (it saves doing the same work twice)
 * and confirmed before uploading. See commitPartition for the order of writes.
 *
 * @example
 * const result = await compactPartition({ store, db, workDirectory }, 'acme', '2025-08-11');
 * // result.status === 'compacted', result.rowsWritten === 1234
 */
export async function compactPartition(
  deps: CompactionDeps,
  tenantInput: string,
  dateInput: string,
  options: CompactPartitionOptions = {},
): Promise<PartitionResult> {
  const tenant = assertTenantId(tenantInput);
  const date = parseDate(dateInput);
  const now = deps.now ?? Date.now;
  const started = now();
  const runId = newRunId(started);
  const timings: Record<string, number> = {};
  const base = { tenant, date, runId };
  const lease = await acquireLease(deps.store, tenant, date, runId, {
    now,
    ...(deps.leaseMs === undefined ? {} : { leaseMs: deps.leaseMs }),
    ...(deps.signal === undefined ? {} : { signal: deps.signal }),
  });
  let work: string | undefined;
  let committed = false;
  try {
    const phase = async (name: CompactionPhase) => {
      // once the table commit is written the partition is committed: a stop or a lost lease no longer undoes it
      if (!AFTER_COMMIT.has(name)) lease.signal.throwIfAborted();
      await deps.onPhase?.(name, { tenant, date });
    };
    const timed = timer(timings);
    await phase('locked');
    const settings = deps.settings ?? DEFAULT_COMPACTION_SETTINGS;
    let incremental = options.incremental === true;
    // the planner's listing serves the first plan; any plan after it lists again
    let listed = options.reads?.staging.get(runReadsKey(tenant, date));
    for (let attempt = 0; ; attempt++) {
      // a newer commit of this partition (a run that took over a lapsed lease) means planning again from it
      const attemptId = attempt === 0 ? runId : `${runId}-r${attempt}`;
      const log =
        deps.log && ((event: string, fields: Record<string, unknown>) => deps.log?.(event, { ...fields, runId: attemptId }));
      const plan = await timed('list', async () =>
        planPartition(deps.store, await currentSnapshot(deps, { tenant_id: tenant, dt: date }), tenant, date, log, {
          incremental,
          ...(options.reads ? { reads: options.reads } : {}),
          ...(listed ? { listed } : {}),
        }),
      );
      if (!planHasWork(plan)) return emptyResult(base, 'no-input', now() - started, timings);
      if (plan.missing.length > 0) deps.log?.('partition.missing_inputs', { ...base, keys: plan.missing });

      // a new folder for this attempt under the run's folder, which is made first when it is not there
      work = await inFolder(deps.workDirectory, () => mkdtemp(join(deps.workDirectory, `${tenant}-${date}-`)));
      const run: PartitionRun = {
        deps,
        tenant,
        date,
        runId: attemptId,
        settings,
        started,
        now,
        work,
        signal: lease.signal,
        timed,
        phase,
      };
      try {
        const outcome = await mergePartition(run, plan);
        const { outputs } = await commitPartition(run, lease, plan, outcome);
        committed = true;
        const result = compactedResult({ ...base, runId: attemptId }, outcome, outputs, now() - started, timings);
        deps.log?.('partition.compacted', { ...base, runId: attemptId, rows: result.rowsWritten });
        await phase('done');
        return result;
      } catch (error) {
        if (listed && isNotFound(error)) {
          // a staging object the planner listed is gone (an erasure deleted it): plan again from a fresh listing
          listed = undefined;
          attempt--;
          deps.log?.('partition.relist', { ...base, runId: attemptId, error: errorMessage(error) });
          continue;
        }
        listed = undefined;
        if (error instanceof FullFoldNeeded && incremental) {
          // nothing was uploaded: the same attempt plans again, reading the whole day
          incremental = false;
          attempt--;
          deps.log?.('partition.full_fold', { ...base, runId: attemptId, error: errorMessage(error) });
          continue;
        }
        if (!(error instanceof CommitConflictError) || attempt + 1 >= MAX_COMMIT_ATTEMPTS) throw error;
        deps.log?.('partition.commit_conflict', { ...base, runId: attemptId, error: errorMessage(error) });
      } finally {
        await rm(work, { recursive: true, force: true });
        work = undefined;
      }
    }
  } catch (error) {
    throw new CompactionError(`compaction of tenant ${tenant} for ${date} failed: ${errorMessage(error)}`, {
      cause: error,
      context: base,
    });
  } finally {
    try {
      if (work) await rm(work, { recursive: true, force: true });
    } finally {
      // the lease only saves doing the same work twice: once committed, failing to release it is not a failure
      await lease.release().catch((error: unknown) => {
        if (!committed) throw error;
        deps.log?.('lease.release_failed', { ...base, error: errorMessage(error) });
      });
    }
  }
}

/** Whether the error (or the error it wraps) is an object that was not there. */
function isNotFound(error: unknown): boolean {
  return error instanceof ObjectNotFoundError || (error instanceof Error && error.cause instanceof ObjectNotFoundError);
}

/** Plans of one partition that meet a newer commit of it before giving up (each re-plans from the new version). */
const MAX_COMMIT_ATTEMPTS = 3;

/** Adds each phase's wall time to `timings` (a phase may run more than once). */
function timer(timings: Record<string, number>) {
  return async <T>(phase: string, work: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await work();
    } finally {
      timings[phase] = Math.round((timings[phase] ?? 0) + performance.now() - t0);
    }
  };
}

/** The result of a committed partition: the merge's counts and the files published. */
export function compactedResult(
  base: { tenant: string; date: string; runId: string },
  outcome: MergeOutcome,
  outputs: readonly ObjectInfo[],
  durationMs: number,
  timingsMs: Record<string, number>,
): PartitionResult {
  return {
    ...base,
    status: 'compacted',
    inputs: outcome.staging.length,
    rowsRead: outcome.rowsRead,
    rowsCarried: outcome.rowsCarried,
    deletesRemembered: outcome.deletesRemembered,
    rowsRejected: outcome.rowsRejected,
    objectsRejected: outcome.objectsRejected,
    duplicatesRemoved: outcome.counts.duplicate,
    versionsSuperseded: outcome.counts.superseded,
    deletesApplied: outcome.counts.deleted,
    rowsWritten: outcome.counts.current,
    outputFiles: outputs.map((o) => o.key),
    bytesWritten: outputs.reduce((n, o) => n + o.size, 0),
    durationMs,
    timingsMs,
  };
}

export function emptyResult(
  base: { tenant: string; date: string; runId: string },
  status: PartitionStatus,
  durationMs: number,
  timingsMs: Record<string, number>,
  error?: string,
): PartitionResult {
  return {
    ...base,
    status,
    inputs: 0,
    rowsRead: 0,
    rowsCarried: 0,
    deletesRemembered: 0,
    rowsRejected: 0,
    objectsRejected: 0,
    duplicatesRemoved: 0,
    versionsSuperseded: 0,
    deletesApplied: 0,
    rowsWritten: 0,
    outputFiles: [],
    bytesWritten: 0,
    durationMs,
    timingsMs,
    ...(error === undefined ? {} : { error }),
  };
}
