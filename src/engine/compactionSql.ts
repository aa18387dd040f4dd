/**
 * The compaction as SQL, built from the one schema. The same text runs in DuckDB here; issue-level
 * generators for Athena/Synapse reuse the ordering and validity rules from this module.
 */
import {
  type ColumnSpec,
  MESSAGE_COLUMNS,
  STAGING_COLUMNS,
  STAGING_OPS,
  TOMBSTONE_COLUMNS,
} from '../core/schema/messageSchema.js';
import { quoteIdent, quoteLiteral, quoteStringList } from '../core/sql/quote.js';
import { BACKFILL_SEQ } from '../core/staging/layout.js';
import { jstDayRange } from '../core/time/jst.js';

/**
 * Largest staging line DuckDB will read: a Cosmos item is at most 2 MB, a DynamoDB item 400 KB. DuckDB's
 * JSON reader sizes its buffers from this (twice it, per thread), so it is kept at DuckDB's default
 * rather than larger: 64 MB made a 64 MB memory limit fail before reading a byte.
 */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;

/** DuckDB's read of staging files with the explicit schema: nothing is guessed. */
export function readStagingSql(files: readonly string[]): string {
  const columns = STAGING_COLUMNS.map((c) => `${quoteLiteral(c.name)}: ${quoteLiteral(c.staging)}`).join(', ');
  return `read_ndjson(${quoteStringList(files)}, columns = {${columns}}, format = 'newline_delimited', compression = 'gzip', filename = true, hive_partitioning = false, maximum_object_size = ${MAX_LINE_BYTES})`;
}

/**
 * Why a staging row cannot be used (NULL when it can). A row must belong to the partition it was found
 * in: bound parameters `$tenant`, `$date` and the UTC bounds of that JST day in epoch milliseconds
 * (`$day_start`, `$day_end`; see partitionParams).
 */
export const REJECT_REASON_SQL = `CASE
    WHEN message_id IS NULL THEN 'missing message_id'
    WHEN tenant_id IS DISTINCT FROM $tenant THEN 'tenant_id ' || coalesce(tenant_id, 'null') || ' does not match the partition'
    WHEN created_at IS NULL THEN 'missing created_at'
    WHEN dt IS DISTINCT FROM $date THEN 'dt ' || coalesce(dt, 'null') || ' does not match the partition'
    WHEN created_at < $day_start OR created_at >= $day_end THEN 'created_at is not in the JST day ' || dt
    WHEN op IS NULL OR op NOT IN (${STAGING_OPS.map(quoteLiteral).join(', ')}) THEN 'unknown op ' || coalesce(op, 'null')
    WHEN source_seq IS NULL OR NOT regexp_full_match(source_seq, '[0-9]{1,64}') THEN 'source_seq must be decimal digits'
    WHEN source IS NULL OR attributes IS NULL OR ingested_at IS NULL THEN 'missing source, attributes or ingested_at'
    ELSE NULL END`;

/** Whether a row is a backfilled version (SQL). */
const BACKFILLED_SQL = `(source_seq = '${BACKFILL_SEQ}')`;

/**
 * A version's identity beyond (message_id, source_seq): a backfilled version is also named by its version
 * time (`ingested_at`), so two backfills of one message are two versions, not copies of one.
 */
export const VERSION_TIME_KEY_SQL = `CASE WHEN ${BACKFILLED_SQL} THEN ingested_at END`;

/**
 * Latest version first among versions of one kind: feed positions compare as numbers (length, then digits:
 * no leading zeros), exact re-deliveries of one version keep the first delivery, then the first file name,
 * so the pick is deterministic and a re-run gives the same rows. classifiedRowsSql puts the version time
 * (versionTimesSql) before it, which orders backfilled versions against captured ones.
 */
export const LATEST_FIRST_SQL = 'length(source_seq) DESC, source_seq DESC, ingested_at ASC, filename ASC';

/**
 * LATEST_FIRST_SQL over the merge's inputs: one version found both in staging and published (or remembered)
 * with the same capture time is a duplicate, and the staging copy wins the tie (`input_origin` 0), then the
 * file name. A copy with an earlier capture time wins first, as for any re-delivery.
 */
export const MERGE_LATEST_FIRST_SQL = 'length(source_seq) DESC, source_seq DESC, ingested_at ASC, input_origin ASC, filename ASC';

