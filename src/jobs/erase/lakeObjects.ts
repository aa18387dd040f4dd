/**
 * Reading any object the lake keeps as records, whatever its form: gzip or plain NDJSON (staging,
 * quarantine), JSON (poison batches, reports, manifests), Parquet (data parts, remembered deletes, split
 * outputs, checkpoints; read with DuckDB). The erase's plan and its verification both read through here.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { quoteIdent, quoteLiteral, quoteStringList } from '../../core/sql/quote.js';
import { withConnection } from '../../ports/duckdb/openDuckDb.js';
import { getBytes, type ObjectInfo, type ObjectStore } from '../../ports/store/ObjectStore.js';
import type { EraseMatcher } from './eraseMatcher.js';

const GZIP = [0x1f, 0x8b];
const PAR1 = Buffer.from('PAR1');

export const isGzip = (bytes: Buffer) => bytes[0] === GZIP[0] && bytes[1] === GZIP[1];
export const isParquet = (bytes: Buffer) => bytes.length >= 8 && bytes.subarray(0, 4).equals(PAR1);

/** The object's bytes, gunzipped when gzip (a damaged gzip is read as it stands). */
export async function readPlain(store: ObjectStore, key: string): Promise<{ bytes: Buffer; gzip: boolean }> {
  const raw = await getBytes(store, key);
  if (!isGzip(raw)) return { bytes: raw, gzip: false };
  try {
    return { bytes: gunzipSync(raw), gzip: true };
  } catch {
    return { bytes: raw, gzip: false };
  }
}

/** Lines of a text body (the last one without its newline; empty lines kept so a rewrite keeps the rest as is). */
export function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** The columns by which a Parquet row is matched, when the file has them. */
const ID_COLUMNS = ['sender_id', 'conversation_id', 'message_id'] as const;
/** Columns whose values repeat across rows (a sender writes many messages): each distinct value is hashed once. */
const REPEATING_COLUMNS = new Set<string>(['sender_id', 'conversation_id']);

/**
 * A DuckDB connection with the matcher bound once, in two temporary tables (appended, not parsed from a
 * literal: a list of 3,651 literals cost ~200 ms to bind in every statement, docs/PERFORMANCE.md, section 9):
 * the identifiers known in clear, compared as they are, and the hashes without one, compared with each value's
 * `sha256(salt:value)`. A value matches exactly when it is a known identifier or its hash is an unknown one.
 * One statement at a time; `close` when done.
 *
 * @example
 * const session = await MatchSession.open(db, matcher);
 * try { await session.connection.run(`COPY (SELECT … WHERE NOT (${await session.predicate(columns, source)})) TO …`); } finally { session.close(); }
 */
export class MatchSession {
  /** Hashes of `matcher.hashes` (in its order) already bound, and how many of them as hashes (no clear id). */
  private bound = 0;
  private hashed = 0;
  private ids = 0;

  private constructor(
    readonly connection: DuckDBConnection,
    readonly matcher: EraseMatcher,
  ) {}

  static async open(db: DuckDBInstance, matcher: EraseMatcher): Promise<MatchSession> {
    const connection = await db.connect();
    try {
      await connection.run('CREATE TEMPORARY TABLE erase_hashes (h VARCHAR); CREATE TEMPORARY TABLE erase_ids (v VARCHAR)');
      return new MatchSession(connection, matcher);
    } catch (error) {
      connection.closeSync();
      throw error;
    }
  }

  /** Binds the matcher's hashes (and clear ids) not yet bound: the set only grows. */
  private async sync(): Promise<void> {
    if (this.matcher.hashes.size === this.bound) return;
    const hashes = await this.connection.createAppender('erase_hashes', 'main', 'temp');
    const ids = await this.connection.createAppender('erase_ids', 'main', 'temp');
    try {
      let i = 0;
      for (const h of this.matcher.hashes) {
        if (i++ < this.bound) continue;
        const id = this.matcher.clear.get(h);
        if (id === undefined) {
          hashes.appendVarchar(h);
          hashes.endRow();
          this.hashed++;
        } else {
          ids.appendVarchar(id);
          ids.endRow();
          this.ids++;
        }
      }
      hashes.flushSync();
      ids.flushSync();
    } finally {
      hashes.closeSync();
      ids.closeSync();
    }
    this.bound = this.matcher.hashes.size;
  }

