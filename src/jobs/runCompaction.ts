import type { Config } from '../core/config.js';
import { errorMessage } from '../core/errors.js';
import { parseDate, targetDate } from '../core/time/jst.js';
import type { CompactionSettings, PartitionResult } from '../engine/compactPartition.js';
import { compactTenants, type RunSummary } from '../engine/compactTenants.js';
import { type LakeTableDeps, vacuumLake } from '../lake/lakeTable.js';
import { lateLookbackDays } from '../lake/lateData.js';
import type { PrivacyOutcome } from '../ops/privacyOutcome.js';
import type { ObjectStore } from '../ports/store/ObjectStore.js';
import { nightlyErasures } from './erase/nightly.js';
import { privacyOutcome } from './privacyOutcome.js';
import { withCompactionDeps } from './workspace.js';

/** A one-process run's summary with its privacy step's outcome, if it had one (a nightly run). */
export type CompactionRun = RunSummary & { readonly privacy?: PrivacyOutcome };

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
 * The compaction job every entry point runs in one process (CLI, Lambda, Azure timer and HTTP): one per-run
 * work folder under TEMP_DIR and one DuckDB instance for all tenants (src/jobs/workspace.ts), both released
 * whatever happens. A nightly run (`late`) begins with the privacy step and ends with a vacuum; its summary
 * records the privacy step's outcome (`privacy`).
 */
export async function runCompaction(request: RunCompactionRequest): Promise<CompactionRun> {
  const { config, store } = request;
  const now = request.now ?? Date.now;
  const date = request.intraday
    ? targetDate(now(), 0)
    : request.date === undefined
      ? targetDate(now(), config.targetDateOffset)
      : parseDate(request.date, 'target date');
  const nightly = request.late === true && !request.intraday;
  return withCompactionDeps(config, store, now, async (base) => {
    const deps = {
      ...base,
      settings: request.settings ?? base.settings,
      signal: request.signal,
      log: request.log,
      ...request.table,
    };
    // before compacting: erasures captured again, offboarded tenants, retention (docs/PRIVACY.md); logged, never thrown
    const privacy = nightly ? privacyOutcome(await nightlyErasures(deps, config.retention, now())) : undefined;
    const summary = await compactTenants(deps, date, {
      tenants: request.tenants ?? config.tenants,
      concurrency: config.compaction.concurrency,
      onResult: request.onResult,
      lateLookbackDays: lateLookbackDays(config.compaction.lateDataLookbackDays, request.late === true),
      splitThresholdBytes: config.compaction.splitThresholdBytes,
      intraday: request.intraday === true,
    });
    if (nightly) await nightlyVacuum(deps, now());
    return privacy ? { ...summary, privacy } : summary;
  });
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