/**
 * Every row with its `version_at` (epoch ms), the time the merge orders a message's versions by
 * (docs/ARCHITECTURE.md, "Order by time"):
 * - a backfilled version (position `0`): its `ingested_at`, the instant its image was true (the table read's
 *   start, the full export's time, the incremental export's write time);
 * - a captured version: the capture time (`ingested_at`) of the message's latest captured version (the
 *   highest position, its first delivery). Every captured version of a message shares it, so among them the
 *   feed positions decide exactly as before; a capture time is never earlier than the write it carries.
 * Only columns every input keeps are used (published rows and remembered deletes have `ingested_at`), so a
 * version weighs the same whether it is still staged or already published.
 */
function versionTimesSql(relation: string, latestFirst: string): string {
  return `SELECT *,
      CASE WHEN ${BACKFILLED_SQL} THEN ingested_at
           ELSE first_value(ingested_at) OVER (PARTITION BY reject_reason IS NULL, message_id ORDER BY ${BACKFILLED_SQL} ASC, ${latestFirst})
      END AS version_at
    FROM ${relation}`;
}

/** Where a row of the merge comes from; also the tie order of one version found in several places. */
export const INPUT_ORIGINS = ['staging', 'published', 'tombstone'] as const;
export type InputOrigin = (typeof INPUT_ORIGINS)[number];

/** A local copy of a published object (a part or a tombstone file) and the key it was read from. */
export interface PublishedFile {
  readonly path: string;
  readonly key: string;
}

/**
 * The inputs of one partition's merge, as local files: the staged rows (the staging objects read once into
 * one Parquet file by stagedInputSql; absent when the partition has no staging), the published parts and
 * the remembered deletes.
 */
export interface MergeSources {
  readonly staged?: string;
  readonly published: readonly PublishedFile[];
  readonly tombstones: readonly PublishedFile[];
}

/** The Parquet projection: staging epoch milliseconds become TIMESTAMP_MS (INT64 millis in the file). */
export function parquetProjectionSql(): string {
  return MESSAGE_COLUMNS.map((c) =>
    c.parquet === 'TIMESTAMP_MS'
      ? `CAST(epoch_ms(${quoteIdent(c.name)}) AS TIMESTAMP_MS) AS ${quoteIdent(c.name)}`
      : `CAST(${quoteIdent(c.name)} AS ${c.parquet}) AS ${quoteIdent(c.name)}`,
  ).join(',\n    ');
}

/** The bound parameters of REJECT_REASON_SQL for one partition. */
export function partitionParams(tenant: string, date: string) {
  const { startMs, endMs } = jstDayRange(date);
  return { tenant, date, day_start: startMs, day_end: endMs };
}

/**
 * The bound parameters of a statement over mergeInputSql(files): DuckDB refuses a parameter the statement
 * does not use, and only staging rows are validated (a merge of published rows alone binds no day bounds).
 */
export function mergeParams(tenant: string, date: string, files: MergeFiles) {
  const { day_start, day_end, ...partition } = partitionParams(tenant, date);
  return files.staging.length > 0 ? { ...partition, day_start, day_end } : partition;
}

/** Every staging line with the reason it cannot be used (NULL when it can); binds partitionParams. */
export function stagedRowsSql(files: readonly string[]): string {
  return `SELECT *, ${REJECT_REASON_SQL} AS reject_reason FROM ${readStagingSql(files)}`;
}

/**
 * Each row's kind (index into ROW_KINDS): 0 current (latest version, kept), 1 deleted (latest version is a
 * user delete), 2 superseded (an older version), 3 duplicate (a re-delivery of a version already seen),
 * 4 rejected. Rejected rows are windowed apart so they never take the place of a valid version.
 *
 * Latest first is the later `version_at` (versionTimesSql), at an equal time the captured version (a
 * backfill can be run again later, a captured change cannot be captured again), then `latestFirst`. A
 * backfilled version therefore supersedes the captured versions of its message when their latest was
 * captured before the backfill's time, and a later backfill supersedes an earlier one.
 */
