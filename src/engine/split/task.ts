/**
 * The skeleton every task of a split shares: the lease it adopts and hands over, a local work folder, the
 * PartitionRun the single pass's helpers expect, and the DuckDB connection with its tally.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { CompactionError, errorMessage } from '../../core/errors.js';
import { quoteStringList } from '../../core/sql/quote.js';
import { adoptLease, DEFAULT_LEASE_MS, type Lease } from '../../lake/partitionLease.js';
import { withConnection } from '../../ports/duckdb/openDuckDb.js';
import {
  type CompactionDeps,
  type CompactionPhase,
  DEFAULT_COMPACTION_SETTINGS,
  type PartitionRun,
} from '../compactPartition.js';
import { installTally, openTally } from '../tally.js';
import { SPLIT_LEASE_MS, type SplitMode, type SplitRef } from './splitRef.js';

/** One running map or reduce task: its run (work folder, timings, the lease's signal) and the lease it adopted. */
export interface Task {
  readonly run: PartitionRun;
  readonly lease: Lease;
  readonly timings: Record<string, number>;
}

/** Runs one map or reduce task: adopts the split's lease, a local work folder, and hands the lease over after. */
export async function withTask(
  deps: CompactionDeps,
  ref: SplitRef,
  mode: SplitMode,
  name: string,
  work: (task: Task) => Promise<void>,
): Promise<void> {
  const timings: Record<string, number> = {};
  let lease: Lease | undefined;
  let folder: string | undefined;
  try {
    lease = await adoptLease(deps.store, ref.tenant, ref.date, ref.splitId, leaseOptions(deps, mode));
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
export function logHandOverFailed(deps: CompactionDeps, ref: SplitRef, error: unknown): void {
  deps.log?.('split.hand_over_failed', { tenant: ref.tenant, date: ref.date, runId: ref.splitId, error: errorMessage(error) });
}

export function partitionRun(
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

export function leaseOptions(deps: CompactionDeps, mode: SplitMode) {
  return {
    leaseMs: deps.leaseMs ?? (mode === 'in-process' ? DEFAULT_LEASE_MS : SPLIT_LEASE_MS),
    acrossProcesses: mode === 'tasks',
    ...(deps.now === undefined ? {} : { now: deps.now }),
    ...(deps.signal === undefined ? {} : { signal: deps.signal }),
  };
}

/** Runs `work` on a connection of the run's instance, counting through a fresh tally under `runKey`. */
export async function withTallyConnection<T>(
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

/** Each file's row count from its Parquet footer (no data read). */
export async function footerRows(connection: DuckDBConnection, files: readonly string[]): Promise<number[]> {
  if (files.length === 0) return [];
  const reader = await connection.runAndReadAll(
    `SELECT file_name, sum(num_rows)::BIGINT AS row_count FROM parquet_file_metadata(${quoteStringList(files)}) GROUP BY file_name`,
  );
  const byFile = new Map(reader.getRowObjectsJS().map((r) => [String(r.file_name), Number(r.row_count)]));
  return files.map((f) => byFile.get(f) ?? 0);
}

export const sum = <T>(items: readonly T[], pick: (item: T) => number) => items.reduce((n, item) => n + pick(item), 0);
