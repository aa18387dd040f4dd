-- GENERATED from src/core/sqlgen/sampleQueries.ts (one definition, Athena and Synapse) by scripts/generate-sql.ts: do not edit.
-- Messages per JST day for each tenant.
-- Filtering on tenant_id and dt reads only those partitions (the Delta log lists their files).
SELECT tenant_id, dt, COUNT(*) AS messages
FROM makoto_lake.messages
WHERE tenant_id IN ('default_tenant', 'fuji-bank')
  AND dt BETWEEN '2025-08-10' AND '2025-08-11'
GROUP BY tenant_id, dt
ORDER BY tenant_id, dt;