  /** Whether rows with these columns can be matched in SQL (they have an identifier column, or everything matches). */
  matchable(columns: readonly string[]): boolean {
    return this.matcher.everything || ID_COLUMNS.some((c) => columns.includes(c));
  }

  /**
   * A SQL predicate true for the rows with these columns that the matcher erases, as bound now; undefined when
   * the columns hold no identifier. `source` (the `read_parquet(…)` the rows come from) lets a repeating
   * column be hashed by its distinct values, once each.
   */
  async predicate(columns: readonly string[], source: string): Promise<string | undefined> {
    if (this.matcher.everything) return 'true';
    const present = ID_COLUMNS.filter((c) => columns.includes(c));
    if (present.length === 0) return undefined;
    await this.sync();
    // IN (a subquery) is a hash join: list_contains scans the list for every value (docs/PERFORMANCE.md, 9)
    const hashes = '(SELECT h FROM temp.main.erase_hashes)';
    const salt = quoteLiteral(`${this.matcher.salt}:`);
    const tests: string[] = [];
    for (const c of present) {
      const column = quoteIdent(c);
      if (this.ids > 0) tests.push(`${column} IN (SELECT v FROM temp.main.erase_ids)`);
      if (this.hashed === 0) continue;
      if (!REPEATING_COLUMNS.has(c)) tests.push(`sha256(${salt} || ${column}) IN ${hashes}`);
      else
        tests.push(
          `${column} IN (SELECT v FROM (SELECT DISTINCT ${column} AS v FROM ${source}) WHERE sha256(${salt} || v) IN ${hashes})`,
        );
    }
    return tests.length === 0 ? 'false' : tests.map((p) => `coalesce(${p}, false)`).join(' OR ');
  }

  close(): void {
    this.connection.closeSync();
  }
}

/** `read_parquet` of local files, with their names when `filename`. */
export const readParquetSql = (files: readonly string[], filename = false) =>
  `read_parquet(${quoteStringList(files)}${filename ? ', filename = true' : ''})`;

/** Column names of a local Parquet file. */
export async function parquetColumns(db: DuckDBInstance, file: string): Promise<string[]> {
  return withConnection(db, async (c) => columnsOn(c, file));
}

