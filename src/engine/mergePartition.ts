import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { CompactionError, errorMessage } from '../core/errors.js';
import { STAGING_COLUMNS } from '../core/schema/messageSchema.js';
import { quoteIdent, quoteLiteral } from '../core/sql/quote.js';
import { mapLimit } from '../core/util/concurrency.js';
import { DEFAULT_RETRY, type RetryPolicy, withRetry } from '../core/util/retry.js';
import type { PartitionPlan } from '../lake/planPartition.js';
import { withConnection } from '../ports/duckdb/openDuckDb.js';
import { StoreError, TransientStoreError } from '../ports/store/errors.js';
import type { ObjectInfo, ObjectStore } from '../ports/store/ObjectStore.js';
import {
  hasBackfillSql,
  INPUT_ORIGINS,
  type MergeSources,
  mergeParams,
  mergeRowsSql,
  mergeTallySql,
  type PublishedFile,
  parquetCopyOptionsSql,
  parquetRowCountSql,
  partitionParams,
  readStagingSql,
  smallMergeSql,
  stagedCopyOptionsSql,
  stagedInputSql,
  stagedRowsSql,
  tombstoneFileSql,
  winnerRowsSql,
} from './compactionSql.js';
import type { PartitionRun } from './compactPartition.js';
import { type WrittenPart, writtenParts } from './partStats.js';
import { findRefusedLines, type RejectedInput, type StagingLine, salvageStagingObject, writeStagingLines } from './salvage.js';
import {
  installTally,
  openTally,
  type RememberedDelete,
  ROW_KINDS,
  type RowCounts,
  TALLY_FUNCTION,
  tallyFromCounts,
} from './tally.js';

/**
 * An incremental merge (PartitionPlan `folded`) met a backfilled version: its version time depends on every
 * captured version of the message, and the published rows keep only the winners, so the partition is planned
 * again as a full re-fold.
 */
export class FullFoldNeeded extends CompactionError {}

/** What the run phase produced, all of it local and verified, nothing published yet. */
export interface MergeOutcome {
  /** The staging objects as downloaded (key, size, etag): the manifest's inputs. */
  readonly staging: ObjectInfo[];
  /** The published parts and tombstone file read. */
  readonly published: ObjectInfo[];
  readonly counts: RowCounts;
  /** Staging rows DuckDB read. */
  readonly rowsRead: number;
  /** Published rows read back from the previous run's parts. */
  readonly rowsCarried: number;
  /** Remembered deletes read. */
  readonly deletesRemembered: number;
  readonly rowsRejected: number;
  readonly objectsRejected: number;
  readonly rejected: RejectedInput[];
  /**
   * Local part files, in part order, holding exactly `counts.current` rows, or (partsKept) exactly the current
   * rows that are not in the published parts.
   */
  readonly parts: string[];
  /**
   * The published parts (the plan's files) stay in the new version as they are, every row of them still
   * current (partsStayCurrent); `parts` are added beside them and nothing is removed.
   */
  readonly partsKept?: boolean;
  /** Each local part's Delta statistics (partStats), in part order, when the merge read them already. */
  readonly partStats?: readonly string[];
  /**
   * Local tombstone file holding `counts.deleted` rows, or undefined when no message is deleted or when the
   * remembered deletes are exactly the published file's (`tombstonesKept`).
   */
  readonly tombstoneFile: string | undefined;
  /**
   * The published remembered-deletes file, when the merge's deletes are exactly its rows (rememberedUnchanged):
   * the new version names it again instead of a new copy of the same rows.
   */
  readonly tombstonesKept?: ObjectInfo;
  /**
   * Parts already in the partition's folder (a split's reduces wrote them there, each created once under a
   * name of its attempt, with its statistics): the commit names them as they lie, before `parts`.
   */
  readonly placed?: readonly PlacedPart[];
  /** Set when the merge was split across tasks; recorded in the manifest. */
  readonly split?: { readonly ranges: number; readonly buckets: number };
}

/** A data part already where the table will name it: what its `add` action needs, and its row count. */
export interface PlacedPart {
  readonly key: string;
  readonly size: number;
  readonly etag: string;
  readonly rows: number;
  /** The store's time of the write, epoch ms (the `add` action's modificationTime). */
  readonly modificationTime: number;
  /** Delta's per-file statistics (partStats), taken from the file before it was placed. */
  readonly stats: string;
}

