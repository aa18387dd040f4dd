-- GENERATED from src/core/sqlgen/sampleQueries.ts (one definition, Athena and Synapse) by scripts/generate-sql.ts: do not edit.
-- Distribution of message length in characters, over a date range.
-- length() counts Unicode code points, so Japanese text and emoji count one each.
WITH lengths AS (
  SELECT length(content) AS chars
  FROM makoto_lake.messages
  WHERE tenant_id = 'default_tenant'
    AND dt BETWEEN '2025-08-10' AND '2025-08-11'
),
buckets AS (
  SELECT chars,
         CASE
           WHEN chars IS NULL THEN 0
           WHEN chars < 10 THEN 1
           WHEN chars < 20 THEN 2
           WHEN chars < 50 THEN 3
           WHEN chars < 100 THEN 4
           WHEN chars < 500 THEN 5
           ELSE 6
         END AS bucket_order
  FROM lengths
)
SELECT bucket_order,
       CASE bucket_order
         WHEN 0 THEN 'no content'
         WHEN 1 THEN '0-9'
         WHEN 2 THEN '10-19'
         WHEN 3 THEN '20-49'
         WHEN 4 THEN '50-99'
         WHEN 5 THEN '100-499'
         ELSE '500+'
       END AS length_bucket,
       COUNT(*) AS messages,
       MIN(chars) AS min_chars,
       MAX(chars) AS max_chars
FROM buckets
GROUP BY bucket_order
ORDER BY bucket_order;
