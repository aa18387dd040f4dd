/**
 * The classic Delta checkpoint (`_delta_log/<version>.checkpoint.parquet`, PROTOCOL.md "Checkpoints" and
 * "Checkpoint Schema"), written and read through DuckDB's Parquet support.
 *
 * Written: one Parquet file whose rows each hold one action in exactly one non-null top-level column,
 * `txn`, `add`, `remove`, `metaData` or `protocol` (the V1 spec: no commitInfo, no cdc, no sidecars), with
 * the protocol's nested types — MAP<string,string> for partitionValues, tags, format.options and
 * configuration, LIST<string> for partitionColumns, INT64 for longs, INT32 for the protocol versions —
 * in the column order Spark writes.
 *
 * Read: any classic checkpoint, ours or one written by Spark/Databricks (parquet-mr) or delta-rs
 * (parquet-rs). The file's own schema decides what is selected: a missing column or field is null, and the
 * derived `*_parsed` fields (stats_parsed, partitionValues_parsed: typed copies of `stats` and
 * `partitionValues`) are never read. Columns that are no action of DeltaAction (commitInfo, cdc,
 * domainMetadata, checkpointMetadata, rowIdHighWaterMark…) are not read; a V2 checkpoint that points to
 * sidecar files is refused, since its file actions are elsewhere.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { quoteIdent, quoteLiteral } from '../../core/sql/quote.js';
import { withConnection } from '../../ports/duckdb/openDuckDb.js';
import type { DeltaAction, PartitionValues } from './actions.js';

/** The action columns of a checkpoint, in the order Spark writes them. */
export const CHECKPOINT_ACTION_COLUMNS = ['txn', 'add', 'remove', 'metaData', 'protocol'] as const;
type ActionColumn = (typeof CHECKPOINT_ACTION_COLUMNS)[number];

const STRING_MAP = 'MAP(VARCHAR, VARCHAR)';

/** Each action column's fields and DuckDB types (PROTOCOL.md "Actions" / "Checkpoint Schema"). */
const CHECKPOINT_FIELDS: Record<ActionColumn, readonly (readonly [string, string])[]> = {
  txn: [
    ['appId', 'VARCHAR'],
    ['version', 'BIGINT'],
    ['lastUpdated', 'BIGINT'],
  ],
  add: [
    ['path', 'VARCHAR'],
    ['partitionValues', STRING_MAP],
    ['size', 'BIGINT'],
    ['modificationTime', 'BIGINT'],
    ['dataChange', 'BOOLEAN'],
    ['stats', 'VARCHAR'],
    ['tags', STRING_MAP],
  ],
  remove: [
    ['path', 'VARCHAR'],
    ['deletionTimestamp', 'BIGINT'],
    ['dataChange', 'BOOLEAN'],
    ['extendedFileMetadata', 'BOOLEAN'],
    ['partitionValues', STRING_MAP],
    ['size', 'BIGINT'],
    ['tags', STRING_MAP],
  ],
  metaData: [
    ['id', 'VARCHAR'],
    ['name', 'VARCHAR'],
    ['description', 'VARCHAR'],
    ['format', `STRUCT(provider VARCHAR, options ${STRING_MAP})`],
    ['schemaString', 'VARCHAR'],
    ['partitionColumns', 'VARCHAR[]'],
    ['configuration', STRING_MAP],
    ['createdTime', 'BIGINT'],
  ],
  protocol: [
    ['minReaderVersion', 'INTEGER'],
    ['minWriterVersion', 'INTEGER'],
  ],
};

/**
 * Fields an action may carry that the checkpoint does not keep, and need not: PROTOCOL.md says a remove in
 * a checkpoint is a tombstone for VACUUM, without stats. Any other field outside CHECKPOINT_FIELDS is an
 * error rather than silently lost (a deletion vector or table features would change what the table is).
 */
const DROPPED_FIELDS: Partial<Record<ActionColumn, readonly string[]>> = { remove: ['stats'] };

/** The fields an action of each column may carry. */
const ACCEPTED_FIELDS = new Map<string, ReadonlySet<string>>(
  CHECKPOINT_ACTION_COLUMNS.map((column) => [
    column,
    new Set([...CHECKPOINT_FIELDS[column].map(([name]) => name), ...(DROPPED_FIELDS[column] ?? [])]),
  ]),
);

/** The DuckDB type of one action column: STRUCT(path VARCHAR, "partitionValues" MAP(VARCHAR, VARCHAR), …). */
function structType(column: ActionColumn): string {
  return `STRUCT(${CHECKPOINT_FIELDS[column].map(([name, type]) => `${quoteIdent(name)} ${type}`).join(', ')})`;
}

