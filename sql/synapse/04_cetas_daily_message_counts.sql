-- GENERATED from src/core/schema/messageSchema.ts by `node bin/run-ts.mjs scripts/generate-sql.ts`. Do not edit:
-- change the schema or src/core/sqlgen/ and regenerate (test/sql fails while this file is stale).
-- Synapse serverless SQL pool, OPTIONAL: CETAS writes a query result back to storage as Parquet and
-- creates an external table over it. The export goes to exports/synapse/daily_message_counts/ (outside analytics/),
-- which must not exist yet; the caller needs write access to the container. Change the tenant and dates.

USE [makoto_lake];
GO
CREATE EXTERNAL TABLE [dbo].[daily_message_counts]
WITH (
    LOCATION = 'exports/synapse/daily_message_counts/',
    DATA_SOURCE = [makoto_lake_storage],
    FILE_FORMAT = [makoto_lake_parquet]
) AS
SELECT
    CAST([tenant_id] AS varchar(64)) COLLATE Latin1_General_100_BIN2_UTF8 AS [tenant_id],
    CAST([dt] AS varchar(10)) COLLATE Latin1_General_100_BIN2_UTF8 AS [dt],
    [role],
    COUNT(*) AS [messages]
FROM [dbo].[messages]
WHERE [tenant_id] = 'default_tenant'
  AND [dt] BETWEEN '2025-08-01' AND '2025-08-31'
GROUP BY [tenant_id], [dt], [role];
