-- GENERATED from src/core/sqlgen/sampleQueries.ts (one definition, Athena and Synapse) by scripts/generate-sql.ts: do not edit.
-- One tenant's day, in order. Only the partition tenant_id=default_tenant/dt=2025-08-11 is read: the files
-- the table's Delta log names for it (its folder may also hold replaced parts, which are not read).
SELECT message_id, conversation_id, sender_id, role, content, created_at
FROM makoto_lake.messages
WHERE tenant_id = 'default_tenant'
  AND dt = '2025-08-11'
ORDER BY created_at, message_id
LIMIT 1000;