/**
 * The run phase: downloads the partition's inputs (staging, the published parts, the remembered deletes),
 * runs the merge statements and verifies the Parquet it wrote (the files, sizes and row counts its writer
 * reported: writtenAsReported) and the tombstone file. DuckDB errors name the staging object, never the
 * local copy. A full fold of at most `smallMergeBytes` of inputs (default SMALL_MERGE_BYTES) runs as one
 * statement (runSmallMerge).
 */
export async function mergePartition(
  run: PartitionRun,
  plan: PartitionPlan,
  options: { readonly smallMergeBytes?: number } = {},
): Promise<MergeOutcome> {
  const { deps } = run;
  const keyOf = new Map<string, string>();
  try {
    await run.phase('downloading');
    const local = await run.timed('download', () => downloadInputs(run, plan, keyOf));
    await run.phase('compacting');
    // a lost lease or a stopped run interrupts a long statement instead of waiting for it
    const small = options.smallMergeBytes ?? SMALL_MERGE_BYTES;
    return await withConnection(deps.db, (connection) => mergeAndVerify(connection, run, plan, local, keyOf, small), run.signal);
  } catch (error) {
    run.signal.throwIfAborted();
    throw withObjectKeys(error, keyOf);
  }
}

/** The error with every local copy's path replaced by the key of the object it was downloaded from. */
export function withObjectKeys(error: unknown, keyOf: ReadonlyMap<string, string>): unknown {
  const message = errorMessage(error);
  const named = [...keyOf].reduce((m, [path, key]) => m.split(path).join(key), message);
  if (named === message) return error;
  return new CompactionError(named, { cause: error });
}

async function mergeAndVerify(
  connection: DuckDBConnection,
  run: PartitionRun,
  plan: PartitionPlan,
  local: LocalInputs,
  keyOf: Map<string, string>,
  smallMergeBytes: number,
): Promise<MergeOutcome> {
  const incremental = (plan.folded?.length ?? 0) > 0;
  const inputBytes = [...local.stagingInfo, ...plan.published, ...plan.tombstones].reduce((n, o) => n + o.size, 0);
  const merged = await run.timed('compact', () =>
    !incremental && local.staging.length > 0 && inputBytes <= Math.min(smallMergeBytes, run.settings.targetFileBytes / 4)
      ? runSmallMerge(connection, run, local, keyOf)
      : runMerge(connection, run, local, keyOf, incremental),
  );
  await run.phase('verifying');
  return await run.timed('verify', async () => {
    const outDir = join(run.work, 'out');
    const parts = merged.written === 0 ? [] : await partFiles(outDir);
    // the parts on disk are the files the writer reported, at the sizes it reported; their rows (its count) the merge's
    const stats = await writtenAsReported(parts, merged.parts);
    checkRowCount(
      stats.reduce((n, s) => n + s.rows, 0),
      merged.written,
      'part files',
    );
    // deletes that are exactly the remembered ones are not written again: the version names the same file
    const kept = rememberedUnchanged(merged, plan.tombstones);
    const tombstoneFile = kept ? undefined : await writeTombstones(connection, run, merged.deletes);
    return {
      staging: local.stagingInfo,
      published: [...plan.published, ...plan.tombstones],
      counts: merged.counts,
      rowsRead: merged.read.staging,
      rowsCarried: merged.read.published,
      deletesRemembered: merged.read.tombstone,
      rowsRejected: merged.counts.rejected + merged.salvaged.filter((r) => r.line !== undefined).length,
      objectsRejected: merged.salvaged.filter((r) => r.line === undefined).length,
      rejected: [...merged.salvaged, ...merged.rejectedRows],
      parts,
      partStats: stats.map((s) => s.stats),
      tombstoneFile,
      ...(kept ? { tombstonesKept: kept } : {}),
      ...(merged.keptParts ? { partsKept: true } : {}),
    };
  });
}

/**
 * The published remembered-deletes file when the merge's remembered deletes are exactly its rows: there is one
 * such file, every row the merge read from it is still the latest version of its message (kind `deleted`, so
 * its id, feed position and capture time are the delete's), and no row of another input is a delete. The
 * file then holds the deletes a new file would, row for row; otherwise undefined (a new file is written).
 */
export function rememberedUnchanged(
  merged: {
    readonly counts: RowCounts;
    readonly read: { readonly tombstone: number };
    readonly deletedByOrigin: readonly number[];
  },
  tombstones: readonly ObjectInfo[],
): ObjectInfo | undefined {
  const [file] = tombstones;
  if (!file || tombstones.length !== 1 || merged.read.tombstone === 0) return undefined;
  const fromFile = merged.deletedByOrigin[INPUT_ORIGINS.indexOf('tombstone')] ?? 0;
  return fromFile === merged.read.tombstone && merged.counts.deleted === fromFile ? file : undefined;
}

