/**
 * Every sample query, in both dialects (sql/athena/1x_*.sql and sql/synapse/1x_*.sql, generated from one
 * definition in src/core/sqlgen/sampleQueries.ts), runs through DuckDB against the current version of the
 * compacted fixture lake (test/sql/fixtureLake.ts) and must give the answers worked out by hand from that
 * fixture.
 *
 * The lake is a Delta Lake table: its folder also holds the parts the current version replaced (the fixture
 * compacts twice, so it has some), and only the files the current version names are the table. DuckDB reads
 * the table the way the engines do, through its log: the project's log reader (src/lake/table/deltaTable.ts) gives
 * the current snapshot, exportSnapshot downloads exactly its files in the table's own layout
 * (`tenant_id=<t>/dt=<d>/…`), and DuckDB stands in for the engines after only these mechanical substitutions
 * (docs/SQL.md):
 * - both: the table/view  →  `messages`, a DuckDB view:
 *     read_parquet('<export>/*\/*\/*.parquet', hive_partitioning = true,
 *                  hive_types = {'tenant_id': VARCHAR, 'dt': VARCHAR})
 *   (tenant_id and dt come from the key=value folders as strings, as the partition columns of the Delta table
 *   are strings in the Athena table and the Synapse view);
 * - Athena (Trino): `json_extract_scalar(` → `json_extract_string(`. Everything else (date_diff('millisecond',
 *   ...), hour(), INTERVAL '9' HOUR, window frames, count DISTINCT, length() in code points) is the same text.
 * - Synapse (T-SQL): `DATEDIFF_BIG(millisecond, ` → `date_diff('millisecond', `; `JSON_VALUE(` →
 *   `json_extract_string(`; `LEN(` → `length(`; `DATEADD(hour, 9, x)` → `(x + INTERVAL '9' HOUR)`;
 *   `DATEPART(hour, ` → `date_part('hour', `; `SELECT TOP n ...;` → `SELECT ... LIMIT n;`.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { quoteLiteral } from '../../src/core/sql/quote.js';
import { staleSqlFiles } from '../../src/core/sqlgen/generateSql.js';
import type { SqlTarget } from '../../src/core/sqlgen/placeholders.js';
import { SAMPLE_QUERIES, sampleQueryFiles } from '../../src/core/sqlgen/sampleQueries.js';
import { DeltaTable, type TableSnapshot } from '../../src/lake/table/deltaTable.js';
import { exportSnapshot } from '../../src/lake/table/exportSnapshot.js';
import { splitStatements } from '../kit/splitStatements.js';
import { tempDir } from '../kit/tempDir.js';
import { buildFixtureLake } from './fixtureLake.js';

const SQL_DIR = fileURLToPath(new URL('../../sql/', import.meta.url));

const SUBSTITUTIONS: Record<SqlTarget, readonly [string | RegExp, string][]> = {
  athena: [
    ['makoto_lake.messages', 'messages'],
    ['json_extract_scalar(', 'json_extract_string('],
  ],
  synapse: [
    ['dbo.messages', 'messages'],
    ['DATEDIFF_BIG(millisecond, ', "date_diff('millisecond', "],
    ['JSON_VALUE(', 'json_extract_string('],
    ['LEN(', 'length('],
    [/DATEADD\(hour, 9, (\w+)\)/g, "($1 + INTERVAL '9' HOUR)"],
    ['DATEPART(hour, ', "date_part('hour', "],
    [/SELECT TOP (\d+) ([\s\S]*?)(;?)\s*$/, 'SELECT $2 LIMIT $1$3'],
  ],
};

function toDuckDb(target: SqlTarget, sql: string): string {
  return SUBSTITUTIONS[target].reduce(
    (text, [from, to]) => (typeof from === 'string' ? text.replaceAll(from, to) : text.replace(from, to)),
    sql,
  );
}

const utc = (iso: string) => new Date(iso);

/** The hand-computed answer of each sample (see the fixture table in fixtureLake.ts). */
const EXPECTED: Record<string, Record<string, unknown>[]> = {
  '10_messages_per_day_per_tenant.sql': [
    { tenant_id: 'default_tenant', dt: '2025-08-10', messages: 8n },
    { tenant_id: 'default_tenant', dt: '2025-08-11', messages: 5n },
    { tenant_id: 'fuji-bank', dt: '2025-08-10', messages: 2n },
  ],
  '11_messages_per_role.sql': [
    { dt: '2025-08-10', role: 'assistant', messages: 3n },
    { dt: '2025-08-10', role: 'user', messages: 5n },
    { dt: '2025-08-11', role: 'assistant', messages: 2n },
    { dt: '2025-08-11', role: 'system', messages: 1n },
    { dt: '2025-08-11', role: 'user', messages: 2n }, // m10 (edited) and m13; m11 was deleted
  ],
  '12_active_conversations.sql': [
    // 08-10: conv-1, conv-2 (both replied), conv-3 (only carol's late question that day)
    { dt: '2025-08-10', active_conversations: 3n, conversations_with_reply: 2n },
    // 08-11: conv-3 (only the late answer), conv-4 (replied), conv-5 (unanswered)
    { dt: '2025-08-11', active_conversations: 3n, conversations_with_reply: 1n },
  ],
  '13_response_time.sql': [
    // m01→m02 2500, m03→m04 1000, m05→m07 15000, m06→m07 5000, m08→m09 2000 (across JST midnight)
    { dt: '2025-08-10', user_messages: 5n, answered: 5n, avg_response_ms: 5100, min_response_ms: 1000n, max_response_ms: 15000n },
    // m10→m12 3000 (the system message m14 between them is skipped), m13 unanswered
    { dt: '2025-08-11', user_messages: 2n, answered: 1n, avg_response_ms: 3000, min_response_ms: 3000n, max_response_ms: 3000n },
  ],
  '14_content_length_distribution.sql': [
    { bucket_order: 0, length_bucket: 'no content', messages: 1n, min_chars: null, max_chars: null }, // m14
    { bucket_order: 1, length_bucket: '0-9', messages: 5n, min_chars: 1n, max_chars: 9n }, // m01 m03 m05 m10 m12
    { bucket_order: 2, length_bucket: '10-19', messages: 6n, min_chars: 10n, max_chars: 16n }, // m04 m06 m07 m08 m09 m13
    { bucket_order: 3, length_bucket: '20-49', messages: 1n, min_chars: 22n, max_chars: 22n }, // m02
  ],
  '15_daily_active_senders.sql': [
    { dt: '2025-08-10', active_users: 3n, active_senders: 4n }, // alice bob carol + makoto-ai
    { dt: '2025-08-11', active_users: 2n, active_senders: 3n }, // alice dave + makoto-ai (m14 has no sender)
  ],
  '16_attributes_model_usage.sql': [
    { model: 'gpt-4o', messages: 3n, tokens: 37n }, // m02 12 + m04 5 + m09 20
    { model: 'gpt-4o-mini', messages: 2n, tokens: 16n }, // m07 7 + m12 9
  ],
  '17_messages_per_hour_jst.sql': [
    { jst_hour: 10n, messages: 4n },
    { jst_hour: 12n, messages: 3n },
    { jst_hour: 23n, messages: 1n },
  ],
  '18_one_tenant_day.sql': [
    {
      message_id: 'm09',
      conversation_id: 'conv-3',
      sender_id: 'makoto-ai',
      role: 'assistant',
      content: 'late answer',
      created_at: utc('2025-08-10T15:00:01Z'),
    },
    {
      message_id: 'm10',
      conversation_id: 'conv-4',
      sender_id: 'alice',
      role: 'user',
      content: 'おはよう',
      created_at: utc('2025-08-11T00:00:00Z'),
    },
    {
      message_id: 'm14',
      conversation_id: 'conv-4',
      sender_id: null,
      role: 'system',
      content: null,
      created_at: utc('2025-08-11T00:00:01Z'),
    },
    {
      message_id: 'm12',
      conversation_id: 'conv-4',
      sender_id: 'makoto-ai',
      role: 'assistant',
      content: 'おはようございます',
      created_at: utc('2025-08-11T00:00:03Z'),
    },
    {
      message_id: 'm13',
      conversation_id: 'conv-5',
      sender_id: 'dave',
      role: 'user',
      content: 'unanswered',
      created_at: utc('2025-08-11T05:00:00Z'),
    },
  ],
};

