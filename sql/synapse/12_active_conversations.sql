-- GENERATED from src/core/sqlgen/sampleQueries.ts (one definition, Athena and Synapse) by scripts/generate-sql.ts: do not edit.
-- Active conversations per JST day: conversations with at least one message that day, and those of
-- them in which both the user and the assistant wrote that day.
WITH per_conversation AS (
  SELECT dt, conversation_id,
         SUM(CASE WHEN role = 'user' THEN 1 ELSE 0 END) AS user_messages,
         SUM(CASE WHEN role = 'assistant' THEN 1 ELSE 0 END) AS assistant_messages
  FROM dbo.messages
  WHERE tenant_id = 'default_tenant'
    AND dt BETWEEN '2025-08-10' AND '2025-08-11'
  GROUP BY dt, conversation_id
)
SELECT dt,
       COUNT(*) AS active_conversations,
       SUM(CASE WHEN user_messages > 0 AND assistant_messages > 0 THEN 1 ELSE 0 END) AS conversations_with_reply
FROM per_conversation
GROUP BY dt
ORDER BY dt;