export function classifiedRowsSql(
  relation: string,
  latestFirst: string = LATEST_FIRST_SQL,
  /**
   * false when no input row is backfilled (hasBackfillSql): every captured version of a message then has the
   * same version time, so the window that computes it changes nothing and is left out (same rows, faster).
   */
  versionTimes = true,
): string {
  return `SELECT *,
      CASE WHEN reject_reason IS NOT NULL THEN 4
           WHEN version_rank > 1 AND source_seq = newer_seq AND (NOT ${BACKFILLED_SQL} OR ingested_at = newer_at) THEN 3
           WHEN version_rank > 1 THEN 2
           WHEN op = 'delete' THEN 1
           ELSE 0 END AS row_kind
    FROM (
      SELECT *, row_number() OVER latest_first AS version_rank, lag(source_seq) OVER latest_first AS newer_seq,
        lag(ingested_at) OVER latest_first AS newer_at
      FROM (${versionTimes ? versionTimesSql(relation, latestFirst) : `SELECT *, 0::BIGINT AS version_at FROM ${relation}`})
      WINDOW latest_first AS (PARTITION BY reject_reason IS NULL, message_id ORDER BY ${versionTimes ? `version_at DESC, ${BACKFILLED_SQL} ASC, ` : ''}${latestFirst})
    )`;
}

/**
 * The merge runs as three statements, so that the latest-version selection never carries wide rows:
 *
 * 1. stagedInputSql: every staging line, validated, written once to a local Parquet file (the JSON is
 *    parsed once; Parquet is cheap to read twice, by column, with a row position).
 * 2. mergeRowsSql: the window over the narrow columns of every input (staged rows, published parts,
 *    remembered deletes) classifies each row into a small table: its position (`source_no`,
 *    `file_row_number`), kind and origin, and the id, feed position and capture time of a delete. The
 *    manifest's counts (mergeCountsSql) and the remembered deletes (mergeDeletesSql) are read from it.
 * 3. winnerRowsSql: the wide rows at the positions of current rows, projected to the Parquet columns.
 *
 * Windowing whole rows made a 1M-message day spill at 1 GB (docs/PERFORMANCE.md). The row position is
 * what makes the narrow selection exact: two copies of one delivery in one staging object are two rows,
 * and exactly one of them wins.
 */
export function stagedInputSql(files: readonly string[]): string {
  return `SELECT *, ${INPUT_ORIGINS.indexOf('staging')} AS input_origin FROM (${stagedRowsSql(files)})`;
}

/**
 * COPY options of the staged-rows file: snappy (at 1M messages 339 MB against lz4's 391 MB and 1,232 MB
 * uncompressed, and no slower than either; docs/PERFORMANCE.md 6c) and row groups a quarter of the output's
 * bytes: reading a row group back holds its column chunks in memory (a 32 MB group of 2 KB messages did not
 * fit a 128 MB limit), and more groups split the reads across threads.
 */
export function stagedCopyOptionsSql(options: Pick<ParquetOptions, 'rowGroupSize' | 'rowGroupBytes'>): string {
  return `FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE ${Math.trunc(options.rowGroupSize)}, ROW_GROUP_SIZE_BYTES ${Math.trunc(options.rowGroupBytes / 4)}`;
}

/**
 * Statement 2: every row of the merge, classified (classifiedRowsSql's `row_kind`, an index into ROW_KINDS),
 * with its position and origin; a delete (kind 1) also keeps its id, feed position and capture time.
 */
export function mergeRowsSql(sources: MergeSources, versionTimes = true): string {
  const deleted = (column: string) => `CASE WHEN row_kind = 1 THEN ${quoteIdent(column)} END`;
  return `SELECT source_no, file_row_number, row_kind::UTINYINT AS row_kind, input_origin::UTINYINT AS input_origin,
    ${deleted('message_id')} AS deleted_id, ${deleted('source_seq')} AS deleted_seq, ${deleted('ingested_at')} AS deleted_at
  FROM (${classifiedRowsSql(`(${mergeSourcesSql(sources, 'narrow')})`, MERGE_LATEST_FIRST_SQL, versionTimes)})`;
}

/**
 * Whether any of these Parquet files holds a backfilled row (position '0'), from their footers only: positions
 * have no leading zeros, so a file holds one exactly when its smallest `source_seq` is '0' (a row group
 * without statistics counts as holding one).
 */
