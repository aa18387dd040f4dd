/**
 * Athena DDL: the database and the messages table, a Delta Lake table whose schema Athena reads from the
 * table's log (written from the one schema). One statement per file, because Athena runs one statement per query, with no SQL comment
 * before it: Athena routes a DDL statement by its first word, so a leading `--` line can make it fail.
 * The "generated, do not edit" notice therefore lives in the COMMENT clauses.
 */
import { quoteAthenaIdent, quoteAthenaString } from '../sql/athenaQuote.js';
import { ANALYTICS_ROOT } from '../staging/layout.js';
import type { GeneratedSqlFile } from './generatedSqlFile.js';
import { ATHENA_NAMES, GENERATED_NOTICE } from './sqlNames.js';

/** s3://${S3_BUCKET_NAME}/analytics/messages/ — the table location (placeholder kept). */
export const ATHENA_LOCATION = `s3://\${S3_BUCKET_NAME}/${ANALYTICS_ROOT}`;

/** Comments are Hive string literals: quotes become double quotes. */
const comment = (text: string) => quoteAthenaString(text.replaceAll("'", '"'));

export function athenaCreateDatabaseSql(): string {
  return `CREATE DATABASE IF NOT EXISTS ${quoteAthenaIdent(ATHENA_NAMES.database)}
COMMENT ${comment(`MAKOTO message lake (makoto-lake). ${GENERATED_NOTICE}`)}
`;
}

/**
 * The messages table as a Delta Lake table: Athena takes the columns, partitions and current files from the
 * table's `_delta_log` (so it reads whole commits only), and accepts nothing but LOCATION and table_type in
 * the statement (no columns, no COMMENT, no projection: docs/SQL.md).
 */
export function athenaCreateTableSql(): string {
  return `CREATE EXTERNAL TABLE IF NOT EXISTS ${quoteAthenaIdent(ATHENA_NAMES.database)}.${quoteAthenaIdent(ATHENA_NAMES.table)}
LOCATION ${quoteAthenaString(ATHENA_LOCATION)}
TBLPROPERTIES (${quoteAthenaString('table_type')} = ${quoteAthenaString('DELTA')})
`;
}

export function athenaDdlFiles(): GeneratedSqlFile[] {
  return [
    { path: 'athena/01_create_database.sql', text: athenaCreateDatabaseSql() },
    { path: 'athena/02_create_table_messages.sql', text: athenaCreateTableSql() },
  ];
}