const samples = SAMPLE_QUERIES.map((q) => q.file);
const cases = (['athena', 'synapse'] as const).flatMap((target) => samples.map((file) => [target, file] as const));

describe('sample queries: one definition, both dialects', () => {
  test('the committed sql/athena/1x_*.sql and sql/synapse/1x_*.sql are what the definition generates', async () => {
    expect(await staleSqlFiles(SQL_DIR, sampleQueryFiles())).toStrictEqual([]);
    expect(sampleQueryFiles().map((f) => f.path)).toStrictEqual([
      ...samples.map((f) => `athena/${f}`),
      ...samples.map((f) => `synapse/${f}`),
    ]);
  });

  test('every sample has a hand-computed answer, and every answer a sample', () => {
    expect([...samples].sort()).toStrictEqual(Object.keys(EXPECTED).sort());
  });
});

describe('sample queries, run by DuckDB on the current version of the compacted fixture lake', () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let db: DuckDBInstance;
  let connection: DuckDBConnection;
  let snapshot: TableSnapshot;
  let exported: string[];
  const exportFolder = () => join(dir.path, 'export');
  beforeAll(async () => {
    dir = await tempDir();
    const store = await buildFixtureLake(join(dir.path, 'lake'));
    snapshot = await new DeltaTable(store, {}).snapshot();
    exported = await exportSnapshot(store, snapshot, exportFolder());
    db = await DuckDBInstance.create(':memory:', { threads: '1' });
    connection = await db.connect();
    const files = quoteLiteral(`${exportFolder()}/*/*/*.parquet`);
    await connection.run(
      `CREATE VIEW messages AS SELECT * FROM read_parquet(${files}, hive_partitioning = true, hive_types = {'tenant_id': VARCHAR, 'dt': VARCHAR})`,
    );
  });
  afterAll(async () => {
    connection?.closeSync();
    db?.closeSync();
    await dir?.cleanup();
  });

  test("the export holds exactly the current version's files; the lake folder holds more (the replaced parts)", async () => {
    const paths = [...snapshot.files.keys()].sort();
    expect(exported.map((f) => relative(exportFolder(), f))).toStrictEqual(paths);
    expect((await readdir(exportFolder(), { recursive: true })).filter((f) => f.endsWith('.parquet')).sort()).toStrictEqual(
      paths,
    );
    const lakeParts = (await readdir(join(dir.path, 'lake/analytics/messages'), { recursive: true })).filter((f) =>
      f.endsWith('.parquet'),
    );
    expect(lakeParts.sort()).toStrictEqual([...paths, ...snapshot.removed.keys()].sort());
    expect(snapshot.removed.size).toBeGreaterThan(0);
  });

  test.each(cases)('%s %s gives the hand-computed answer', async (target, file) => {
    const text = await readFile(join(SQL_DIR, target, file), 'utf8');
    const statements = splitStatements(text);
    expect(statements).toHaveLength(1);
    const reader = await connection.runAndReadAll(toDuckDb(target, statements[0] as string));
    expect(reader.getRowObjectsJS()).toStrictEqual(EXPECTED[file]);
  });

  test.each(cases)(
    '%s %s filters on the partition columns tenant_id and dt (nothing forces it: the samples do, so only those partitions are read)',
    async (target, file) => {
      const text = await readFile(join(SQL_DIR, target, file), 'utf8');
      expect(text).toMatch(
        /WHERE tenant_id (= '[\w-]+'|IN \('[\w-]+'(, '[\w-]+')*\))\n\s*AND dt (= '\d{4}-\d{2}-\d{2}'|BETWEEN '\d{4}-\d{2}-\d{2}' AND '\d{4}-\d{2}-\d{2}')/,
      );
    },
  );
});