export function hasBackfillSql(files: readonly string[]): string {
  return `SELECT coalesce(bool_or(stats_min_value IS NULL OR stats_min_value = ${quoteLiteral(BACKFILL_SEQ)}), false) AS backfilled
    FROM parquet_metadata(${quoteStringList(files)}) WHERE path_in_schema = 'source_seq'`;
}

/** Rows by origin and kind from a table of mergeRowsSql's rows. */
export function mergeCountsSql(rows: string): string {
  return `SELECT input_origin, row_kind, count(*)::INTEGER AS n FROM ${quoteIdent(rows)} GROUP BY ALL`;
}

/** The remembered deletes (message id, feed position, capture time) from a table of mergeRowsSql's rows. */
export function mergeDeletesSql(rows: string): string {
  return `SELECT deleted_id AS message_id, deleted_seq AS source_seq, deleted_at AS ingested_at
  FROM ${quoteIdent(rows)} WHERE row_kind = 1 ORDER BY message_id`;
}

/**
 * mergeCountsSql and mergeDeletesSql as one statement: rows by origin and kind, and with each group of
 * deletes (kind 1) its remembered deletes as a list of (message_id, source_seq, ingested_at).
 */
export function mergeTallySql(rows: string): string {
  return `SELECT input_origin, row_kind, count(*)::INTEGER AS n,
    list({'message_id': deleted_id, 'source_seq': deleted_seq, 'ingested_at': deleted_at} ORDER BY deleted_id) FILTER (WHERE row_kind = 1) AS deletes
  FROM ${quoteIdent(rows)} GROUP BY ALL`;
}

/** The tally call that counts each classified row (with the deletes' id, position, capture time) and keeps current rows. */
function tallyCallSql(tallyFunction: string, runKey: string): string {
  const deleted = (column: string) => `CASE WHEN row_kind = 1 THEN ${quoteIdent(column)} END`;
  return `${tallyFunction}(${quoteLiteral(runKey)}, row_kind, input_origin, ${deleted('message_id')}, ${deleted('source_seq')}, ${deleted('ingested_at')})`;
}

/**
 * Statement 3: the current rows as Parquet columns, fetched by position from the wide inputs; `rows` names
 * a table of mergeRowsSql's rows (the semi-join's build side: narrow, one row per message). The rows are not
 * sorted: an ORDER BY over a day of wide rows tripled the time at 1M messages and ran out of memory at 1 GB
 * (docs/PERFORMANCE.md); the row order inside a file carries no meaning.
 */
export function winnerRowsSql(sources: MergeSources, rows: string): string {
  return `SELECT ${parquetProjectionSql()}
  FROM (${mergeSourcesSql(sources, 'wide')}) r
  SEMI JOIN (SELECT source_no, file_row_number FROM ${quoteIdent(rows)} WHERE row_kind = 0) w
    ON r.source_no = w.source_no AND r.file_row_number = w.file_row_number`;
}

/**
 * The bucket of a message in a split compaction. md5 rather than DuckDB's hash(): every task of a split
 * must agree, and md5 does not change with the DuckDB version a task happens to run.
 */
export function splitBucketSql(buckets: number): string {
  return `(md5_number_upper(message_id) % ${Math.trunc(buckets)})::INTEGER`;
}

/**
 * The map step of a split compaction (docs/SCALING.md), over one range of the inputs: every row is validated
 * and counted through `tallyFunction` (kind 4 rejected, 3 a re-delivery of a version already kept in this
 * range, 0 kept), and of each version (message_id, source_seq, and a backfill's version time) only the first delivery in the merge's tie
 * order is kept, with its bucket. Staging rows carry the local file's name without its folder: the tie order
 * compares names, and every task names a staging object as the single pass does (by its place in the listing).
 */
export function splitMapSql(files: MergeFiles, tallyFunction: string, runKey: string, buckets: number): string {
  return `SELECT * EXCLUDE (version_rank, row_kind)
      REPLACE (CASE WHEN input_origin = ${INPUT_ORIGINS.indexOf('staging')} THEN parse_filename(filename) ELSE filename END AS filename),
      ${splitBucketSql(buckets)} AS bucket
  FROM (
    SELECT *, CASE WHEN reject_reason IS NOT NULL THEN 4 WHEN version_rank > 1 THEN 3 ELSE 0 END AS row_kind
    FROM (
      SELECT *, row_number() OVER (PARTITION BY reject_reason IS NULL, message_id, source_seq, ${VERSION_TIME_KEY_SQL} ORDER BY ${MERGE_LATEST_FIRST_SQL}) AS version_rank
      -- every column, whatever the range holds: a range of only remembered deletes has three of them
      FROM (${noRowsSql('staging shape')}
  UNION ALL BY NAME
  ${mergeInputSql(files)})
    )
  )
  WHERE ${tallyFunction}(${quoteLiteral(runKey)}, row_kind, input_origin, NULL::VARCHAR, NULL::VARCHAR, NULL::BIGINT)`;
}

