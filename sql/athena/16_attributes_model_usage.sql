-- GENERATED from src/core/sqlgen/sampleQueries.ts (one definition, Athena and Synapse) by scripts/generate-sql.ts: do not edit.
-- Reading attributes (JSON text of every other item field): assistant messages and tokens per model.
SELECT json_extract_scalar(attributes, '$.model') AS model,
       COUNT(*) AS messages,
       SUM(CAST(json_extract_scalar(attributes, '$.tokens') AS bigint)) AS tokens
FROM makoto_lake.messages
WHERE tenant_id = 'default_tenant'
  AND dt BETWEEN '2025-08-10' AND '2025-08-11'
  AND role = 'assistant'
GROUP BY json_extract_scalar(attributes, '$.model')
ORDER BY model;