export interface LocalInputs {
  readonly stagingInfo: ObjectInfo[];
  /** Local staging files; a refused one is replaced by its repaired copy. */
  readonly staging: string[];
  /** Each staging file's place in the partition's whole listing (default: its index here); names the local copies. */
  readonly stagingNumbers?: readonly number[];
  readonly published: PublishedFile[];
  readonly tombstones: PublishedFile[];
}

async function downloadInputs(run: PartitionRun, plan: PartitionPlan, keyOf: Map<string, string>): Promise<LocalInputs> {
  const inDir = join(run.work, 'in');
  await mkdir(inDir, { recursive: true });
  const retry = run.deps.retry ?? DEFAULT_RETRY;
  const fetch = async (objects: readonly ObjectInfo[], name: (i: number) => string) => {
    const paths = objects.map((_, i) => join(inDir, name(i)));
    for (const [i, o] of objects.entries()) keyOf.set(paths[i] as string, o.key);
    const infos = await mapLimit(objects, run.settings.transferConcurrency, (o, i) =>
      downloadVerified(run.deps.store, o.key, paths[i] as string, retry),
    );
    return { paths, infos };
  };
  const pad = (i: number) => String(i).padStart(6, '0');
  const staging = await fetch(plan.staging, stagingLocalName);
  const published = await fetch(plan.published, (i) => `published-${pad(i)}.parquet`);
  const tombstones = await fetch(plan.tombstones, (i) => `tombstones-${pad(i)}.parquet`);
  const withKeys = (f: { paths: string[]; infos: ObjectInfo[] }) =>
    f.paths.map((path, i) => ({ path, key: (f.infos[i] as ObjectInfo).key }));
  return {
    stagingInfo: staging.infos,
    staging: staging.paths,
    published: withKeys(published),
    tombstones: withKeys(tombstones),
  };
}

/**
 * Downloads one object and checks that the file has the object's full size: a stream that ended early
 * is retried like a throttled call instead of reaching DuckDB as a truncated file.
 */
/**
 * The local name of the staging object at place `n` of the partition's listing. The merge's tie order
 * compares these names, so a split task names its copies the same way to pick the same rows.
 */
export const stagingLocalName = (n: number) => `${String(n).padStart(6, '0')}.ndjson.gz`;

