-- GENERATED from src/core/sqlgen/sampleQueries.ts (one definition, Athena and Synapse) by scripts/generate-sql.ts: do not edit.
-- Messages per hour of the JST day. created_at is UTC; Japan has no daylight saving time, so JST is
-- always created_at + 9 hours.
SELECT hour(created_at + INTERVAL '9' HOUR) AS jst_hour, COUNT(*) AS messages
FROM makoto_lake.messages
WHERE tenant_id = 'default_tenant'
  AND dt = '2025-08-10'
GROUP BY hour(created_at + INTERVAL '9' HOUR)
ORDER BY jst_hour;
