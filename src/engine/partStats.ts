import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { MESSAGE_COLUMNS } from '../core/schema/messageSchema.js';
import { withConnection } from '../ports/duckdb/openDuckDb.js';
import { parquetStatsSql } from './compactionSql.js';

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
  const minValues: Record<string, string> = {};
  const maxValues: Record<string, string> = {};
  const nullCount: Record<string, number> = {};
  let rows = 0;
  for (const [name, min, max, nulls, numRows] of (await connection.runAndReadAll(parquetStatsSql(file))).getRows()) {
    const column = String(name);
    rows = Number(numRows ?? 0);
    if (rows === 0) continue;
    nullCount[column] = Number(nulls ?? 0);
    const instant = MESSAGE_COLUMNS.find((c) => c.name === column)?.parquet === 'TIMESTAMP_MS';
    const value = (v: unknown) =>
      v === null ? undefined : instant ? new Date(`${String(v).replace(' ', 'T')}Z`).toISOString() : String(v);
    const lo = value(min);
    const hi = value(max);
    if (lo !== undefined && (instant || lo.length <= 32)) minValues[column] = lo;
    if (hi !== undefined && (instant || hi.length <= 32)) maxValues[column] = hi;
  }
  return { stats: JSON.stringify({ numRecords: rows, minValues, maxValues, nullCount }), rows };
}