export async function downloadVerified(store: ObjectStore, key: string, path: string, retry: RetryPolicy): Promise<ObjectInfo> {
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

/**
 * Runs the merge (compactionSql.ts: stage the staging rows, select the winners on narrow columns, write
 * the winners' rows). If DuckDB refuses the staging input (malformed JSON, a duplicate key, a lone
 * surrogate, wrong types) each staging file is probed alone, the refused ones are salvaged line by line,
 * and the staging step runs again. Rows that parse but break a staging rule are counted by the selection
 * and then read back with their reasons from the staged rows (only on days that have such rows).
 */
async function runMerge(
  connection: DuckDBConnection,
  run: PartitionRun,
  local: LocalInputs,
  keyOf: Map<string, string>,
  incremental: boolean,
) {
  const staged = join(run.work, 'staged.parquet');
  const stage = () =>
    connection.run(
      `COPY (${stagedInputSql(local.staging)}) TO ${quoteLiteral(staged)} (${stagedCopyOptionsSql(run.settings)})`,
      partitionParams(run.tenant, run.date),
    );
  let salvaged: RejectedInput[] = [];
  if (local.staging.length > 0) {
    try {
      await stage();
    } catch (error) {
      if (!isInputError(error)) throw error;
      salvaged = await salvageRefusedFiles(connection, run, local, keyOf);
      await stage();
    }
    // the staging copies are not read again: their disk is free before the output is written
    await Promise.all(local.staging.map((file) => rm(file, { force: true })));
  }
  const sources: MergeSources = {
    ...(local.staging.length > 0 ? { staged } : {}),
    published: local.published,
    tombstones: local.tombstones,
  };
  const outDir = join(run.work, 'out');
  try {
    const inputs = [
      ...(sources.staged ? [sources.staged] : []),
      ...sources.published.map((f) => f.path),
      ...sources.tombstones.map((f) => f.path),
    ];
    const backfilled = inputs.length > 0 && Boolean((await connection.runAndReadAll(hasBackfillSql(inputs))).getRows()[0]?.[0]);
    if (backfilled && incremental) {
      throw new FullFoldNeeded(`tenant ${run.tenant} for ${run.date} holds backfilled versions: folding the whole day`);
    }
    await connection.run(`CREATE OR REPLACE TEMP TABLE ${quoteIdent(MERGE_ROWS)} AS ${mergeRowsSql(sources, backfilled)}`);
    const counted = (await connection.runAndReadAll(mergeTallySql(MERGE_ROWS))).getRowObjectsJS() as {
      input_origin: number;
      row_kind: number;
      n: number;
      deletes: { message_id: string; source_seq: string; ingested_at: bigint }[] | null;
    }[];
    const { counts, read, deletes, deletedByOrigin } = tallyFromCounts(
      counted,
      counted.flatMap((c) => (c.deletes ?? []).map((d): RememberedDelete => ({ ...d, ingested_at: Number(d.ingested_at) }))),
    );
    const keptParts = incremental && partsStayCurrent(counted, read.published, sources.published.length);
    // kept parts: only the staged rows' winners are written, beside the published parts
    const written = keptParts ? counts.current - read.published : counts.current;
    const parts =
      written > 0
        ? await copyParts(
            connection,
            `COPY (${winnerRowsSql(keptParts ? { ...sources, published: [] } : sources, MERGE_ROWS)}) TO ${quoteLiteral(outDir)} (${parquetCopyOptionsSql(run.settings)}, RETURN_STATS true)`,
          )
        : [];
    const stagedRows = { sql: `(SELECT * EXCLUDE (input_origin) FROM read_parquet(${quoteLiteral(staged)}))` };
    const rejectedRows = counts.rejected > 0 ? await rejectedRowLines(connection, run, stagedRows, keyOf) : [];
    return { counts, read, deletes, deletedByOrigin, salvaged, rejectedRows, keptParts, written, parts };
  } finally {
    await connection.run(`DROP TABLE IF EXISTS ${quoteIdent(MERGE_ROWS)}`);
  }
}

/**
 * A full fold whose downloaded inputs (staging objects, published parts, remembered deletes) are at most this
 * many bytes, and at most a quarter of the target part size (its output is one part), runs as one statement
 * (runSmallMerge). A small tenant's day is a few hundred KB; the statement holds its rows in memory.
 */
export const SMALL_MERGE_BYTES = 4 * 1024 * 1024;

/**
 * The merge of a small partition as one statement (smallMergeSql): the staging is read once, classified with
 * the published parts and remembered deletes over whole rows, counted by the tally function and the winners
 * written, instead of staging → staged file → backfill check → classification → counts → winners (about a
 * quarter of a small partition's statement time, docs/PERFORMANCE.md). Not for an incremental fold, which
 * must find a backfilled version before it writes (FullFoldNeeded). Refused staging is salvaged as in runMerge.
 */
async function runSmallMerge(connection: DuckDBConnection, run: PartitionRun, local: LocalInputs, keyOf: Map<string, string>) {
  await installTally(run.deps.db);
  const runKey = `merge/${run.tenant}/${run.date}/${run.runId}`;
  const tally = openTally(runKey);
  const outDir = join(run.work, 'out');
  const files = () => ({ staging: local.staging, published: local.published, tombstones: local.tombstones });
  const merge = () =>
    copyParts(
      connection,
      `COPY (${smallMergeSql(files(), TALLY_FUNCTION, runKey)}) TO ${quoteLiteral(outDir)} (${parquetCopyOptionsSql(run.settings)}, RETURN_STATS true)`,
      mergeParams(run.tenant, run.date, files()),
    );
  try {
    let salvaged: RejectedInput[] = [];
    let parts: WrittenPart[];
    try {
      parts = await merge();
    } catch (error) {
      if (!isInputError(error)) throw error;
      // nothing of the refused statement counts: its tally and any file it began
      tally.reset();
      await rm(outDir, { recursive: true, force: true });
      salvaged = await salvageRefusedFiles(connection, run, local, keyOf);
      parts = await merge();
    }
    const { counts, read, deletes, deletedByOrigin } = tally.read();
    const stagedRows = { sql: `(${stagedRowsSql(local.staging)})`, params: partitionParams(run.tenant, run.date) };
    const rejectedRows = counts.rejected > 0 ? await rejectedRowLines(connection, run, stagedRows, keyOf) : [];
    return { counts, read, deletes, deletedByOrigin, salvaged, rejectedRows, keptParts: false, written: counts.current, parts };
  } finally {
    tally.end();
  }
}

/**
 * A partition keeps at most this many parts by appending (partsStayCurrent); a fold past it writes them again as
 * one (each part read costs every later merge a file).
 */
export const MAX_KEPT_PARTS = 8;

/**
 * Whether an incremental merge may keep the published parts as they are and add the staged rows' winners as a
 * new part: every published row is still current (kind 0 — no staged row supersedes, duplicates or deletes a
 * published message), so the published parts hold exactly the published origin's current rows, row for row,
 * and the new version's rows are those parts plus the staged winners. Not for an empty published partition
 * (its 0-row part would be kept for nothing) nor past MAX_KEPT_PARTS.
 */
export function partsStayCurrent(
  counted: readonly { input_origin: number; row_kind: number; n: number }[],
  publishedRows: number,
  publishedParts: number,
): boolean {
  if (publishedRows === 0 || publishedParts === 0 || publishedParts >= MAX_KEPT_PARTS) return false;
  const published = INPUT_ORIGINS.indexOf('published');
  const current = ROW_KINDS.indexOf('current');
  const stayed = counted.filter((c) => c.input_origin === published && c.row_kind === current).reduce((n, c) => n + c.n, 0);
  return stayed === publishedRows;
}

/** The merge's temporary table of classified rows (mergeRowsSql; one per connection). */
const MERGE_ROWS = 'merge_rows';

/**
 * Whether DuckDB refused the input itself (malformed JSON, a duplicate key, a value of the wrong type), the
 * only failures the line-by-line salvage can help with. Out of memory, disk full or an interrupted query
 * fail the partition as they are.
 */
export function isInputError(error: unknown): boolean {
  const message = error instanceof Error ? error.message : '';
  return (
    /^(Invalid Input|Conversion) Error/.test(message) || (/^IO Error/.test(message) && !/No space left|write/i.test(message))
  );
}

/** Probes each staging file alone; salvages the ones DuckDB refuses and puts the repaired file in their place. */
export async function salvageRefusedFiles(
  connection: DuckDBConnection,
  run: PartitionRun,
  local: LocalInputs,
  keyOf: Map<string, string>,
): Promise<RejectedInput[]> {
  const rejected: RejectedInput[] = [];
  const scratch = join(run.work, 'probe.ndjson.gz');
  const probeLines = async (lines: readonly StagingLine[]) => {
    await writeStagingLines(scratch, lines);
    return refusal(connection, scratch);
  };
  for (const [i, file] of local.staging.entries()) {
    if ((await refusal(connection, file)) === undefined) continue;
    const key = keyOf.get(file) ?? file;
    const salvage = await salvageStagingObject(file, key);
    const refused = await findRefusedLines(salvage.good, key, probeLines);
    const refusedLines = new Set(refused.map((r) => r.line));
    const repaired = join(run.work, 'in', `repaired-${local.stagingNumbers?.[i] ?? i}.ndjson.gz`);
    await writeStagingLines(
      repaired,
      salvage.good.filter((l) => !refusedLines.has(l.line)),
    );
    keyOf.set(repaired, key);
    rejected.push(...salvage.rejected, ...refused);
    local.staging[i] = repaired;
  }
  await rm(scratch, { force: true });
  return rejected;
}

/** DuckDB's input error reading one staging file with every column parsed, or undefined when it reads it. */
async function refusal(connection: DuckDBConnection, file: string): Promise<string | undefined> {
  try {
    const columns = STAGING_COLUMNS.map((c) => quoteIdent(c.name)).join(', ');
    await connection.run(`SELECT max(hash(${columns})) FROM ${readStagingSql([file])}`);
    return undefined;
  } catch (error) {
    if (!isInputError(error)) throw error;
    // the local file and its line numbers mean nothing to a reader of the quarantine: the entry names the object and line
    const first = (error as Error).message.split('\n')[0] ?? '';
    return first
      .replace(/ in file "[^"]*"/, '')
      .replace(/,? in line \d+/, '')
      .trim()
      .slice(0, 500);
  }
}

/**
 * Rows DuckDB read but that break a staging rule, with the reason and the object they came from. `rows` is
 * a relation of validated staging rows (staging columns, `filename`, `reject_reason`) and its parameters.
 */
export async function rejectedRowLines(
  connection: DuckDBConnection,
  run: PartitionRun,
  rows: { readonly sql: string; readonly params?: Record<string, string | number> },
  keyOf: Map<string, string>,
): Promise<RejectedInput[]> {
  const out = join(run.work, 'rejected.ndjson');
  await connection.run(
    `COPY (SELECT reject_reason, filename, * EXCLUDE (reject_reason, filename)
           FROM ${rows.sql} WHERE reject_reason IS NOT NULL ORDER BY filename)
     TO ${quoteLiteral(out)} (FORMAT json)`,
    rows.params,
  );
  const text = await readFile(out, 'utf8');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const { reject_reason, filename, ...raw } = JSON.parse(line) as Record<string, unknown>;
      return { reason: String(reject_reason), object_key: keyOf.get(String(filename)) ?? String(filename), raw };
    });
}

