/**
 * Athena DDL generated from the one schema: the database and the messages table with partition
 * projection. One statement per file, because Athena runs one statement per query, with no SQL comment
 * before it: Athena routes a DDL statement by its first word, so a leading `--` line can make it fail.
 * The "generated, do not edit" notice therefore lives in the COMMENT clauses.
 */
import { MESSAGE_COLUMNS, PARTITION_COLUMNS } from '../schema/messageSchema.js';
import { quoteAthenaIdent, quoteAthenaString } from '../sql/athenaQuote.js';
import { ANALYTICS_ROOT } from '../staging/layout.js';
import type { GeneratedSqlFile } from './generatedSqlFile.js';
import { ATHENA_NAMES, GENERATED_NOTICE } from './sqlNames.js';

/** s3://${S3_BUCKET_NAME}/analytics/messages/ — the table location (placeholder kept). */
export const ATHENA_LOCATION = `s3://\${S3_BUCKET_NAME}/${ANALYTICS_ROOT}`;

/** Comments are Hive string literals: quotes in schema descriptions become double quotes. */
const comment = (text: string) => quoteAthenaString(text.replaceAll("'", '"'));

export function athenaCreateDatabaseSql(): string {
  return `CREATE DATABASE IF NOT EXISTS ${quoteAthenaIdent(ATHENA_NAMES.database)}
COMMENT ${comment(`MAKOTO message lake (makoto-lake). ${GENERATED_NOTICE}`)}
`;
}

export function athenaCreateTableSql(): string {
  const width = Math.max(...MESSAGE_COLUMNS.map((c) => c.name.length)) + 2;
  const columns = MESSAGE_COLUMNS.map(
    (c) => `  ${quoteAthenaIdent(c.name).padEnd(width)} ${c.athena.padEnd(9)} COMMENT ${comment(c.description)}`,
  ).join(',\n');
  const partitionComments: Record<string, string> = {
    tenant_id: 'Tenant; projection type injected: every query must name its tenant(s).',
    dt: 'Creation date in Asia/Tokyo (JST), yyyy-MM-dd.',
  };
  const partitions = PARTITION_COLUMNS.map(
    (c) =>
      `  ${quoteAthenaIdent(c.name).padEnd(width)} ${c.athena.padEnd(9)} COMMENT ${comment(partitionComments[c.name] ?? c.name)}`,
  ).join(',\n');
  const template = `${ATHENA_LOCATION}${PARTITION_COLUMNS.map((c) => `${c.name}=\${${c.name}}`).join('/')}/`;
  const properties: [string, string][] = [
    ['projection.enabled', 'true'],
    ['projection.tenant_id.type', 'injected'],
    ['projection.dt.type', 'date'],
    ['projection.dt.format', 'yyyy-MM-dd'],
    ['projection.dt.range', ATHENA_NAMES.projectionRange],
    ['projection.dt.interval', '1'],
    ['projection.dt.interval.unit', 'DAYS'],
    ['storage.location.template', template],
  ];
  const tblProperties = properties.map(([k, v]) => `  ${quoteAthenaString(k)} = ${quoteAthenaString(v)}`).join(',\n');
  return `CREATE EXTERNAL TABLE IF NOT EXISTS ${quoteAthenaIdent(ATHENA_NAMES.database)}.${quoteAthenaIdent(ATHENA_NAMES.table)} (
${columns}
)
COMMENT ${comment(`Chat messages compacted by makoto-lake, one partition per tenant and JST day. ${GENERATED_NOTICE}`)}
PARTITIONED BY (
${partitions}
)
STORED AS PARQUET
LOCATION ${quoteAthenaString(ATHENA_LOCATION)}
TBLPROPERTIES (
${tblProperties}
)
`;
}

export function athenaDdlFiles(): GeneratedSqlFile[] {
  return [
    { path: 'athena/01_create_database.sql', text: athenaCreateDatabaseSql() },
    { path: 'athena/02_create_table_messages.sql', text: athenaCreateTableSql() },
  ];
}
