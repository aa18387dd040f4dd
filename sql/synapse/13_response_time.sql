-- GENERATED from src/core/sqlgen/sampleQueries.ts (one definition, Athena and Synapse) by scripts/generate-sql.ts: do not edit.
-- Response time: for each user message, the milliseconds until the next assistant message in the same
-- conversation (other roles in between are skipped), per JST day of the user message. A reply after
-- the last dt of the range is not seen: widen the range by a day to catch replies after midnight.
WITH ordered AS (
  SELECT dt, conversation_id, message_id, role, created_at,
         MIN(CASE WHEN role = 'assistant' THEN created_at END) OVER (
           PARTITION BY conversation_id
           ORDER BY created_at, message_id
           ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING
         ) AS next_assistant_at
  FROM dbo.messages
  WHERE tenant_id = 'default_tenant'
    AND dt BETWEEN '2025-08-10' AND '2025-08-11'
)
SELECT dt,
       COUNT(*) AS user_messages,
       COUNT(next_assistant_at) AS answered,
       AVG(CAST(DATEDIFF_BIG(millisecond, created_at, next_assistant_at) AS float)) AS avg_response_ms,
       MIN(DATEDIFF_BIG(millisecond, created_at, next_assistant_at)) AS min_response_ms,
       MAX(DATEDIFF_BIG(millisecond, created_at, next_assistant_at)) AS max_response_ms
FROM ordered
WHERE role = 'user'
GROUP BY dt
ORDER BY dt;