async function columnsOn(c: DuckDBConnection, file: string): Promise<string[]> {
  return (await c.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${quoteLiteral(file)})`)).getRows().map((r) => String(r[0]));
}

/**
 * The local Parquet files grouped by schema (every schema element's name and types): the files of one group
 * are read by one `read_parquet([...])`. One statement over the files' footers, and a DESCRIBE per group.
 */
export async function parquetSchemas(
  session: MatchSession,
  files: readonly string[],
): Promise<{ columns: string[]; files: string[] }[]> {
  if (files.length === 0) return [];
  const element = `name || ':' || coalesce(type, '') || ':' || coalesce(converted_type, '') || ':' || coalesce(logical_type::VARCHAR, '') || ':' || coalesce(num_children, 0)::VARCHAR`;
  const rows = (
    await session.connection.runAndReadAll(
      `SELECT file_name, list(${element} ORDER BY ${element}) FROM parquet_schema(${quoteStringList(files)}) GROUP BY file_name`,
    )
  ).getRowsJson();
  const signatures = new Map(rows.map((r) => [String(r[0]), JSON.stringify(r[1])]));
  const groups = new Map<string, string[]>();
  for (const file of files) {
    const signature = signatures.get(file) ?? `?${file}`;
    groups.set(signature, [...(groups.get(signature) ?? []), file]);
  }
  const out: { columns: string[]; files: string[] }[] = [];
  for (const group of groups.values())
    out.push({ columns: await columnsOn(session.connection, group[0] as string), files: group });
  return out;
}

/**
 * For each of several local Parquet files of one schema, the number of rows the session's matcher erases and
 * the message ids of those rows, in one statement (the predicate compares or hashes every id value: read once).
 * One file is read without `filename = true` (a file of any columns, a `filename` one included).
 */
export async function parquetMatchesMany(
  session: MatchSession,
  files: readonly string[],
  columns: readonly string[],
): Promise<Map<string, { rows: number; messageIds: string[] }>> {
  const found = new Map<string, { rows: number; messageIds: string[] }>();
  for (const file of files) found.set(file, { rows: 0, messageIds: [] });
  if (files.length === 0) return found;
  const predicate = await session.predicate(columns, readParquetSql(files));
  if (!predicate) throw new Error('parquetMatchesMany: the files have no identifier column');
  const ids = columns.includes('message_id')
    ? 'list(DISTINCT message_id) FILTER (WHERE message_id IS NOT NULL)'
    : 'NULL::VARCHAR[]';
  const many = files.length > 1;
  const result = await session.connection.runAndReadAll(
    many
      ? `SELECT filename, count(*) AS n, ${ids} AS ids FROM ${readParquetSql(files, true)} WHERE ${predicate} GROUP BY filename`
      : `SELECT ${quoteLiteral(files[0] as string)}, count(*) AS n, ${ids} AS ids FROM ${readParquetSql(files)} WHERE ${predicate}`,
  );
  for (const row of result.getRowsJson()) {
    const rows = Number(row[1] ?? 0);
    const messageIds = rows === 0 || !Array.isArray(row[2]) ? [] : (row[2] as unknown[]).map(String);
    found.set(String(row[0]), { rows, messageIds });
  }
  return found;
}

/**
 * The message ids of the rows matching the session's matcher in one local Parquet file (and how many rows
 * match), or undefined when the file has no identifier column.
 */
export async function parquetMatches(
  session: MatchSession,
  file: string,
): Promise<{ rows: number; messageIds: string[] } | undefined> {
  const columns = await columnsOn(session.connection, file);
  if (!session.matchable(columns)) return undefined;
  return (await parquetMatchesMany(session, [file], columns)).get(file);
}

/** Every row of a Parquet file as JSON-safe values (checkpoints, files of unknown columns). */
export async function parquetRowsJson(db: DuckDBInstance, file: string): Promise<Record<string, unknown>[]> {
  return withConnection(
    db,
    async (c) =>
      (await c.runAndReadAll(`SELECT * FROM read_parquet(${quoteLiteral(file)})`)).getRowObjectsJson() as Record<
        string,
        unknown
      >[],
  );
}

/**
 * Copies the rows of a local Parquet file the session's matcher does not erase into `out`, columns and types as
 * they are; the rows kept. A file with no identifier column is copied whole (offboarding: nothing is kept).
 */
export async function rewriteParquet(session: MatchSession, file: string, out: string): Promise<number> {
  const c = session.connection;
  const source = `read_parquet(${quoteLiteral(file)})`;
  const predicate = (await session.predicate(await columnsOn(c, file), source)) ?? 'false';
  const result = await c.runAndReadAll(
    `COPY (SELECT * FROM ${source} WHERE NOT (${predicate})) TO ${quoteLiteral(out)} (FORMAT parquet, COMPRESSION snappy)`,
  );
  return Number(result.getRows()[0]?.[0] ?? 0);
}

/** Downloads an object to a fresh local file in `work`, runs `use`, and removes the file. */
export async function withLocalCopy<T>(
  store: ObjectStore,
  info: Pick<ObjectInfo, 'key'>,
  work: string,
  counter: { n: number },
  use: (file: string) => Promise<T>,
): Promise<T> {
  const file = join(work, `obj-${counter.n++}`);
  await store.getToFile(info.key, file);
  try {
    return await use(file);
  } finally {
    await rm(file, { force: true });
  }
}