/**
 * The reduce step of a split compaction, over one bucket's map outputs of every range: the first delivery of
 * each version across ranges (the same tie order), then exactly the single pass's classification, count
 * and projection. No version is delivered twice here, so the tally sees no duplicates; the split's
 * duplicates are the valid rows the maps read minus the versions the reduces classified.
 */
export function splitReduceSql(mapOutputs: readonly string[], tallyFunction: string, runKey: string): string {
  const firstDeliveries = `(SELECT * EXCLUDE (delivery_rank) FROM (
      SELECT *, row_number() OVER (PARTITION BY message_id, source_seq, ${VERSION_TIME_KEY_SQL} ORDER BY ${MERGE_LATEST_FIRST_SQL}) AS delivery_rank
      FROM read_parquet(${quoteStringList(mapOutputs)})
    ) WHERE delivery_rank = 1)`;
  return `SELECT ${parquetProjectionSql()}
  FROM (${classifiedRowsSql(firstDeliveries, MERGE_LATEST_FIRST_SQL)})
  WHERE ${tallyCallSql(tallyFunction, runKey)}`;
}

/**
 * A small partition's whole merge as one statement (mergePartition's one-statement merge): every input in
 * staging shape (mergeInputSql: the staging lines validated, the published parts and remembered deletes as
 * they were published) read once into a materialized relation with a position, the window over its narrow
 * columns (classifiedRowsSql, the version times always computed: exact with or without backfilled versions)
 * counting each row through `tallyFunction`, and the current rows fetched by position and projected to the
 * Parquet columns. Its rows, counts and deletes are the three-statement merge's (stagedInputSql, mergeRowsSql,
 * winnerRowsSql): the same rows in the same tie order (the staging file names are the local copies' in
 * both); it saves writing and reading the staged file, the backfill check and the temporary table. The
 * materialized rows are held in memory, so it is for small inputs only. Binds mergeParams.
 */
export function smallMergeSql(files: MergeFiles, tallyFunction: string, runKey: string): string {
  const narrow = `(SELECT ${NARROW_COLUMNS.map(quoteIdent).join(', ')}, merge_position FROM merge_input)`;
  // MATERIALIZED: the input is read once, so both uses see the same positions
  return `WITH merge_input AS MATERIALIZED (SELECT *, row_number() OVER () AS merge_position FROM (${mergeInputSql(files)}))
  SELECT ${parquetProjectionSql()}
  FROM merge_input
  SEMI JOIN (
    SELECT merge_position FROM (${classifiedRowsSql(narrow, MERGE_LATEST_FIRST_SQL)}) WHERE ${tallyCallSql(tallyFunction, runKey)}
  ) w ON merge_input.merge_position = w.merge_position`;
}

/** The inputs of one range of a split compaction, as local files (a map task reads them in staging shape). */
export interface MergeFiles {
  readonly staging: readonly string[];
  readonly published: readonly PublishedFile[];
  readonly tombstones: readonly PublishedFile[];
}

/**
 * Every version a split's map weighs, in staging shape: the staging rows (validated), the rows of the parts
 * the manifest names (the partition as published: op 'upsert', instants back to epoch milliseconds, the
 * part key as file name) and the remembered deletes (op 'delete' with the delete's feed position).
 */
