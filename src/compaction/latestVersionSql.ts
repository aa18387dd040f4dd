/**
 * The latest-version selection, picked on narrow columns and applied to wide rows.
 *
 * Windowing whole rows (every column carried through a partitioned sort) is what made the compaction spill
 * at 1M messages under a 1 GB memory limit (docs/PERFORMANCE.md). Here the window sees only the columns
 * that decide a row's kind (message id, feed position, ingestion time, file name, op, reject reason); its
 * winners — one narrow row per message — are the build side of a hash semi-join that streams the wide rows
 * straight into the writer. The price is reading the input again (JSON parsing is paid per read), so this
 * wins where the wide window spills and costs more where it does not; the measurements are in
 * docs/PERFORMANCE.md.
 *
 * The classification is classifiedRowsSql's (the same window partition and order), so the kinds and counts
 * are the same; only which columns travel through the window changed.
 *
 * Not yet used by compactionSelectSql: under a 128 MB memory limit with one thread its three scans run out
 * of memory where the wide window spills (test/reliability/resourceBounds.test.ts; docs/PERFORMANCE.md 6a).
 */
import { quoteLiteral } from '../sql/quote.js';
import { LATEST_FIRST_SQL } from './compactionSql.js';

/** Columns of a row that decide its kind; the window carries only these. */
const NARROW_COLUMNS = 'message_id, source_seq, ingested_at, filename, op, reject_reason';

/** Columns that identify one staged row: the join from a message's winner back to its wide row. */
const ROW_KEY = ['message_id', 'source_seq', 'ingested_at', 'filename'] as const;

/**
 * Every row of `relation`, narrow, with its kind (index into ROW_KINDS): 0 current, 1 deleted, 2 superseded,
 * 3 duplicate, 4 rejected — and, on a message's winning row, whether the next row in the order has the same
 * key (`tied`: the same delivery written twice into one file, which the join cannot tell apart).
 */
export function narrowKindsSql(relation: string): string {
  return `SELECT ${ROW_KEY.join(', ')},
      CASE WHEN reject_reason IS NOT NULL THEN 4
           WHEN version_rank > 1 AND source_seq = newer_seq THEN 3
           WHEN version_rank > 1 THEN 2
           WHEN op = 'delete' THEN 1
           ELSE 0 END AS row_kind,
      version_rank = 1 AND next_seq IS NOT DISTINCT FROM source_seq AND next_ingested_at IS NOT DISTINCT FROM ingested_at
        AND next_filename IS NOT DISTINCT FROM filename AS tied
    FROM (
      SELECT ${NARROW_COLUMNS}, row_number() OVER latest_first AS version_rank,
        lag(source_seq) OVER latest_first AS newer_seq,
        lead(source_seq) OVER latest_first AS next_seq,
        lead(ingested_at) OVER latest_first AS next_ingested_at,
        lead(filename) OVER latest_first AS next_filename
      FROM ${relation}
      WINDOW latest_first AS (PARTITION BY reject_reason IS NULL, message_id ORDER BY ${LATEST_FIRST_SQL})
    )`;
}

/**
 * The current rows of `relation` (its every column), each message's latest version once. Every row's kind
 * passes once through `tallyFunction(runKey, kind)`, which counts it and is true for current rows.
 *
 * `relation` is any parenthesised query or table with every staging column, `filename` and `reject_reason`
 * (NULL when the row may be used); it is scanned three times: narrow for the classification, wide for the
 * winners, and once more for winners written twice into one file (the same delivery twice: the join cannot
 * tell the copies apart, so those few rows go through DISTINCT ON). Rejected rows never win: they are
 * classified apart and only rows without a reject reason are joined back.
 *
 * @example
 * latestVersionsSql(`(${stagedRowsSql(files)})`, TALLY_FUNCTION, runId)
 */
export function latestVersionsSql(relation: string, tallyFunction: string, runKey: string): string {
  const joinOn = ROW_KEY.map((c) => `r.${c} = w.${c}`).join(' AND ');
  const wide = (tied: boolean) =>
    `SELECT r.* FROM ${relation} r SEMI JOIN winners w ON ${joinOn} AND ${tied ? '' : 'NOT '}w.tied WHERE r.reject_reason IS NULL`;
  // MATERIALIZED: the tally must see each row exactly once, however often the winners are read.
  return `WITH winners AS MATERIALIZED (
      SELECT ${ROW_KEY.join(', ')}, tied FROM (${narrowKindsSql(relation)})
      WHERE ${tallyFunction}(${quoteLiteral(runKey)}, row_kind)
    )
    ${wide(false)}
    UNION ALL
    SELECT DISTINCT ON (message_id) * FROM (${wide(true)})`;
}
