import { DuckDBInstance } from '@duckdb/node-api';
import { quoteLiteral } from '../../src/sql/quote.js';

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
