CREATE EXTERNAL TABLE IF NOT EXISTS `makoto_lake`.`messages`
LOCATION 's3://${S3_BUCKET_NAME}/analytics/messages/'
TBLPROPERTIES ('table_type' = 'DELTA')