export function mergeInputSql(files: MergeFiles): string {
  const origin = (o: InputOrigin) => `${INPUT_ORIGINS.indexOf(o)} AS input_origin`;
  const fromStaging = `SELECT *, ${origin('staging')} FROM (${stagedRowsSql(files.staging)})`;
  const published = files.published.map(
    (f) => `SELECT $tenant AS tenant_id, $date AS dt, ${stagingShapeSql(MESSAGE_COLUMNS)}, 'upsert' AS op,
      ${quoteLiteral(f.key)} AS filename, CAST(NULL AS VARCHAR) AS reject_reason, ${origin('published')}
    FROM read_parquet(${quoteLiteral(f.path)})`,
  );
  const tombstones = files.tombstones.map(
    (f) => `SELECT $tenant AS tenant_id, $date AS dt, ${stagingShapeSql(TOMBSTONE_COLUMNS)}, 'delete' AS op,
      ${quoteLiteral(f.key)} AS filename, CAST(NULL AS VARCHAR) AS reject_reason, ${origin('tombstone')}
    FROM read_parquet(${quoteLiteral(f.path)})`,
  );
  const relations = [...(files.staging.length > 0 ? [fromStaging] : []), ...published, ...tombstones];
  return relations.length > 0 ? relations.join('\n  UNION ALL BY NAME\n  ') : noRowsSql('staging shape');
}

/** Columns the latest-version selection needs (classifiedRowsSql and the tally), besides the row position. */
const NARROW_COLUMNS = ['message_id', 'source_seq', 'ingested_at', 'input_origin', 'filename', 'op', 'reject_reason'];

/**
 * Every version the merge weighs, with its position (`source_no`: 0 the staged rows, then each published
 * part, then each tombstone file; `file_row_number`). Published rows are the partition as published (op
 * 'upsert' — an expiry is kept like an upsert anyway — instants back to epoch milliseconds, the part key
 * as file name); remembered deletes are op 'delete' with the delete's feed position. Both were validated
 * when first compacted. `narrow`: NARROW_COLUMNS only; `wide`: every staging column, without the
 * tombstones (a delete is never written).
 */
function mergeSourcesSql(sources: MergeSources, columns: 'narrow' | 'wide'): string {
  const origin = (o: InputOrigin) => `${INPUT_ORIGINS.indexOf(o)} AS input_origin`;
  // with file_row_number = true, `*` includes the position
  const at = (n: number, path: string) =>
    `file_row_number, ${n} AS source_no FROM read_parquet(${quoteLiteral(path)}, file_row_number = true)`;
  const relations: string[] = [];
  if (sources.staged) {
    const staged = `0 AS source_no FROM read_parquet(${quoteLiteral(sources.staged)}, file_row_number = true)`;
    relations.push(
      `SELECT ${columns === 'narrow' ? `${NARROW_COLUMNS.map(quoteIdent).join(', ')}, file_row_number` : '*'}, ${staged}`,
    );
  }
  // tenant_id and dt are not Parquet columns (they are the path): the union fills them with NULL
  const published = stagingShapeSql(columns === 'narrow' ? TOMBSTONE_COLUMNS : MESSAGE_COLUMNS);
  for (const [i, f] of sources.published.entries()) {
    relations.push(`SELECT ${published}, 'upsert' AS op, ${quoteLiteral(f.key)} AS filename, CAST(NULL AS VARCHAR) AS reject_reason,
      ${origin('published')}, ${at(1 + i, f.path)}`);
  }
  for (const [i, f] of (columns === 'narrow' ? sources.tombstones : []).entries()) {
    relations.push(`SELECT ${stagingShapeSql(TOMBSTONE_COLUMNS)}, 'delete' AS op, ${quoteLiteral(f.key)} AS filename,
      CAST(NULL AS VARCHAR) AS reject_reason, ${origin('tombstone')}, ${at(1 + sources.published.length + i, f.path)}`);
  }
  return relations.length > 0 ? relations.join('\n  UNION ALL BY NAME\n  ') : noRowsSql();
}

/**
 * The merge's row shape with no rows (a partition whose only work is removing files its manifest does not
 * name); with the row position unless only the staging shape is wanted (a split's map).
 */
function noRowsSql(shape: 'with positions' | 'staging shape' = 'with positions'): string {
  const columns = STAGING_COLUMNS.map((c) => `CAST(NULL AS ${c.staging}) AS ${quoteIdent(c.name)}`);
  const positions = shape === 'with positions' ? ', 0 AS source_no, CAST(0 AS BIGINT) AS file_row_number' : '';
  return `SELECT ${columns.join(', ')}, CAST(NULL AS VARCHAR) AS filename, CAST(NULL AS VARCHAR) AS reject_reason,
    0 AS input_origin${positions} WHERE false`;
}

