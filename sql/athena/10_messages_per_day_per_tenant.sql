-- GENERATED from src/sqlgen/sampleQueries.ts (one definition, Athena and Synapse) by scripts/generate-sql.ts: do not edit.
-- Messages per JST day for each tenant.
-- tenant_id is an injected projection: name the tenants you want.
SELECT tenant_id, dt, COUNT(*) AS messages
FROM makoto_lake.messages
WHERE tenant_id IN ('default_tenant', 'fuji-bank')
  AND dt BETWEEN '2025-08-10' AND '2025-08-11'
GROUP BY tenant_id, dt
ORDER BY tenant_id, dt;
