/**
 * Synapse serverless SQL pool DDL generated from the one schema: a UTF-8 database, the external data
 * source and Parquet file format, the messages view over OPENROWSET and an optional CETAS export.
 */
import { MESSAGE_COLUMNS, PARTITION_COLUMNS } from '../schema/messageSchema.js';
import { quoteTsqlIdent, quoteTsqlLiteral } from '../sql/tsqlQuote.js';
import { ANALYTICS_ROOT } from '../staging/layout.js';
import type { GeneratedSqlFile } from './generatedSqlFile.js';
import { generatedHeader, SYNAPSE_NAMES } from './sqlNames.js';

export const SYNAPSE_COLLATION = 'Latin1_General_100_BIN2_UTF8';
/** Root of the data source: the container, on the blob endpoint (works with and without hierarchical namespace). */
export const SYNAPSE_LOCATION = `https://\${AZURE_STORAGE_ACCOUNT}.blob.core.windows.net/\${AZURE_STORAGE_CONTAINER}`;
/** The Delta table's root folder (the one holding `_delta_log/`): Synapse reads the current version from its log. */
export const SYNAPSE_BULK_PATH = ANALYTICS_ROOT;

const id = quoteTsqlIdent;
const qualified = (schema: string, name: string) => `${id(schema)}.${id(name)}`;
const useDatabase = `USE ${id(SYNAPSE_NAMES.database)};\nGO`;

export function synapseCreateDatabaseSql(): string {
  return `${generatedHeader([
    'Synapse serverless SQL pool: run in master. Parquet strings are UTF-8, so the database collation is',
    `${SYNAPSE_COLLATION} (also the collation that lets the pool skip row groups on string filters).`,
  ])}
CREATE DATABASE ${id(SYNAPSE_NAMES.database)} COLLATE ${SYNAPSE_COLLATION};
`;
}

export function synapseCreateDataSourceSql(): string {
  return `${generatedHeader([
    'Synapse serverless SQL pool: the storage the compactor writes to, and the Parquet file format CETAS uses.',
    `Placeholders: \${AZURE_STORAGE_ACCOUNT}, \${AZURE_STORAGE_CONTAINER} (\`makoto-lake sql --target synapse\`).`,
    "Access: with no credential the caller's Microsoft Entra identity is passed through to storage (it needs",
    '"Storage Blob Data Reader" on the container). To read with the workspace managed identity instead, run',
    "  CREATE MASTER KEY ENCRYPTION BY PASSWORD = '<a strong password>';",
    "  CREATE DATABASE SCOPED CREDENTIAL [makoto_lake_identity] WITH IDENTITY = 'Managed Identity';",
    'and add CREDENTIAL = [makoto_lake_identity] to the data source below.',
  ])}
${useDatabase}
CREATE EXTERNAL DATA SOURCE ${id(SYNAPSE_NAMES.dataSource)}
WITH (LOCATION = ${quoteTsqlLiteral(SYNAPSE_LOCATION)});
GO
CREATE EXTERNAL FILE FORMAT ${id(SYNAPSE_NAMES.fileFormat)}
WITH (FORMAT_TYPE = PARQUET, DATA_COMPRESSION = 'org.apache.hadoop.io.compress.SnappyCodec');
`;
}

export function synapseCreateViewSql(): string {
  const width = Math.max(...MESSAGE_COLUMNS.map((c) => c.name.length)) + 2;
  const columns = [...PARTITION_COLUMNS, ...MESSAGE_COLUMNS];
  const withColumns = columns.map((c) => `    ${id(c.name).padEnd(width)} ${c.synapse}`).join(',\n');
  return `${generatedHeader([
    'Synapse serverless SQL pool: the messages view over the Delta Lake table. FORMAT = DELTA reads the files',
    "of the table's current version from its _delta_log, so a query never sees a commit in progress.",
    'tenant_id and dt are the partition columns: WHERE tenant_id = ... AND dt = ... reads only those partitions.',
    'Timestamps are UTC instants (Parquet INT64 TIMESTAMP(MILLIS) read as datetime2(3), no zone shift);',
    'JST = DATEADD(hour, 9, created_at). Nothing forces a tenant filter (nor in Athena): grant access to',
    'this view only to people who may read every tenant (or create one view per tenant).',
  ])}
${useDatabase}
DROP VIEW IF EXISTS ${qualified(SYNAPSE_NAMES.schema, SYNAPSE_NAMES.view)};
GO
CREATE VIEW ${qualified(SYNAPSE_NAMES.schema, SYNAPSE_NAMES.view)} AS
SELECT
${columns.map((c) => `    r.${id(c.name)}`).join(',\n')}
FROM OPENROWSET(
    BULK ${quoteTsqlLiteral(SYNAPSE_BULK_PATH)},
    DATA_SOURCE = ${quoteTsqlLiteral(SYNAPSE_NAMES.dataSource)},
    FORMAT = 'DELTA'
) WITH (
${withColumns}
) AS r;
`;
}

export function synapseCetasSql(): string {
  const partitionColumns = PARTITION_COLUMNS.map(
    (c) => `    CAST(${id(c.name)} AS ${c.synapse.replace(/ COLLATE .*/, '')}) COLLATE ${SYNAPSE_COLLATION} AS ${id(c.name)}`,
  );
  return `${generatedHeader([
    'Synapse serverless SQL pool, OPTIONAL: CETAS writes a query result back to storage as Parquet and',
    `creates an external table over it. The export goes to ${SYNAPSE_NAMES.cetasLocation} (outside analytics/),`,
    'which must not exist yet; the caller needs write access to the container. Change the tenant and dates.',
  ])}
${useDatabase}
CREATE EXTERNAL TABLE ${qualified(SYNAPSE_NAMES.schema, SYNAPSE_NAMES.cetasTable)}
WITH (
    LOCATION = ${quoteTsqlLiteral(SYNAPSE_NAMES.cetasLocation)},
    DATA_SOURCE = ${id(SYNAPSE_NAMES.dataSource)},
    FILE_FORMAT = ${id(SYNAPSE_NAMES.fileFormat)}
) AS
SELECT
${partitionColumns.join(',\n')},
    ${id('role')},
    COUNT(*) AS ${id('messages')}
FROM ${qualified(SYNAPSE_NAMES.schema, SYNAPSE_NAMES.view)}
WHERE ${id('tenant_id')} = 'default_tenant'
  AND ${id('dt')} BETWEEN '2025-08-01' AND '2025-08-31'
GROUP BY ${id('tenant_id')}, ${id('dt')}, ${id('role')};
`;
}

export function synapseDdlFiles(): GeneratedSqlFile[] {
  return [
    { path: 'synapse/01_create_database.sql', text: synapseCreateDatabaseSql() },
    { path: 'synapse/02_create_data_source.sql', text: synapseCreateDataSourceSql() },
    { path: 'synapse/03_create_view_messages.sql', text: synapseCreateViewSql() },
    { path: 'synapse/04_cetas_daily_message_counts.sql', text: synapseCetasSql() },
  ];
}
