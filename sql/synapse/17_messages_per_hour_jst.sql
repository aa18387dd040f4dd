-- Messages per hour of the JST day (created_at is UTC; JST is always UTC+9, no daylight saving).
SELECT DATEPART(hour, DATEADD(hour, 9, created_at)) AS jst_hour, COUNT(*) AS messages
FROM dbo.messages
WHERE tenant_id = 'default_tenant'
  AND dt = '2025-08-10'
GROUP BY DATEPART(hour, DATEADD(hour, 9, created_at))
ORDER BY jst_hour;
