CREATE EXTERNAL TABLE IF NOT EXISTS `makoto_lake`.`messages` (
  `message_id`      string    COMMENT 'Message id (DynamoDB key attribute or Cosmos `id`).',
  `conversation_id` string    COMMENT 'Conversation (thread) the message belongs to.',
  `sender_id`       string    COMMENT 'User or bot that sent the message.',
  `role`            string    COMMENT '"user", "assistant", "system", ... as written by the app.',
  `content`         string    COMMENT 'Message text (non-string content is stored as JSON text).',
  `created_at`      timestamp COMMENT 'Creation instant, UTC. Its JST date is the dt partition.',
  `updated_at`      timestamp COMMENT 'Last update instant, UTC, when the app records one.',
  `attributes`      string    COMMENT 'JSON object of every other field of the item, nothing dropped.',
  `source`          string    COMMENT '"dynamodb" or "cosmos".',
  `source_seq`      string    COMMENT 'Position of the change in its feed (DynamoDB SequenceNumber, Cosmos _lsn).',
  `ingested_at`     timestamp COMMENT 'When the change was captured into staging, UTC.'
)
COMMENT 'Chat messages compacted by makoto-lake, one partition per tenant and JST day. GENERATED from src/schema/messageSchema.ts by scripts/generate-sql.ts: do not edit, change the schema and regenerate.'
PARTITIONED BY (
  `tenant_id`       string    COMMENT 'Tenant; projection type injected: every query must name its tenant(s).',
  `dt`              string    COMMENT 'Creation date in Asia/Tokyo (JST), yyyy-MM-dd.'
)
STORED AS PARQUET
LOCATION 's3://${S3_BUCKET_NAME}/analytics/messages/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.tenant_id.type' = 'injected',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2000-01-01,NOW+9HOURS',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://${S3_BUCKET_NAME}/analytics/messages/tenant_id=${tenant_id}/dt=${dt}/'
)
