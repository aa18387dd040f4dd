-- GENERATED from src/core/schema/messageSchema.ts by `node bin/run-ts.mjs scripts/generate-sql.ts`. Do not edit:
-- change the schema or src/core/sqlgen/ and regenerate (test/sql fails while this file is stale).
-- Synapse serverless SQL pool: the messages view over the Delta Lake table. FORMAT = DELTA reads the files
-- of the table's current version from its _delta_log, so a query never sees a commit in progress.
-- tenant_id and dt are the partition columns: WHERE tenant_id = ... AND dt = ... reads only those partitions.
-- Timestamps are UTC instants (Parquet INT64 TIMESTAMP(MILLIS) read as datetime2(3), no zone shift);
-- JST = DATEADD(hour, 9, created_at). Nothing forces a tenant filter (nor in Athena): grant access to
-- this view only to people who may read every tenant (or create one view per tenant).

USE [makoto_lake];
GO
DROP VIEW IF EXISTS [dbo].[messages];
GO
CREATE VIEW [dbo].[messages] AS
SELECT
    r.[tenant_id],
    r.[dt],
    r.[message_id],
    r.[conversation_id],
    r.[sender_id],
    r.[role],
    r.[content],
    r.[created_at],
    r.[updated_at],
    r.[attributes],
    r.[source],
    r.[source_seq],
    r.[ingested_at]
FROM OPENROWSET(
    BULK 'analytics/messages/',
    DATA_SOURCE = 'makoto_lake_storage',
    FORMAT = 'DELTA'
) WITH (
    [tenant_id]       varchar(64) COLLATE Latin1_General_100_BIN2_UTF8,
    [dt]              varchar(10) COLLATE Latin1_General_100_BIN2_UTF8,
    [message_id]      varchar(1024) COLLATE Latin1_General_100_BIN2_UTF8,
    [conversation_id] varchar(1024) COLLATE Latin1_General_100_BIN2_UTF8,
    [sender_id]       varchar(1024) COLLATE Latin1_General_100_BIN2_UTF8,
    [role]            varchar(64) COLLATE Latin1_General_100_BIN2_UTF8,
    [content]         varchar(MAX) COLLATE Latin1_General_100_BIN2_UTF8,
    [created_at]      datetime2(3),
    [updated_at]      datetime2(3),
    [attributes]      varchar(MAX) COLLATE Latin1_General_100_BIN2_UTF8,
    [source]          varchar(16) COLLATE Latin1_General_100_BIN2_UTF8,
    [source_seq]      varchar(64) COLLATE Latin1_General_100_BIN2_UTF8,
    [ingested_at]     datetime2(3)
) AS r;
