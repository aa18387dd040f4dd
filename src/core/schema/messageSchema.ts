/**
 * The one schema. Staging NDJSON, DuckDB's read of it, the Parquet columns and the Athena/Synapse DDL
 * are all derived from these lists, so they cannot drift apart.
 */

/** How a column is typed in each place it appears. */
export interface ColumnSpec {
  readonly name: string;
  /** Type of the field in a staging NDJSON line, as DuckDB's read_ndjson `columns` takes it. */
  readonly staging: 'VARCHAR' | 'BIGINT';
  /** Type in the Parquet file (DuckDB type); TIMESTAMP_MS is written as INT64 TIMESTAMP(MILLIS). */
  readonly parquet: 'VARCHAR' | 'TIMESTAMP_MS';
  readonly athena: 'string' | 'timestamp';
  readonly synapse: string;
  /**
   * Text columns: the longest value in UTF-8 bytes, or null for no limit (Synapse `varchar(MAX)`). Ingest
   * quarantines a record with a longer value (textWidthProblem), and Synapse declares exactly this width
   * (`varchar(n)` under a UTF-8 collation counts bytes): nothing ingest accepts can fail a Synapse query.
   */
  readonly maxBytes?: number | null;
  readonly nullable: boolean;
  readonly description: string;
}

/**
 * Longest id (message, conversation, sender) in UTF-8 bytes. DynamoDB caps a sort key at 1,024 bytes and
 * Cosmos DB an `id` at 1,023, so no real message id is refused; Synapse's varchar(1024) is the same number.
 */
export const MAX_ID_BYTES = 1024;
/** Longest role in UTF-8 bytes ('user', 'assistant', 'system', 'tool', ... are a few bytes). */
export const MAX_ROLE_BYTES = 64;
/** Longest feed position: up to 64 decimal digits (normaliseChange checks the digits). */
export const MAX_SOURCE_SEQ_BYTES = 64;

const utf8 = (n: number | null) => `varchar(${n ?? 'MAX'}) COLLATE Latin1_General_100_BIN2_UTF8`;
const text = (name: string, nullable: boolean, maxBytes: number | null, description: string): ColumnSpec => ({
  name,
  staging: 'VARCHAR',
  parquet: 'VARCHAR',
  athena: 'string',
  synapse: utf8(maxBytes),
  maxBytes,
  nullable,
  description,
});
const instant = (name: string, nullable: boolean, description: string): ColumnSpec => ({
  name,
  staging: 'BIGINT',
  parquet: 'TIMESTAMP_MS',
  athena: 'timestamp',
  synapse: 'datetime2(3)',
  nullable,
  description,
});

/** The columns of every Parquet file under analytics/messages/, in file order. */
export const MESSAGE_COLUMNS: readonly ColumnSpec[] = [
  text('message_id', false, MAX_ID_BYTES, 'Message id (DynamoDB key attribute or Cosmos `id`).'),
  text('conversation_id', true, MAX_ID_BYTES, 'Conversation (thread) the message belongs to.'),
  text('sender_id', true, MAX_ID_BYTES, 'User or bot that sent the message.'),
  text('role', true, MAX_ROLE_BYTES, "'user', 'assistant', 'system', ... as written by the app."),
  text('content', true, null, 'Message text (non-string content is stored as JSON text).'),
  instant('created_at', false, 'Creation instant, UTC. Its JST date is the dt partition.'),
  instant('updated_at', true, 'Last update instant, UTC, when the app records one.'),
  text('attributes', false, null, 'JSON object of every other field of the item, nothing dropped.'),
  text('source', false, 16, "'dynamodb' or 'cosmos'."),
  text('source_seq', false, MAX_SOURCE_SEQ_BYTES, 'Position of the change in its feed (DynamoDB SequenceNumber, Cosmos _lsn).'),
  instant('ingested_at', false, 'When the change was captured into staging, UTC.'),
];

