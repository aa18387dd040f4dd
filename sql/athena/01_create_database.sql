CREATE DATABASE IF NOT EXISTS `makoto_lake`
COMMENT 'MAKOTO message lake (makoto-lake). GENERATED from src/schema/messageSchema.ts by scripts/generate-sql.ts: do not edit, change the schema and regenerate.'
