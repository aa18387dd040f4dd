/**
 * Reads Parquet back for the tests and the reliability scenarios: the one read-back helper.
 * - `readPartitionFolder` / `readParquetFiles`: every schema column, as `LakeRow` (all strings), as a Delta reader sees a partition.
 * - `readParquetRows`: whatever columns the files hold (optionally hive columns), for golden comparisons.
 * - `readLake`: the table's current version in an ObjectStore, as `ParsedLakeRow` (attributes parsed).
 * - `parquetPhysicalSchema`: the physical column types of one file.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { MESSAGE_COLUMNS, type StagedRecord } from '../../src/core/schema/messageSchema.js';
import { quoteIdent, quoteLiteral } from '../../src/core/sql/quote.js';
import { DeltaTable, partitionFiles } from '../../src/lake/table/deltaTable.js';
import { exportSnapshot } from '../../src/lake/table/exportSnapshot.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import type { ObjectStore } from '../../src/ports/store/ObjectStore.js';

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
 * Reads a partition of a local lake (`<root>/analytics/messages/tenant_id=<t>/dt=<d>`) the way a Delta reader
 * does: the files the table's current version names, read from the log by the project's reader, ordered by
 * message_id. An unreadable file makes the read fail, as it would make the query fail.
 */
export async function readPartitionFolder(folder: string): Promise<LakeRow[]> {
  const m = /^(.*)\/analytics\/messages\/tenant_id=([^/]+)\/dt=([^/]+)\/?$/.exec(folder);
  if (!m) throw new Error(`not a partition folder of a local lake: ${folder}`);
  const [, root, tenant, date] = m as unknown as [string, string, string, string];
  const snapshot = await new DeltaTable(new LocalStore(root), {}).snapshot();
  const files = partitionFiles(snapshot, tenant, date).map((a) => join(root, 'analytics/messages', decodeURIComponent(a.path)));
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

/**
 * Reads Parquet files back with DuckDB: rows as plain objects, timestamps as ISO strings (UTC).
 * `glob` is a file, a list of files, or a glob; hive partition columns come from the path when asked.
 */
export async function readParquetRows(
  files: string | readonly string[],
  options: { hive?: boolean; orderBy?: string } = {},
): Promise<Record<string, unknown>[]> {
  const list = typeof files === 'string' ? [files] : files;
  if (list.length === 0) return [];
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    const source = `read_parquet([${list.map(quoteLiteral).join(', ')}], hive_partitioning = ${options.hive ? 'true' : 'false'})`;
    const described = (await c.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`)).getRowObjectsJS();
    const projection = described
      .map((col) => {
        const name = `"${String(col.column_name)}"`;
        if (String(col.column_type).startsWith('TIMESTAMP')) return `strftime(${name}, '%Y-%m-%dT%H:%M:%S.%gZ') AS ${name}`;
        if (col.column_name === 'dt' || col.column_name === 'tenant_id') return `${name}::VARCHAR AS ${name}`;
        return name;
      })
      .join(', ');
    const order = options.orderBy ? ` ORDER BY ${options.orderBy}` : '';
    return (await c.runAndReadAll(`SELECT ${projection} FROM ${source}${order}`)).getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

/** Physical Parquet schema: name → physical type / logical type summary. */
export async function parquetPhysicalSchema(file: string): Promise<Record<string, string>> {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    const rows = (
      await c.runAndReadAll(
        `SELECT name, type, logical_type, converted_type FROM parquet_schema(${quoteLiteral(file)}) WHERE type IS NOT NULL`,
      )
    ).getRowObjectsJS();
    return Object.fromEntries(
      rows.map((r) => [
        String(r.name),
        [r.type, r.converted_type ?? '', r.logical_type ?? ''].filter((x) => x !== '').join(' | '),
      ]),
    );
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

/** A lake row as the store tests compare it: timestamps as ISO strings, hive columns, attributes parsed. */
export type ParsedLakeRow = Pick<
  StagedRecord,
  'tenant_id' | 'dt' | 'message_id' | 'conversation_id' | 'sender_id' | 'role' | 'content' | 'source_seq'
> & { source: string; created_at: string; updated_at: string | null; attributes: Record<string, unknown> };

/** Downloads the files of the table's current version and reads them back with DuckDB (hive partitions). */
export async function readLake(store: ObjectStore): Promise<ParsedLakeRow[]> {
  const snapshot = await new DeltaTable(store, {}).snapshot();
  if (snapshot.files.size === 0) return [];
  const work = await mkdtemp(join(tmpdir(), 'makoto-lake-read-'));
  try {
    await exportSnapshot(store, snapshot, join(work, 'analytics/messages'));
    const db = await DuckDBInstance.create(':memory:', { threads: '1' });
    const c = await db.connect();
    try {
      const glob = quoteLiteral(join(work, 'analytics/messages/*/*/*.parquet'));
      const result = await c.runAndReadAll(`SELECT tenant_id, dt::VARCHAR AS dt, message_id, conversation_id, sender_id, role,
          content, strftime(created_at, '%Y-%m-%dT%H:%M:%S.%g') || 'Z' AS created_at,
          strftime(updated_at, '%Y-%m-%dT%H:%M:%S.%g') || 'Z' AS updated_at, source, source_seq, attributes
        FROM read_parquet(${glob}, hive_partitioning = true) ORDER BY tenant_id, dt, message_id`);
      return result.getRowObjectsJS().map((r) => ({
        ...(r as unknown as ParsedLakeRow),
        attributes: JSON.parse(r.attributes as string) as Record<string, unknown>,
      }));
    } finally {
      c.closeSync();
      db.closeSync();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The local paths of the files the table's current version names for one partition of a LocalStore lake. */
export async function currentFiles(store: LocalStore, tenant: string, date: string): Promise<string[]> {
  const snapshot = await new DeltaTable(store, {}).snapshot();
  return partitionFiles(snapshot, tenant, date).map((a) => join(store.root, 'analytics/messages', decodeURIComponent(a.path)));
}