/** part-0.parquet, part-1.parquet, ... in part order; any error reading the folder fails the partition. */
export async function partFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir);
  const parts = names.filter((n) => /^part-\d+\.parquet$/.test(n)).sort((a, b) => partNo(a) - partNo(b));
  for (const [i, name] of parts.entries()) {
    if (partNo(name) !== i) throw new CompactionError(`unexpected output file ${name} in ${dir}`);
  }
  return parts.map((name) => join(dir, name));
}

const partNo = (name: string) => Number(/\d+/.exec(name)?.[0]);

/** Runs a `COPY … (FORMAT parquet, RETURN_STATS true)` and returns the files it wrote (writtenParts). */
async function copyParts(connection: DuckDBConnection, sql: string, params?: Record<string, string | number>) {
  return writtenParts((await connection.runAndReadAll(sql, params)).getRowObjectsJS());
}

/**
 * Each part file (partFiles order) with the row count and statistics its writer reported, after checking that
 * the folder holds exactly the files the writer reported, each at the size it reported: a missing, extra or
 * short file fails the partition before anything is published. The rows are the writer's count (the footer is
 * not read back: docs/ARCHITECTURE.md, "Verify").
 */
export async function writtenAsReported(files: readonly string[], reported: readonly WrittenPart[]): Promise<WrittenPart[]> {
  const byName = new Map(reported.map((p) => [p.name, p]));
  const parts: WrittenPart[] = [];
  for (const file of files) {
    const part = byName.get(basename(file));
    const size = (await stat(file)).size;
    if (!part || part.bytes !== size) {
      throw new CompactionError(
        `the merge wrote ${basename(file)} (${size} bytes) but its writer reported ${part ? `${part.bytes} bytes` : 'no such file'}: nothing was published`,
      );
    }
    parts.push(part);
  }
  const extra = reported.filter((p) => p.rows > 0 && !files.some((f) => basename(f) === p.name));
  if (extra.length > 0) {
    throw new CompactionError(
      `the merge's writer reported ${extra.map((p) => p.name).join(', ')}, not found: nothing was published`,
    );
  }
  return parts;
}

