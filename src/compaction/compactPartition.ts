import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { withConnection } from '../duckdb/openDuckDb.js';
import { CompactionError, errorMessage } from '../errors.js';
import { quoteLiteral } from '../sql/quote.js';
import {
  analyticsKey,
  analyticsPrefix,
  compactionQuarantineKey,
  isStagingDataKey,
  manifestKey,
  stagingPrefix,
} from '../staging/layout.js';
import { gzipNdjson } from '../staging/ndjson.js';
import { StoreError, TransientStoreError } from '../store/errors.js';
import { listAll, type ObjectInfo, type ObjectStore } from '../store/ObjectStore.js';
import { assertTenantId } from '../tenant.js';
import { parseDate } from '../time/jst.js';
import { mapLimit } from '../util/concurrency.js';
import { DEFAULT_RETRY, type RetryPolicy, withRetry } from '../util/retry.js';
import {
  compactionSelectSql,
  type ParquetOptions,
  parquetCopyOptionsSql,
  partitionParams,
  readStagingSql,
  stagedRowsSql,
} from './compactionSql.js';
import { type PartitionManifest, readManifest } from './manifest.js';
import { acquireLease } from './partitionLease.js';
import { type RejectedInput, salvageStagingObject } from './salvage.js';
import { installTally, openTally, ROW_KINDS, type RowCounts, TALLY_FUNCTION } from './tally.js';

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
  /** How long the partition lease lasts; a crashed run's lease is taken over after this. */
  readonly leaseMs?: number;
  /** Called as each phase starts; the crash tests use it to kill the process at a chosen point. */
  readonly onPhase?: (phase: CompactionPhase, context: { tenant: string; date: string }) => void | Promise<void>;
}

export type CompactionPhase = 'locked' | 'downloading' | 'compacting' | 'uploading' | 'committing' | 'cleaning' | 'done';

export type PartitionStatus = 'compacted' | 'no-input' | 'failed' | 'locked';

export interface PartitionResult {
  readonly tenant: string;
  readonly date: string;
  readonly status: PartitionStatus;
  readonly runId: string;
  readonly inputs: number;
  readonly rowsRead: number;
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
  /** Why a day other than the requested one was compacted (late data). */
  readonly reason?: string;
}

/**
 * Compacts one tenant-day: reads every staging object of the partition, keeps the latest version of each
 * message, drops user deletes, and replaces the partition's Parquet in full.
 *
 * Order of writes, so that a reader never sees a mix and a crash at any point is repaired by a re-run:
 * new part files are written (each object write is atomic; a one-file partition switches in one step),
 * then the manifest (the record of which files are current), then part files of the previous run that are
 * no longer current are deleted. Nothing is written when the partition has no staging objects, so an
 * expired staging area never empties a compacted partition.
 *
 * @example
 * const result = await compactPartition({ store, db, workDirectory }, 'acme', '2025-08-11');
 * // result.status === 'compacted', result.rowsWritten === 1234
 */
