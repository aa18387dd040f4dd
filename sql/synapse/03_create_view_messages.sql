-- GENERATED from src/schema/messageSchema.ts by `node bin/run-ts.mjs scripts/generate-sql.ts`. Do not edit:
-- change the schema or src/sqlgen/ and regenerate (test/sql fails while this file is stale).
-- Synapse serverless SQL pool: the messages view. tenant_id and dt come from the folder names through
-- filepath(), so WHERE tenant_id = ... AND dt = ... reads only those folders (partition elimination).
-- They are left as filepath() returns them (nvarchar): a CAST around them can stop the elimination.
-- Timestamps are UTC instants (Parquet INT64 TIMESTAMP(MILLIS) read as datetime2(3), no zone shift);
-- JST = DATEADD(hour, 9, created_at). Unlike Athena, nothing forces a tenant filter: grant access to
-- this view only to people who may read every tenant (or create one view per tenant).

USE [makoto_lake];
GO
DROP VIEW IF EXISTS [dbo].[messages];
GO
CREATE VIEW [dbo].[messages] AS
SELECT
    r.filepath(1) AS [tenant_id],
    r.filepath(2) AS [dt],
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
    BULK 'analytics/messages/tenant_id=*/dt=*/*.parquet',
    DATA_SOURCE = 'makoto_lake_storage',
    FORMAT = 'PARQUET'
) WITH (
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
