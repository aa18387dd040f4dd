-- GENERATED from src/core/sqlgen/sampleQueries.ts (one definition, Athena and Synapse) by scripts/generate-sql.ts: do not edit.
-- Messages per JST day and role for one tenant.
SELECT dt, role, COUNT(*) AS messages
FROM dbo.messages
WHERE tenant_id = 'default_tenant'
  AND dt BETWEEN '2025-08-10' AND '2025-08-11'
GROUP BY dt, role
ORDER BY dt, role;
