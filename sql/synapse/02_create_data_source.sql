-- GENERATED from src/core/schema/messageSchema.ts by `node bin/run-ts.mjs scripts/generate-sql.ts`. Do not edit:
-- change the schema or src/core/sqlgen/ and regenerate (test/sql fails while this file is stale).
-- Synapse serverless SQL pool: the storage the compactor writes to, and the Parquet file format CETAS uses.
-- Placeholders: ${AZURE_STORAGE_ACCOUNT}, ${AZURE_STORAGE_CONTAINER} (`makoto-lake sql --target synapse`).
-- Access: with no credential the caller's Microsoft Entra identity is passed through to storage (it needs
-- "Storage Blob Data Reader" on the container). To read with the workspace managed identity instead, run
--   CREATE MASTER KEY ENCRYPTION BY PASSWORD = '<a strong password>';
--   CREATE DATABASE SCOPED CREDENTIAL [makoto_lake_identity] WITH IDENTITY = 'Managed Identity';
-- and add CREDENTIAL = [makoto_lake_identity] to the data source below.

USE [makoto_lake];
GO
CREATE EXTERNAL DATA SOURCE [makoto_lake_storage]
WITH (LOCATION = 'https://${AZURE_STORAGE_ACCOUNT}.blob.core.windows.net/${AZURE_STORAGE_CONTAINER}');
GO
CREATE EXTERNAL FILE FORMAT [makoto_lake_parquet]
WITH (FORMAT_TYPE = PARQUET, DATA_COMPRESSION = 'org.apache.hadoop.io.compress.SnappyCodec');
