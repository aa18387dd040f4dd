CREATE DATABASE IF NOT EXISTS `makoto_lake`
COMMENT 'MAKOTO message lake (makoto-lake). GENERATED from src/core/schema/messageSchema.ts by scripts/generate-sql.ts: do not edit, change the schema and regenerate.'
