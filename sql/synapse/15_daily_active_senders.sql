-- GENERATED from src/core/sqlgen/sampleQueries.ts (one definition, Athena and Synapse) by scripts/generate-sql.ts: do not edit.
-- Daily active senders: distinct users who wrote at least one message that JST day, and every
-- distinct sender (assistants included).
SELECT dt,
       COUNT(DISTINCT CASE WHEN role = 'user' THEN sender_id END) AS active_users,
       COUNT(DISTINCT sender_id) AS active_senders
FROM dbo.messages
WHERE tenant_id = 'default_tenant'
  AND dt BETWEEN '2025-08-10' AND '2025-08-11'
GROUP BY dt
ORDER BY dt;
