/**
 * The compaction as SQL, built from the one schema. The same text runs in DuckDB here; issue-level
 * generators for Athena/Synapse reuse the ordering and validity rules from this module.
 */
import { MESSAGE_COLUMNS, STAGING_COLUMNS, STAGING_OPS } from '../schema/messageSchema.js';
import { quoteIdent, quoteLiteral, quoteStringList } from '../sql/quote.js';
import { jstDayRange } from '../time/jst.js';

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

/**
 * Latest version first: feed positions compare as numbers (length, then digits: no leading zeros),
 * exact re-deliveries of one version keep the first delivery, then the first file name, so the pick is
 * deterministic and a re-run gives the same rows.
 */
export const LATEST_FIRST_SQL = 'length(source_seq) DESC, source_seq DESC, ingested_at ASC, filename ASC';

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

/** Every staging line with the reason it cannot be used (NULL when it can); binds partitionParams. */
export function stagedRowsSql(files: readonly string[]): string {
  return `SELECT *, ${REJECT_REASON_SQL} AS reject_reason FROM ${readStagingSql(files)}`;
}

/**
 * Each row's kind (index into ROW_KINDS): 0 current (latest version, kept), 1 deleted (latest version is a
 * user delete), 2 superseded (an older version), 3 duplicate (a re-delivery of a version already seen),
 * 4 rejected. Rejected rows are windowed apart so they never take the place of a valid version.
 */
export function classifiedRowsSql(relation: string): string {
  return `SELECT *,
      CASE WHEN reject_reason IS NOT NULL THEN 4
           WHEN version_rank > 1 AND source_seq = newer_seq THEN 3
           WHEN version_rank > 1 THEN 2
           WHEN op = 'delete' THEN 1
           ELSE 0 END AS row_kind
    FROM (
      SELECT *, row_number() OVER latest_first AS version_rank, lag(source_seq) OVER latest_first AS newer_seq
      FROM ${relation}
      WINDOW latest_first AS (PARTITION BY reject_reason IS NULL, message_id ORDER BY ${LATEST_FIRST_SQL})
    )`;
}

/**
 * The whole compaction of one tenant-day as one statement: read, validate, classify, count (through
 * `tallyFunction`) and keep the current rows. The rows are not sorted: an ORDER BY over a day of wide rows
 * tripled the time at 1M messages and ran out of memory at 1 GB (docs/PERFORMANCE.md); readers filter by
 * partition, and the row order inside a file carries no meaning.
 */
export function compactionSelectSql(files: readonly string[], tallyFunction: string, runKey: string): string {
  return `SELECT ${parquetProjectionSql()}
  FROM (${classifiedRowsSql(`(${stagedRowsSql(files)})`)})
  WHERE ${tallyFunction}(${quoteLiteral(runKey)}, row_kind)`;
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
