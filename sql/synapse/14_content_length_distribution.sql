-- Distribution of message length in characters. LEN() ignores trailing spaces, and characters outside
-- the BMP (most emoji) may not count as one as they do in Athena's length().
WITH buckets AS (
  SELECT LEN(content) AS chars,
         CASE
           WHEN content IS NULL THEN 0
           WHEN LEN(content) < 10 THEN 1
           WHEN LEN(content) < 20 THEN 2
           WHEN LEN(content) < 50 THEN 3
           WHEN LEN(content) < 100 THEN 4
           WHEN LEN(content) < 500 THEN 5
           ELSE 6
         END AS bucket_order
  FROM dbo.messages
  WHERE tenant_id = 'default_tenant'
    AND dt BETWEEN '2025-08-10' AND '2025-08-11'
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