/**
 * Why a record cannot be stored: a text value longer than its column's maxBytes (the first such column),
 * or undefined when every value fits.
 */
export function textWidthProblem(record: Readonly<Partial<MessageRow>>): string | undefined {
  for (const column of MESSAGE_COLUMNS) {
    const value = record[column.name as keyof MessageRow];
    if (typeof column.maxBytes !== 'number' || typeof value !== 'string') continue;
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > column.maxBytes) {
      return `${column.name} is ${bytes} UTF-8 bytes long (at most ${column.maxBytes}, the width Synapse declares)`;
    }
  }
  return undefined;
}

/** Partition columns: only in the path (`tenant_id=<t>/dt=<YYYY-MM-DD>`), never in the file. */
export const PARTITION_COLUMNS = [
  { name: 'tenant_id', athena: 'string', synapse: utf8(64) },
  { name: 'dt', athena: 'string', synapse: utf8(10) },
] as const;

/** Change kinds in staging. `expire` (TTL) keeps the message: it carries the last image like an upsert. */
export const STAGING_OPS = ['upsert', 'delete', 'expire'] as const;
export type StagingOp = (typeof STAGING_OPS)[number];

/** Staging-only fields, in addition to MESSAGE_COLUMNS. */
export const STAGING_EXTRA_COLUMNS: readonly Pick<ColumnSpec, 'name' | 'staging'>[] = [
  { name: 'tenant_id', staging: 'VARCHAR' },
  { name: 'dt', staging: 'VARCHAR' },
  { name: 'op', staging: 'VARCHAR' },
];

/** Every field of a staging NDJSON line with its DuckDB type, in line order. */
export const STAGING_COLUMNS: readonly Pick<ColumnSpec, 'name' | 'staging'>[] = [
  ...STAGING_EXTRA_COLUMNS.slice(0, 2),
  ...MESSAGE_COLUMNS,
  STAGING_EXTRA_COLUMNS[2] as Pick<ColumnSpec, 'name' | 'staging'>,
];

/** One line of a staging object (timestamps in epoch milliseconds). */
export interface StagedRecord {
  tenant_id: string;
  dt: string;
  message_id: string;
  conversation_id: string | null;
  sender_id: string | null;
  role: string | null;
  content: string | null;
  created_at: number;
  updated_at: number | null;
  attributes: string;
  source: 'dynamodb' | 'cosmos';
  source_seq: string;
  ingested_at: number;
  op: StagingOp;
}

/** One row read back from the Parquet (timestamps as epoch milliseconds). */
export type MessageRow = Omit<StagedRecord, 'tenant_id' | 'dt' | 'op'>;

/**
 * Columns of a tombstone file (`tombstones/messages/tenant_id=<t>/dt=<d>/<run>.parquet`): one row per message
 * whose latest version is a user delete — its id, the delete's feed position and when it was captured.
 */
export const TOMBSTONE_COLUMNS: readonly ColumnSpec[] = MESSAGE_COLUMNS.filter((c) =>
  ['message_id', 'source_seq', 'ingested_at'].includes(c.name),
);

/**
 * The table's schema as Delta Lake's JSON struct type (the `schemaString` of its metaData action): the file
 * columns, then the partition columns. Instants are Delta `timestamp` (reader version 1 has no
 * `timestamp_ntz`): the files hold UTC milliseconds, and every Delta reader takes the stored number as a UTC
 * instant (docs/SQL.md, "Timestamps").
 */
export function deltaSchemaString(): string {
  const field = (name: string, type: string, nullable: boolean) => ({ name, type, nullable, metadata: {} });
  return JSON.stringify({
    type: 'struct',
    fields: [
      ...MESSAGE_COLUMNS.map((c) => field(c.name, c.athena === 'timestamp' ? 'timestamp' : 'string', c.nullable)),
      ...PARTITION_COLUMNS.map((c) => field(c.name, 'string', false)),
    ],
  });
}
