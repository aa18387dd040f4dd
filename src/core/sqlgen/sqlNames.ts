/** Names the generated SQL gives its objects (fixed, so the sample queries can name them too). */
export const ATHENA_NAMES = {
  database: 'makoto_lake',
  table: 'messages',
} as const;

export const SYNAPSE_NAMES = {
  database: 'makoto_lake',
  schema: 'dbo',
  view: 'messages',
  dataSource: 'makoto_lake_storage',
  fileFormat: 'makoto_lake_parquet',
  cetasTable: 'daily_message_counts',
  /** CETAS writes here: outside analytics/ so the export never becomes part of the messages table. */
  cetasLocation: 'exports/synapse/daily_message_counts/',
} as const;

/** Said in every generated file (Athena: in COMMENT clauses; T-SQL: in the header). */
export const GENERATED_NOTICE =
  'GENERATED from src/core/schema/messageSchema.ts by scripts/generate-sql.ts: do not edit, change the schema and regenerate.';

/** First lines of every generated T-SQL file. */
export function generatedHeader(lines: readonly string[]): string {
  return [
    '-- GENERATED from src/core/schema/messageSchema.ts by `node bin/run-ts.mjs scripts/generate-sql.ts`. Do not edit:',
    '-- change the schema or src/core/sqlgen/ and regenerate (test/sql fails while this file is stale).',
    ...lines.map((l) => (l === '' ? '--' : `-- ${l}`)),
    '',
  ].join('\n');
}
