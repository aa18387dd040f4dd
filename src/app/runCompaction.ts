import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { CompactionSettings, PartitionResult } from '../compaction/compactPartition.js';
import { compactTenants, type RunSummary } from '../compaction/compactTenants.js';
import { type LakeTableDeps, vacuumLake } from '../compaction/lakeTable.js';
import { lateLookbackDays } from '../compaction/lateData.js';
import { type Config, compactionSettings } from '../config.js';
import { openDuckDb } from '../duckdb/openDuckDb.js';
import { nightlyErasures } from '../erase/nightly.js';
import { errorMessage } from '../errors.js';
import type { ObjectStore } from '../store/ObjectStore.js';
import { parseDate, targetDate } from '../time/jst.js';

export interface RunCompactionRequest {
  readonly store: ObjectStore;
  readonly config: Config;
  /** YYYY-MM-DD; default: today in JST + TARGET_DATE_OFFSET. */
  readonly date?: string;
  /** Default: the config's TENANT_ID list ('all' = every tenant in staging). */
  readonly tenants?: readonly string[] | 'all';
  readonly onResult?: (result: PartitionResult) => void;
  readonly now?: () => number;
  /** Also re-compact earlier days (LATE_DATA_LOOKBACK_DAYS) whose staging changed: the nightly run does. */
  readonly late?: boolean;
  /**
   * An intraday run (`compact --today`, the INTRADAY_MINUTES schedule): today's JST partitions, and
   * yesterday's before the 02:00 JST run has closed it, that gained staging since their last commit
   * (planIntraday). `date` is then today in JST; no vacuum (the nightly run's).
   */
  readonly intraday?: boolean;
  /**
   * Stops the run (SIGINT/SIGTERM): no partition starts after it, running ones stop before their next write
   * and release their leases; the work folder is removed as always.
   */
  readonly signal?: AbortSignal;
  /** Parquet and transfer settings; default from the config (tests use parts smaller than PARQUET_TARGET_FILE_MB allows). */
  readonly settings?: CompactionSettings;
  /** Engine events (`manifest.unreadable`, `partition.compacted`) with their fields; see engineLogFields. */
  readonly log?: (event: string, fields: Record<string, unknown>) => void;
  /** The table's commit settings (the bench compares them); default: DeltaTable's. */
  readonly table?: { readonly commitBatch?: number; readonly checkpointInterval?: number };
}

/**
 * The compaction job every entry point runs (CLI, Lambda, Azure timer and HTTP): one per-run work folder
 * under TEMP_DIR and one DuckDB instance for all tenants, both released whatever happens.
 */
export async function runCompaction(request: RunCompactionRequest): Promise<RunSummary> {
  const { config, store } = request;
  const now = request.now ?? Date.now;
  const date = request.intraday
    ? targetDate(now(), 0)
    : request.date === undefined
      ? targetDate(now(), config.targetDateOffset)
      : parseDate(request.date, 'target date');
  await removeStaleWorkFolders(config.tempDir, now());
  const work = await mkdtemp(join(config.tempDir, WORK_PREFIX));
  try {
    const db = await openDuckDb({ ...config.duckdb, workDirectory: work });
    try {
      const deps = {
        store,
        db,
        workDirectory: join(work, 'partitions'),
        settings: request.settings ?? compactionSettings(config),
        now,
        signal: request.signal,
        log: request.log,
        ...request.table,
      };
      // before compacting: erasures captured again, offboarded tenants, retention (docs/PRIVACY.md); logged, never thrown
      if (request.late && !request.intraday) await nightlyErasures(deps, config.retention, now());
      const summary = await compactTenants(deps, date, {
        tenants: request.tenants ?? config.tenants,
        concurrency: config.compaction.concurrency,
        onResult: request.onResult,
        lateLookbackDays: lateLookbackDays(config.compaction.lateDataLookbackDays, request.late === true),
        splitThresholdBytes: config.compaction.splitThresholdBytes,
        intraday: request.intraday === true,
      });
      if (request.late && !request.intraday) await nightlyVacuum(deps, now());
      return summary;
    } finally {
      db.closeSync();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * The nightly run ends with a vacuum (docs/ARCHITECTURE.md, "Vacuum"): a failure is logged, never a failed
 * run — the partitions are committed, and the next night tries again.
 */
async function nightlyVacuum(deps: LakeTableDeps, at: number): Promise<void> {
  try {
    const report = await vacuumLake({ ...deps, workDirectory: deps.workDirectory }, { now: at });
    deps.log?.('table.vacuumed', { version: report.version, deleted: report.deleted.length, bytes: report.deletedBytes });
  } catch (error) {
    deps.log?.('table.vacuum_failed', { error: errorMessage(error) });
  }
}

export const WORK_PREFIX = 'makoto-lake-';
/** Far longer than any run: a Lambda lasts 15 minutes. */
const STALE_WORK_MS = 6 * 60 * 60 * 1000;

/**
 * A killed run (SIGKILL, OOM killer, a host that stopped) cannot remove its work folder; on a VM or a
 * laptop they would pile up with downloaded staging and spill files. Each run removes the ones older than
 * six hours.
 */
export async function removeStaleWorkFolders(tempDir: string, now: number): Promise<void> {
  const names = await readdir(tempDir).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.startsWith(WORK_PREFIX))) {
    const path = join(tempDir, name);
    const modified = await stat(path).then(
      (s) => s.mtimeMs,
      () => now,
    );
    if (now - modified > STALE_WORK_MS) await rm(path, { recursive: true, force: true });
  }
}