/** Lines of NDJSON written to the temporary file per write call. */
const LINES_PER_WRITE = 8192;
/** The position of an action in the input, so that the checkpoint keeps the caller's order. */
const ORDINAL = '_ordinal';

/**
 * Writes `actions` (the reconciled state of one table version: protocol, metaData, txns, adds and unexpired
 * removes) as a classic checkpoint at `path` (a local file), rows in the given order. Each action must hold
 * exactly one of txn/add/remove/metaData/protocol (commitInfo does not go into checkpoints); fields outside
 * the checkpoint schema are refused, except remove.stats, which checkpoints drop. A null or absent optional
 * field is written as null.
 *
 * The actions go to DuckDB as NDJSON in a temporary file (read back with `read_json` and an explicit column
 * map of the nested types), then `COPY … TO path (FORMAT parquet)`.
 */
export async function writeCheckpointFile(db: DuckDBInstance, actions: readonly DeltaAction[], path: string): Promise<void> {
  const scratch = await mkdtemp(join(tmpdir(), 'delta-checkpoint-'));
  const ndjson = join(scratch, `${randomUUID()}.ndjson`);
  try {
    const handle = await open(ndjson, 'w');
    try {
      for (let start = 0; start < actions.length; start += LINES_PER_WRITE) {
        const lines: string[] = [];
        for (let i = start; i < Math.min(actions.length, start + LINES_PER_WRITE); i += 1) {
          lines.push(checkpointLine(actions[i] as DeltaAction, i));
        }
        await handle.write(`${lines.join('\n')}\n`);
      }
    } finally {
      await handle.close();
    }
    await withConnection(db, (connection) => connection.run(copyCheckpointSql(ndjson, path)).then(() => undefined));
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** The NDJSON line of one action, `{"_ordinal": i, "<column>": {…}}`, after checking it fits the schema. */
function checkpointLine(action: DeltaAction, index: number): string {
  const present = Object.entries(action).filter(([, value]) => value !== null && value !== undefined);
  const [entry] = present;
  const accepted = entry && ACCEPTED_FIELDS.get(entry[0]);
  if (present.length !== 1 || !entry || !accepted) {
    const keys = present.map(([key]) => key).join(', ') || 'none';
    throw new TypeError(
      `checkpoint action ${index} must hold exactly one of ${CHECKPOINT_ACTION_COLUMNS.join(', ')}; it holds: ${keys}`,
    );
  }
  const [column, body] = entry as [ActionColumn, Record<string, unknown>];
  for (const field in body) {
    const value = body[field];
    if (!accepted.has(field) && value !== null && value !== undefined) {
      throw new TypeError(`checkpoint action ${index}: ${column}.${field} is not part of the checkpoint schema written here`);
    }
  }
  return `{${JSON.stringify(ORDINAL)}:${index},${JSON.stringify(column)}:${JSON.stringify(body)}}`;
}

/** COPY of the NDJSON actions to a Parquet checkpoint, typed by an explicit column map, in input order. */
export function copyCheckpointSql(ndjsonPath: string, parquetPath: string): string {
  const columns = [
    `${quoteLiteral(ORDINAL)}: 'BIGINT'`,
    ...CHECKPOINT_ACTION_COLUMNS.map((column) => `${quoteLiteral(column)}: ${quoteLiteral(structType(column))}`),
  ].join(', ');
  return [
    'COPY (',
    `  SELECT ${CHECKPOINT_ACTION_COLUMNS.map(quoteIdent).join(', ')}`,
    `  FROM read_json(${quoteLiteral(ndjsonPath)}, format = 'newline_delimited', auto_detect = false, columns = {${columns}})`,
    `  ORDER BY ${quoteIdent(ORDINAL)}`,
    `) TO ${quoteLiteral(parquetPath)} (FORMAT parquet, COMPRESSION snappy)`,
  ].join('\n');
}

/** One node of a Parquet file's schema tree, from parquet_schema(). */
interface SchemaNode {
  readonly name: string;
  readonly children: readonly SchemaNode[];
}

/** The top-level columns of a Parquet file with their (nested) fields. */
async function parquetColumns(connection: DuckDBConnection, path: string): Promise<readonly SchemaNode[]> {
  const rows = (await connection.runAndReadAll(`SELECT name, num_children FROM parquet_schema(${quoteLiteral(path)})`)).getRows();
  let next = 0;
  const node = (): SchemaNode => {
    const row = rows[next];
    if (!row) throw new Error(`unreadable Parquet schema in ${path}`);
    next += 1;
    const count = Number(row[1] ?? 0);
    const children: SchemaNode[] = [];
    for (let i = 0; i < count; i += 1) children.push(node());
    return { name: String(row[0]), children };
  };
  return node().children;
}

/** Fields of a checkpoint struct that are derived copies of others (typed stats and partition values). */
const DERIVED_FIELD = /_parsed$/;

/**
 * Reads a classic checkpoint (one part of a multi-part one, too) and returns its actions in file order, as
 * DeltaAction objects:
 * - one action per non-null txn/add/remove/metaData/protocol value (other columns are not read);
 * - every field the file has for that action, except the `*_parsed` ones (so also fields beyond
 *   DeltaAction's, e.g. add.deletionVector or protocol.readerFeatures, for the caller to judge);
 * - maps as plain objects (`{tenant_id: 'acme'}`, a null partition value stays null), longs as numbers;
 * - a field that is null is left out (stats: null → no `stats` key), except that the required
 *   add.partitionValues, metaData.format.options, metaData.configuration and metaData.partitionColumns
 *   read as empty (`{}`/`[]`) when null.
 * A checkpoint that refers to sidecar files (a V2 checkpoint) is an error.
 */
export async function readCheckpointFile(
  db: DuckDBInstance,
  path: string,
  /**
   * Only the `add` actions of this partition (every other add and every remove left out; protocol, metaData
   * and txn kept): a reader that needs one partition's files converts a handful of rows, not the table.
   */
  partition?: PartitionValues,
): Promise<DeltaAction[]> {
  return withConnection(db, async (connection) => {
    const columns = await parquetColumns(connection, path);
    const present = CHECKPOINT_ACTION_COLUMNS.flatMap((name) => {
      const node = columns.find((column) => column.name === name && column.children.length > 0);
      return node ? [node] : [];
    });
    const hasSidecars = columns.some((column) => column.name === 'sidecar');
    if (present.length === 0 && !hasSidecars) return [];
    const names = present.map((node) => node.name).filter((name) => !(partition && name === 'remove'));
    const nonNull = [...names, ...(hasSidecars ? ['sidecar'] : [])].map((name) =>
      partition && name === 'add'
        ? `(c."add" IS NOT NULL AND ${Object.entries(partition)
            .map(
              ([k, v]) =>
                `c."add"."partitionValues"[${quoteLiteral(k)}] IS NOT DISTINCT FROM ${v === null ? 'NULL' : quoteLiteral(v)}`,
            )
            .join(' AND ')})`
        : `c.${quoteIdent(name)} IS NOT NULL`,
    );
    const selected = present.map((node) => actionJsonSql(node));
    if (hasSidecars) selected.push(`${nonNull.at(-1)} AS ${quoteIdent('sidecar')}`);
    const rows = (
      await connection.runAndReadAll(
        [
          `SELECT ${selected.join(', ')}`,
          `FROM read_parquet(${quoteLiteral(path)}, file_row_number = true) AS c`,
          `WHERE ${nonNull.join(' OR ')}`,
          'ORDER BY c.file_row_number',
        ].join('\n'),
      )
    ).getRows();
    const out: DeltaAction[] = [];
    for (const row of rows) {
      if (hasSidecars && row[present.length] === true) {
        throw new Error(`${path} refers to sidecar files (a V2 checkpoint), which this reader does not follow`);
      }
      for (const [i, node] of present.entries()) {
        const json = row[i];
        if (typeof json !== 'string') continue;
        out.push({ [node.name]: normaliseAction(node.name as ActionColumn, JSON.parse(json)) } as DeltaAction);
      }
    }
    return out;
  });
}

/** `to_json` of one action column with only its non-derived fields, or NULL where the column is null. */
function actionJsonSql(node: SchemaNode): string {
  const column = `c.${quoteIdent(node.name)}`;
  const fields = node.children.filter((child) => !DERIVED_FIELD.test(child.name));
  if (fields.length === node.children.length) return `to_json(${column})`;
  const packed = fields.map((f) => `${quoteIdent(f.name)} := struct_extract(${column}, ${quoteLiteral(f.name)})`);
  return `CASE WHEN ${column} IS NULL THEN NULL ELSE to_json(struct_pack(${packed.join(', ')})) END`;
}

/** Drops null fields; required maps and lists that are null become empty. */
function normaliseAction(column: ActionColumn, value: Record<string, unknown>): Record<string, unknown> {
  const out = withoutNulls(value);
  if (column === 'add') out.partitionValues ??= {};
  if (column === 'metaData') {
    out.format = withoutNulls((out.format ?? {}) as Record<string, unknown>);
    (out.format as Record<string, unknown>).options ??= {};
    out.partitionColumns ??= [];
    out.configuration ??= {};
  }
  return out;
}

function withoutNulls(value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key in value) {
    if (value[key] !== null) out[key] = value[key];
  }
  return out;
}