export async function compactPartition(deps: CompactionDeps, tenantInput: string, dateInput: string): Promise<PartitionResult> {
  const tenant = assertTenantId(tenantInput);
  const date = parseDate(dateInput);
  const settings = deps.settings ?? DEFAULT_COMPACTION_SETTINGS;
  const now = deps.now ?? Date.now;
  const started = now();
  const runId = `${new Date(started).toISOString().replace(/[-:.]/g, '')}-${randomUUID().slice(0, 8)}`;
  const timings: Record<string, number> = {};
  const timed = async <T>(phase: string, work: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await work();
    } finally {
      timings[phase] = Math.round((timings[phase] ?? 0) + performance.now() - t0);
    }
  };
  const base = { tenant, date, runId };

  const inputs = (await timed('list', () => listAll(deps.store, stagingPrefix(tenant, date)))).filter((o) =>
    isStagingDataKey(o.key),
  );
  if (inputs.length === 0) {
    return emptyResult(base, 'no-input', now() - started, timings);
  }

  const lease = await acquireLease(deps.store, tenant, date, runId, { now, leaseMs: deps.leaseMs });
  const phase = async (name: CompactionPhase) => deps.onPhase?.(name, { tenant, date });
  let workFolder: string | undefined;
  try {
    await phase('locked');
    await mkdir(deps.workDirectory, { recursive: true });
    const work = await mkdtemp(join(deps.workDirectory, `${tenant}-${date}-`));
    workFolder = work;
    const inDir = join(work, 'in');
    const outDir = join(work, 'out');
    await mkdir(inDir);
    const localFiles = inputs.map((_, i) => join(inDir, `${String(i).padStart(6, '0')}.ndjson.gz`));
    await phase('downloading');
    const downloaded = await timed('download', () =>
      mapLimit(inputs, settings.transferConcurrency, (input, i) =>
        downloadVerified(deps.store, input.key, localFiles[i] as string, deps.retry ?? DEFAULT_RETRY),
      ),
    );
    await phase('compacting');

    await installTally(deps.db);
    const outcome = await withConnection(deps.db, (connection) =>
      timed('compact', () =>
        compactFiles(connection, { inputs, files: localFiles, tenant, date, work, outDir, runId, settings }),
      ),
    );

    const produced = outcome.counts.current === 0 ? [] : await partFiles(outDir);
    await phase('uploading');
    const outputs = await timed('upload', () =>
      mapLimit(produced, settings.transferConcurrency, (file, part) =>
        deps.store.putFile(analyticsKey(tenant, date, part), join(outDir, file), {
          contentType: 'application/vnd.apache.parquet',
        }),
      ),
    );

    const quarantineKey = compactionQuarantineKey(tenant, date);
    await phase('committing');
    await timed('commit', async () => {
      if (outcome.rejected.length > 0) {
        const at = new Date(now()).toISOString();
        await deps.store.putBytes(
          quarantineKey,
          gzipNdjson(outcome.rejected.map((r) => ({ ...r, tenant_id: tenant, dt: date, run_id: runId, quarantined_at: at }))),
        );
      } else {
        await deps.store.delete(quarantineKey);
      }
      const previous = await readManifest(deps.store, tenant, date).catch((error: unknown) => {
        // an unreadable previous manifest must not block the run that replaces it
        deps.log?.('manifest.unreadable', { ...base, error: errorMessage(error) });
        return undefined;
      });
      const manifest: PartitionManifest = {
        version: 1,
        run_id: runId,
        tenant_id: tenant,
        dt: date,
        started_at: new Date(started).toISOString(),
        finished_at: new Date(now()).toISOString(),
        inputs: downloaded.map((i) => ({ key: i.key, size: i.size, etag: i.etag, last_modified: i.lastModified.toISOString() })),
        rows_read: outcome.rowsRead,
        rows_rejected: outcome.rowsRejected,
        objects_rejected: outcome.objectsRejected,
        duplicates_removed: outcome.counts.duplicate,
        versions_superseded: outcome.counts.superseded,
        deletes_applied: outcome.counts.deleted,
        rows_written: outcome.counts.current,
        outputs: outputs.map((o) => ({ key: o.key, size: o.size, etag: o.etag })),
        quarantine: outcome.rejected.length > 0 ? quarantineKey : null,
        settings: { compression: settings.compression, target_file_bytes: settings.targetFileBytes },
        previous_run_id: previous?.run_id ?? null,
      };
      await deps.store.putBytes(manifestKey(tenant, date), `${JSON.stringify(manifest, null, 2)}\n`, {
        contentType: 'application/json',
      });
      await phase('cleaning');
      const current = new Set(outputs.map((o) => o.key));
      for (const stale of await listAll(deps.store, analyticsPrefix(tenant, date))) {
        if (!current.has(stale.key)) await deps.store.delete(stale.key);
      }
    });

    const result: PartitionResult = {
      ...base,
      status: 'compacted',
      inputs: inputs.length,
      rowsRead: outcome.rowsRead,
      rowsRejected: outcome.rowsRejected,
      objectsRejected: outcome.objectsRejected,
      duplicatesRemoved: outcome.counts.duplicate,
      versionsSuperseded: outcome.counts.superseded,
      deletesApplied: outcome.counts.deleted,
      rowsWritten: outcome.counts.current,
      outputFiles: outputs.map((o) => o.key),
      bytesWritten: outputs.reduce((n, o) => n + o.size, 0),
      durationMs: now() - started,
      timingsMs: timings,
    };
    deps.log?.('partition.compacted', { ...base, rows: result.rowsWritten });
    await phase('done');
    return result;
  } catch (error) {
    throw new CompactionError(`compaction of tenant ${tenant} for ${date} failed: ${errorMessage(error)}`, {
      cause: error,
      context: base,
    });
  } finally {
    try {
      if (workFolder) await rm(workFolder, { recursive: true, force: true });
    } finally {
      await lease.release();
    }
  }
}

/**
 * Downloads one object and checks that the file has the object's full size: a stream that ended early
 * is retried like a throttled call instead of reaching DuckDB as a truncated gzip.
 */
async function downloadVerified(store: ObjectStore, key: string, path: string, retry: RetryPolicy): Promise<ObjectInfo> {
  return withRetry(
    async () => {
      const info = await store.getToFile(key, path);
      const size = (await stat(path)).size;
      if (size !== info.size) {
        throw new TransientStoreError(`short read of ${key}: ${size} of ${info.size} bytes`, { context: { key } });
      }
      return info;
    },
    (error) => error instanceof StoreError && error.transient,
    retry,
  );
}

interface CompactFilesRequest {
  readonly inputs: readonly ObjectInfo[];
  readonly files: string[];
  readonly tenant: string;
  readonly date: string;
  readonly work: string;
  readonly outDir: string;
  readonly runId: string;
  readonly settings: CompactionSettings;
}

