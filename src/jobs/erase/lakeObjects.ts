/**
 * Reading any object the lake keeps as records, whatever its form: gzip or plain NDJSON (staging,
 * quarantine), JSON (poison batches, reports, manifests), Parquet (data parts, remembered deletes, split
 * outputs, checkpoints; read with DuckDB). The erase's plan and its verification both read through here.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { DuckDBInstance } from '@duckdb/node-api';
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

/** A SQL predicate true for the rows of a file with these columns that the matcher erases. */
export function rowMatchSql(m: EraseMatcher, columns: readonly string[]): string | undefined {
  if (m.everything) return 'true';
  const present = ID_COLUMNS.filter((c) => columns.includes(c));
  if (present.length === 0) return undefined;
  // IN (a subquery) is a hash join: list_contains scans the list for every value, and the list grows with the
  // message ids derived from the request (thousands for a prolific sender): 2–3× slower at 3,651 (docs/PERFORMANCE.md, 9)
  const hashes = `(SELECT unnest(${quoteStringList([...m.hashes].sort())}))`;
  return present
    .map((c) => `sha256(${quoteLiteral(`${m.salt}:`)} || ${quoteIdent(c)}) IN ${hashes}`)
    .map((p) => `coalesce(${p}, false)`)
    .join(' OR ');
}

/** Column names of a local Parquet file. */
export async function parquetColumns(db: DuckDBInstance, file: string): Promise<string[]> {
  return withConnection(db, async (c) =>
    (await c.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${quoteLiteral(file)})`)).getRows().map((r) => String(r[0])),
  );
}

/**
 * The message ids of the rows matching `predicate` (and how many rows match), in one pass: the predicate hashes
 * every id value of the file (docs/PERFORMANCE.md, section 9), so it is evaluated once.
 */
export async function parquetMatches(
  db: DuckDBInstance,
  file: string,
  predicate: string,
  hasMessageId: boolean,
): Promise<{ rows: number; messageIds: string[] }> {
  return withConnection(db, async (c) => {
    const source = `read_parquet(${quoteLiteral(file)})`;
    const ids = hasMessageId ? 'list(DISTINCT message_id) FILTER (WHERE message_id IS NOT NULL)' : 'NULL::VARCHAR[]';
    const [row] = (await c.runAndReadAll(`SELECT count(*) AS n, ${ids} AS ids FROM ${source} WHERE ${predicate}`)).getRowsJson();
    const rows = Number(row?.[0] ?? 0);
    const messageIds = rows === 0 || !Array.isArray(row?.[1]) ? [] : (row[1] as unknown[]).map(String);
    return { rows, messageIds };
  });
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

/** Copies the rows of a Parquet file not matching `predicate` into `out`, columns and types as they are. */
export async function rewriteParquet(db: DuckDBInstance, file: string, predicate: string, out: string): Promise<number> {
  return withConnection(db, async (c) => {
    await c.run(
      `COPY (SELECT * FROM read_parquet(${quoteLiteral(file)}) WHERE NOT (${predicate})) TO ${quoteLiteral(out)} (FORMAT parquet, COMPRESSION snappy)`,
    );
    return Number((await c.runAndReadAll(`SELECT count(*) FROM read_parquet(${quoteLiteral(out)})`)).getRows()[0]?.[0] ?? 0);
  });
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