/** The files hold exactly `expected` rows (their footers say so), or the partition fails before publishing. */
export async function verifyRowCount(connection: DuckDBConnection, files: readonly string[], expected: number, what: string) {
  const found =
    files.length === 0
      ? 0
      : Number((await connection.runAndReadAll(parquetRowCountSql(files))).getRowObjectsJS()[0]?.row_count ?? -1);
  checkRowCount(found, expected, what);
}

/** The files' `found` rows are the `expected` ones, or the partition fails before publishing. */
function checkRowCount(found: number, expected: number, what: string) {
  if (found !== expected) {
    throw new CompactionError(`the ${what} hold ${found} rows, the merge counted ${expected}: nothing was published`, {
      context: { expected, found },
    });
  }
}

/** Writes the remembered deletes (messages whose latest version is a user delete) as a local Parquet file. */
export async function writeTombstones(
  connection: DuckDBConnection,
  run: PartitionRun,
  deletes: readonly { message_id: string; source_seq: string; ingested_at: number }[],
): Promise<string | undefined> {
  if (deletes.length === 0) return undefined;
  const ndjson = join(run.work, 'tombstones.ndjson');
  const file = join(run.work, 'tombstones.parquet');
  await writeFile(ndjson, deletes.map((d) => `${JSON.stringify(d)}\n`).join(''));
  const written = await connection.run(
    `COPY (${tombstoneFileSql(ndjson)}) TO ${quoteLiteral(file)} (FORMAT parquet, COMPRESSION zstd)`,
  );
  // the writer's count of the rows it wrote (the footer is not read back, as for the parts)
  checkRowCount(written.rowsChanged, deletes.length, 'tombstone file');
  return file;
}