/** Parquet columns back to their staging types (TIMESTAMP_MS to epoch milliseconds). */
function stagingShapeSql(columns: readonly ColumnSpec[]): string {
  return columns
    .map((c) => (c.parquet === 'TIMESTAMP_MS' ? `epoch_ms(${quoteIdent(c.name)}) AS ${quoteIdent(c.name)}` : quoteIdent(c.name)))
    .join(', ');
}

/** The tombstone file's projection from rows of (message_id, source_seq, ingested_at epoch ms), by message id. */
export function tombstoneFileSql(ndjsonFile: string): string {
  const columns = TOMBSTONE_COLUMNS.map((c) => `${quoteLiteral(c.name)}: ${quoteLiteral(c.staging)}`).join(', ');
  const projection = TOMBSTONE_COLUMNS.map((c) =>
    c.parquet === 'TIMESTAMP_MS'
      ? `CAST(epoch_ms(${quoteIdent(c.name)}) AS TIMESTAMP_MS) AS ${quoteIdent(c.name)}`
      : quoteIdent(c.name),
  ).join(', ');
  return `SELECT ${projection} FROM read_ndjson(${quoteLiteral(ndjsonFile)}, columns = {${columns}}, format = 'newline_delimited') ORDER BY message_id`;
}

/** Total rows of Parquet files from their footers (no data read): the commit's check of what it publishes. */
export function parquetRowCountSql(files: readonly string[]): string {
  return `SELECT coalesce(sum(num_rows), 0)::BIGINT AS row_count FROM parquet_file_metadata(${quoteStringList(files)})`;
}

export interface ParquetOptions {
  readonly compression: 'snappy' | 'zstd';
  readonly targetFileBytes: number;
  readonly rowGroupSize: number;
  /**
   * A row group also ends at this many bytes. DuckDB's writer holds a whole row group per thread in memory:
   * 122,880 rows of 1 KB chat messages is ~150 MB each, which made any memory limit under ~300 MB fail.
   */
  readonly rowGroupBytes: number;
}

/** COPY options: files named part-0.parquet, part-1.parquet, ... rolled over at the target size. */
export function parquetCopyOptionsSql(options: ParquetOptions): string {
  return `FORMAT parquet, COMPRESSION ${options.compression}, ROW_GROUP_SIZE ${Math.trunc(options.rowGroupSize)}, ROW_GROUP_SIZE_BYTES ${Math.trunc(options.rowGroupBytes)}, FILE_SIZE_BYTES ${Math.trunc(options.targetFileBytes)}, FILENAME_PATTERN 'part-{i}'`;
}

/** Columns whose min/max/null counts the table's add actions carry (the ones readers filter on). */
export const STATS_COLUMNS = ['created_at', 'message_id', 'conversation_id', 'sender_id'] as const;

/**
 * Per-column statistics of one Parquet file from its footer (no data read): per stats column the smallest
 * and largest value (NULL when a row group has none: strings past the writer's statistics limit), the null
 * count, and the file's rows (each column's row groups add up to them). A file with no rows has no row
 * groups, so no rows here.
 */
export function parquetStatsSql(file: string): string {
  const columns = STATS_COLUMNS.map(quoteLiteral).join(', ');
  return `WITH m AS (SELECT * FROM parquet_metadata(${quoteLiteral(file)}) WHERE path_in_schema IN (${columns}))
SELECT path_in_schema AS name,
  CASE WHEN count(*) = count(stats_min_value) THEN min(stats_min_value) END AS min_value,
  CASE WHEN count(*) = count(stats_max_value) THEN max(stats_max_value) END AS max_value,
  sum(stats_null_count)::BIGINT AS null_count,
  sum(row_group_num_rows)::BIGINT AS num_rows
FROM m GROUP BY path_in_schema`;
}

/** A Parquet file with the table's columns and no rows: a partition whose messages are all deleted. */
export function emptyPartSql(file: string, options: ParquetOptions): string {
  const projection = MESSAGE_COLUMNS.map((c) => `CAST(NULL AS ${c.parquet}) AS ${quoteIdent(c.name)}`).join(', ');
  return `COPY (SELECT ${projection} WHERE false) TO ${quoteLiteral(file)} (FORMAT parquet, COMPRESSION ${options.compression})`;
}