interface CompactFilesOutcome {
  readonly counts: RowCounts;
  readonly rowsRead: number;
  readonly rowsRejected: number;
  readonly objectsRejected: number;
  readonly rejected: RejectedInput[];
}

/**
 * Runs the compaction statement over the downloaded files. The fast path is one statement over all
 * files. If DuckDB refuses the input (malformed JSON, truncated gzip, wrong types) each file is probed
 * alone, the refused ones are salvaged line by line, and the statement runs again. Rows that parse but
 * break a staging rule are counted by the statement and then fetched with their reasons (a second read,
 * only on days that have such rows).
 */
async function compactFiles(connection: DuckDBConnection, request: CompactFilesRequest): Promise<CompactFilesOutcome> {
  const { files, tenant, date, outDir, runId, settings } = request;
  const tally = openTally(runId);
  const copy = async () => {
    await rm(outDir, { recursive: true, force: true });
    tally.reset();
    await connection.run(
      `COPY (${compactionSelectSql(files, TALLY_FUNCTION, runId)}) TO ${quoteLiteral(outDir)} (${parquetCopyOptionsSql(settings)})`,
      partitionParams(tenant, date),
    );
  };
  try {
    let salvaged: RejectedInput[] = [];
    try {
      await copy();
    } catch (error) {
      if (!isInputError(error)) throw error;
      salvaged = await salvageRefusedFiles(connection, request);
      await copy();
    }
    const counts = tally.read();
    const rejectedRows = counts.rejected > 0 ? await rejectedRowLines(connection, request) : [];
    const rowsRead = ROW_KINDS.reduce((n, kind) => n + counts[kind], 0);
    return {
      counts,
      rowsRead,
      rowsRejected: counts.rejected + salvaged.filter((r) => r.line !== undefined).length,
      objectsRejected: salvaged.filter((r) => r.line === undefined).length,
      rejected: [...salvaged, ...rejectedRows],
    };
  } finally {
    tally.end();
  }
}

/**
 * Whether DuckDB refused the input itself (malformed JSON, truncated gzip, a value of the wrong type), the
 * only failures the line-by-line salvage can help with. Out of memory, disk full or an interrupted query
 * fail the partition as they are.
 */
function isInputError(error: unknown): boolean {
  return /^(Invalid Input|IO|Conversion) Error/.test(error instanceof Error ? error.message : '');
}

/** Probes each file alone; salvages the ones DuckDB refuses and puts the repaired file in their place. */
async function salvageRefusedFiles(connection: DuckDBConnection, request: CompactFilesRequest): Promise<RejectedInput[]> {
  const rejected: RejectedInput[] = [];
  const probe = join(request.work, 'probe.parquet');
  for (const [i, file] of request.files.entries()) {
    try {
      await connection.run(`COPY (SELECT * FROM ${readStagingSql([file])}) TO ${quoteLiteral(probe)} (FORMAT parquet)`);
    } catch {
      const repaired = join(request.work, 'in', `repaired-${i}.ndjson.gz`);
      const salvage = await salvageStagingObject(file, (request.inputs[i] as ObjectInfo).key, repaired);
      rejected.push(...salvage.rejected);
      request.files[i] = repaired;
    }
  }
  await rm(probe, { force: true });
  return rejected;
}

/** Rows DuckDB read but that break a staging rule, with the reason and the object they came from. */
async function rejectedRowLines(connection: DuckDBConnection, request: CompactFilesRequest): Promise<RejectedInput[]> {
  const out = join(request.work, 'rejected.ndjson');
  await connection.run(
    `COPY (SELECT reject_reason, filename, * EXCLUDE (reject_reason, filename)
           FROM (${stagedRowsSql(request.files)}) WHERE reject_reason IS NOT NULL ORDER BY filename)
     TO ${quoteLiteral(out)} (FORMAT json)`,
    partitionParams(request.tenant, request.date),
  );
  const keyOf = new Map(request.files.map((f, i) => [f, (request.inputs[i] as ObjectInfo).key]));
  const text = await readFile(out, 'utf8');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const { reject_reason, filename, ...raw } = JSON.parse(line) as Record<string, unknown>;
      return { reason: String(reject_reason), object_key: keyOf.get(String(filename)) ?? String(filename), raw };
    });
}

/** part-0.parquet, part-1.parquet, ... in part order. */
async function partFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const parts = names.filter((n) => /^part-\d+\.parquet$/.test(n)).sort((a, b) => partNo(a) - partNo(b));
  for (const [i, name] of parts.entries()) {
    if (partNo(name) !== i) throw new CompactionError(`unexpected output file ${name} in ${dir}`);
  }
  return parts;
}

const partNo = (name: string) => Number(/\d+/.exec(name)?.[0]);

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
