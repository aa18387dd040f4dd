import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { MESSAGE_COLUMNS } from '../schema/messageSchema.js';
import { quoteIdent, quoteLiteral } from '../sql/quote.js';

/** One message row as a reader sees it: timestamps as ISO strings (UTC), every column of the schema. */
export type LakeRow = Record<string, string | null>;

/**
 * Files of a partition folder that a reader picks up: Athena (and Synapse) skip names starting with
 * '_' or '.', so a LocalStore temp file (`.tmp-…`) or a `_SUCCESS` marker is never read.
 */
export async function visibleFiles(folder: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(folder);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return names.filter((n) => !n.startsWith('.') && !n.startsWith('_')).sort();
}

/**
 * Reads a partition folder the way Athena does: every visible file in it, whatever the manifest says,
 * ordered by message_id. An unreadable file makes the read fail, as it would make the query fail.
 */
export async function readPartitionFolder(folder: string): Promise<LakeRow[]> {
  const files = (await visibleFiles(folder)).map((n) => join(folder, n));
  return readParquetFiles(files);
}

/** Reads Parquet files into rows (every schema column; timestamps as ISO strings), ordered by message_id. */
export async function readParquetFiles(files: readonly string[]): Promise<LakeRow[]> {
  if (files.length === 0) return [];
  const db = await DuckDBInstance.create(':memory:', { threads: '1' });
  const connection = await db.connect();
  try {
    const projection = MESSAGE_COLUMNS.map((c) =>
      c.parquet === 'TIMESTAMP_MS'
        ? `strftime(${quoteIdent(c.name)}, '%Y-%m-%dT%H:%M:%S.%gZ') AS ${quoteIdent(c.name)}`
        : quoteIdent(c.name),
    ).join(', ');
    const source = `read_parquet([${files.map(quoteLiteral).join(', ')}])`;
    const reader = await connection.runAndReadAll(`SELECT ${projection} FROM ${source} ORDER BY message_id, source_seq`);
    return reader.getRowObjectsJS() as LakeRow[];
  } finally {
    connection.closeSync();
    db.closeSync();
  }
}

/** Message ids that occur more than once (a reader would count them twice). */
export function duplicateIds(rows: readonly LakeRow[]): string[] {
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const row of rows) {
    const id = String(row.message_id);
    if (seen.has(id)) twice.add(id);
    seen.add(id);
  }
  return [...twice].sort();
}
