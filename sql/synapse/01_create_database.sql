-- GENERATED from src/core/schema/messageSchema.ts by `node bin/run-ts.mjs scripts/generate-sql.ts`. Do not edit:
-- change the schema or src/core/sqlgen/ and regenerate (test/sql fails while this file is stale).
-- Synapse serverless SQL pool: run in master. Parquet strings are UTF-8, so the database collation is
-- Latin1_General_100_BIN2_UTF8 (also the collation that lets the pool skip row groups on string filters).

CREATE DATABASE [makoto_lake] COLLATE Latin1_General_100_BIN2_UTF8;
