import { basename } from 'node:path';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { MESSAGE_COLUMNS } from '../core/schema/messageSchema.js';
import { quoteIdent } from '../core/sql/quote.js';
import { withConnection } from '../ports/duckdb/openDuckDb.js';
import { parquetStatsSql, STATS_COLUMNS } from './compactionSql.js';

/**
 * Delta's per-file statistics (`numRecords`, `minValues`, `maxValues`, `nullCount`) of a part, from its
 * footer. Instants are written as ISO-8601 UTC with milliseconds; a string min/max longer than 32
 * characters is left out (readers then read the file: a cut value is not a bound).
 */
export async function partStats(db: DuckDBInstance, file: string): Promise<string> {
  return withConnection(db, async (connection) => (await partStatsOn(connection, file)).stats);
}

/** partStats on an open connection, with the part's row count (one statement over the footer). */
export async function partStatsOn(connection: DuckDBConnection, file: string): Promise<{ stats: string; rows: number }> {
  const columns = new Map<string, ColumnStats>();
  let rows = 0;
  for (const [name, min, max, nulls, numRows] of (await connection.runAndReadAll(parquetStatsSql(file))).getRows()) {
    rows = Number(numRows ?? 0);
    columns.set(String(name), { min, max, nulls: Number(nulls ?? 0) });
  }
  return { stats: deltaStats(rows, columns), rows };
}

/** A Parquet file as the COPY that wrote it reported it (`RETURN_STATS`): its name, size, rows and Delta statistics. */
export interface WrittenPart {
  /** The file's name in the COPY's folder. */
  readonly name: string;
  readonly bytes: number;
  readonly rows: number;
  readonly stats: string;
}

/**
 * The files a `COPY … (FORMAT parquet, RETURN_STATS true)` wrote, from its result rows: the writer's own row
 * count and per-column statistics (the same values its footer holds, without reading the footer back).
 */
export function writtenParts(result: readonly Record<string, unknown>[]): WrittenPart[] {
  return result.map((row) => {
    const rows = Number(row.count);
    const columns = new Map<string, ColumnStats>();
    for (const { key, value } of (row.column_statistics ?? []) as { key: string; value: { key: string; value: string }[] }[]) {
      const stat = new Map(value.map((v) => [v.key, v.value]));
      columns.set(key, {
        min: stat.get('min') ?? null,
        max: stat.get('max') ?? null,
        nulls: Number(stat.get('null_count') ?? 0),
      });
    }
    // the writer names each column as a quoted identifier ("created_at")
    const named = new Map<string, ColumnStats>();
    for (const name of STATS_COLUMNS) {
      const found = columns.get(quoteIdent(name));
      if (found) named.set(name, found);
    }
    return { name: basename(String(row.filename)), bytes: Number(row.file_size_bytes), rows, stats: deltaStats(rows, named) };
  });
}

/** One column's smallest and largest value (null when the file has none) and its null count. */
interface ColumnStats {
  readonly min: unknown;
  readonly max: unknown;
  readonly nulls: number;
}

/** Delta's statistics JSON of a file of `rows` rows: the stats columns' bounds (STATS_COLUMNS order) and null counts. */
function deltaStats(rows: number, columns: ReadonlyMap<string, ColumnStats>): string {
  const minValues: Record<string, string> = {};
  const maxValues: Record<string, string> = {};
  const nullCount: Record<string, number> = {};
  for (const column of rows === 0 ? [] : STATS_COLUMNS) {
    const found = columns.get(column);
    if (!found) continue;
    nullCount[column] = found.nulls;
    const instant = MESSAGE_COLUMNS.find((c) => c.name === column)?.parquet === 'TIMESTAMP_MS';
    const value = (v: unknown) =>
      v === null || v === undefined ? undefined : instant ? new Date(`${String(v).replace(' ', 'T')}Z`).toISOString() : String(v);
    const lo = value(found.min);
    const hi = value(found.max);
    if (lo !== undefined && (instant || lo.length <= 32)) minValues[column] = lo;
    if (hi !== undefined && (instant || hi.length <= 32)) maxValues[column] = hi;
  }
  return JSON.stringify({ numRecords: rows, minValues, maxValues, nullCount });
}
