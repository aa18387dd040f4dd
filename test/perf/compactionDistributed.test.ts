/**
 * The Athena CTAS and Synapse CETAS statements (src/sqlgen/compactionDistributed.ts) keep exactly the rows
 * compactPartition keeps. Neither engine runs here, so their SELECT runs on DuckDB after these spelled-out,
 * mechanical substitutions – and nothing else:
 *
 * Athena (Trino)
 *   A1  `makoto_lake.staging_messages` is a DuckDB view over copies of the staging files with the same columns,
 *       plus the projected partition columns staging_tenant / staging_dt (what the external table exposes).
 *   A2  `"$path"` (Athena's object-path pseudo column) → `filename` (read_ndjson's object path column).
 *   A3  Trino functions as DuckDB macros: regexp_like(s, p) = regexp_matches(s, p) (both: match anywhere);
 *       from_unixtime_nanos(n) = make_timestamp(n // 1000) (a UTC timestamp); `timestamp(3)` parses as is.
 * Synapse (T-SQL)
 *   S1  The OPENROWSET + OPENJSON read is replaced by `SELECT * FROM staging_file_rows` (the same view's rows
 *       without partition columns): same column names and types, `filename` = the object path.
 *   S2  `x NOT LIKE '%[^0-9]%'` (T-SQL character class) → `NOT regexp_matches(x, '[^0-9]')`.
 *   S3  `DATEADD(millisecond, x % 86400000, DATEADD(day, x / 86400000, CAST('1970-01-01' AS datetime2(3))))`
 *       → `(TIMESTAMP '1970-01-01' + to_days(CAST(trunc(x / 86400000) AS INTEGER)) + to_milliseconds(x % 86400000))`
 *       (T-SQL integer division truncates; DuckDB's `/` is real division, hence trunc).
 *   LEN, CONCAT, COALESCE, CASE, LAG and ROW_NUMBER are the same functions in DuckDB.
 */
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readStagingSql } from '../../src/compaction/compactionSql.js';
import { compactPartition, type PartitionResult } from '../../src/compaction/compactPartition.js';
import { openDuckDb } from '../../src/duckdb/openDuckDb.js';
import type { StagedRecord } from '../../src/schema/messageSchema.js';
import { quoteLiteral } from '../../src/sql/quote.js';
import {
  athenaCompactionCtasSql,
  distributedCountsSql,
  distributedSelectSql,
  synapseCompactionCetasSql,
} from '../../src/sqlgen/compactionDistributed.js';
import { stagingKey, stagingPrefix } from '../../src/staging/layout.js';
import { gzipNdjson } from '../../src/staging/ndjson.js';
import { LocalStore } from '../../src/store/LocalStore.js';
import { listAll } from '../../src/store/ObjectStore.js';
import { stagedRecord } from '../kit/factories.js';
import { readParquetRows } from '../kit/readParquet.js';
import { tempDir } from '../kit/tempDir.js';

const TENANT = 'acme';
const DATE = '2025-08-11';
const at = (iso: string) => Date.parse(iso);

/** Every case the classification distinguishes, spread over three staging objects. */
const FIXTURE: StagedRecord[][] = [
  [
    stagedRecord({ message_id: 'plain', source_seq: '100' }),
    stagedRecord({ message_id: 'edited', source_seq: '101', content: 'v1' }),
    // '99' < '100' as numbers although '99' > '100' as text.
    stagedRecord({ message_id: 'numeric', source_seq: '99', content: 'old' }),
    stagedRecord({ message_id: 'deleted', source_seq: '102' }),
    stagedRecord({ message_id: 'expired', source_seq: '103', content: 'kept' }),
    stagedRecord({ message_id: 'dup', source_seq: '104', ingested_at: at('2025-08-11T01:00:05.000Z') }),
    stagedRecord({ message_id: 'wrong-tenant', tenant_id: 'other', source_seq: '105' }),
    stagedRecord({ message_id: 'bad-seq', source_seq: '10a' }),
  ],
  [
    stagedRecord({ message_id: 'edited', source_seq: '201', content: 'v2', updated_at: at('2025-08-11T02:00:00.000Z') }),
    stagedRecord({ message_id: 'numeric', source_seq: '100', content: 'new' }),
    stagedRecord({ message_id: 'deleted', source_seq: '202', op: 'delete' }),
    stagedRecord({ message_id: 'expired', source_seq: '203', op: 'expire', content: 'kept' }),
    // The same version delivered again, later: the first delivery is the one kept.
    stagedRecord({ message_id: 'dup', source_seq: '104', ingested_at: at('2025-08-11T01:30:00.000Z'), content: 'later copy' }),
    stagedRecord({ message_id: 'late', source_seq: '205', created_at: at('2025-08-11T15:00:00.000Z') }),
    stagedRecord({ message_id: 'unknown-op', source_seq: '206', op: 'merge' as StagedRecord['op'] }),
  ],
  [
    // A rejected row with a higher seq must not displace the valid version.
    stagedRecord({ message_id: 'plain', source_seq: '999', dt: '2025-08-12' }),
    stagedRecord({ message_id: 'edited', source_seq: '150', content: 'between' }),
    stagedRecord({ message_id: 'midnight', source_seq: '300', created_at: at('2025-08-10T15:00:00.000Z') }),
  ],
];

let dir: Awaited<ReturnType<typeof tempDir>>;
let db: DuckDBInstance;
let c: DuckDBConnection;
let store: LocalStore;
let result: PartitionResult;
let lakeRows: Record<string, unknown>[];

beforeAll(async () => {
  dir = await tempDir();
  store = new LocalStore(join(dir.path, 'data'));
  for (const [i, lines] of FIXTURE.entries())
    await store.putBytes(stagingKey(TENANT, DATE, `batch-${i}.ndjson.gz`), gzipNdjson(lines));
  db = await openDuckDb({ memoryLimit: '512MB', threads: 2, workDirectory: join(dir.path, 'duck') });
  result = await compactPartition({ store, db, workDirectory: join(dir.path, 'work') }, TENANT, DATE);
  const parts = (await listAll(store, `analytics/messages/tenant_id=${TENANT}/dt=${DATE}/`)).map((o) => join(store.root, o.key));
  lakeRows = await readParquetRows(parts, { orderBy: 'message_id' });

  c = await db.connect();
  await c.run(`SET TimeZone = 'UTC'`);
  // Flat copies, as compactPartition downloads them: over the hive-style staging path DuckDB would take
  // tenant_id and dt from the folder names instead of the lines, and the validity rules would see those.
  const files: string[] = [];
  for (const [i, o] of (await listAll(store, stagingPrefix(TENANT, DATE))).entries()) {
    files.push(join(dir.path, `flat-${i}.ndjson.gz`));
    await copyFile(join(store.root, o.key), files[i] as string);
  }
  await c.run(`CREATE VIEW staging_file_rows AS SELECT * FROM ${readStagingSql(files)}`);
  await c.run('CREATE SCHEMA makoto_lake');
  await c.run(
    `CREATE VIEW makoto_lake.staging_messages AS SELECT *, ${quoteLiteral(TENANT)} AS staging_tenant, ${quoteLiteral(DATE)} AS staging_dt FROM staging_file_rows`,
  );
  await c.run('CREATE MACRO regexp_like(s, p) AS regexp_matches(s, p)');
  await c.run('CREATE MACRO from_unixtime_nanos(n) AS make_timestamp(n // 1000)');
});

afterAll(async () => {
  c?.closeSync();
  db?.closeSync();
  await dir?.cleanup();
});

const ATHENA: [RegExp, string][] = [[/"\$path"/g, 'filename']];
const SYNAPSE: [RegExp, string][] = [
  [/SELECT j\.\*, r\.filepath\(\) AS filename[\s\S]*?\) AS j\) AS source/, 'SELECT * FROM staging_file_rows) AS source'],
  [/(\w+) NOT LIKE '%\[\^0-9\]%'/g, "NOT regexp_matches($1, '[^0-9]')"],
  [
    /DATEADD\(millisecond, (\w+) % 86400000, DATEADD\(day, \1 \/ 86400000, CAST\('1970-01-01' AS datetime2\(3\)\)\)\)/g,
    "(TIMESTAMP '1970-01-01' + to_days(CAST(trunc($1 / 86400000) AS INTEGER)) + to_milliseconds($1 % 86400000))",
  ],
];

function substitute(sql: string, rules: [RegExp, string][]): string {
  let out = sql;
  for (const [pattern, replacement] of rules) {
    const next = out.replace(pattern, replacement);
    expect(next, `substitution ${pattern} applied`).not.toBe(out);
    out = next;
  }
  return out;
}

async function rowsOf(sql: string): Promise<Record<string, unknown>[]> {
  const reader = await c.runAndReadAll(
    `SELECT * REPLACE (
       strftime(created_at, '%Y-%m-%dT%H:%M:%S.%gZ') AS created_at,
       strftime(updated_at, '%Y-%m-%dT%H:%M:%S.%gZ') AS updated_at,
       strftime(ingested_at, '%Y-%m-%dT%H:%M:%S.%gZ') AS ingested_at)
     FROM (${sql}) ORDER BY message_id`,
  );
  return reader.getRowObjectsJS() as Record<string, unknown>[];
}

async function countsOf(sql: string): Promise<Record<string, number>> {
  const rows = (await c.runAndReadAll(`${sql} ORDER BY row_kind`)).getRowObjectsJS();
  return Object.fromEntries(rows.map((r) => [String(r.row_kind), Number(r.row_count)]));
}

describe('distributed compaction statements', () => {
  it('the fixture exercises every kind of row', () => {
    expect({
      written: result.rowsWritten,
      duplicates: result.duplicatesRemoved,
      superseded: result.versionsSuperseded,
      deletes: result.deletesApplied,
      rejected: result.rowsRejected,
    }).toStrictEqual({ written: 6, duplicates: 1, superseded: 5, deletes: 1, rejected: 5 });
    expect(lakeRows.map((r) => r.message_id)).toStrictEqual(['dup', 'edited', 'expired', 'midnight', 'numeric', 'plain']);
  });

  it('Athena: the CTAS SELECT gives exactly the rows compactPartition wrote', async () => {
    const sql = substitute(distributedSelectSql('athena', TENANT, DATE), ATHENA);
    expect(await rowsOf(sql)).toStrictEqual(lakeRows);
  });

  it('Synapse: the CETAS SELECT gives exactly the rows compactPartition wrote', async () => {
    const sql = substitute(distributedSelectSql('synapse', TENANT, DATE), SYNAPSE);
    expect(await rowsOf(sql)).toStrictEqual(lakeRows);
  });

  it('the counts statements give the manifest counts in both dialects', async () => {
    const expected = { '0': 6, '1': 1, '2': 5, '3': 1, '4': 5 };
    expect(await countsOf(substitute(distributedCountsSql('athena', TENANT, DATE), ATHENA))).toStrictEqual(expected);
    // The counts have no timestamp projection, so S3 has nothing to replace there.
    const synapseCounts = substitute(distributedCountsSql('synapse', TENANT, DATE), SYNAPSE.slice(0, 2));
    expect(await countsOf(synapseCounts)).toStrictEqual(expected);
  });

  it('the CTAS and CETAS wrap the same SELECT and write into the run folder', () => {
    const run = '20250812T020000Z-1a2b3c4d';
    const ctas = athenaCompactionCtasSql(TENANT, DATE, run);
    const cetas = synapseCompactionCetasSql(TENANT, DATE, run);
    expect(ctas.endsWith(distributedSelectSql('athena', TENANT, DATE))).toBe(true);
    expect(cetas.endsWith(`${distributedSelectSql('synapse', TENANT, DATE)};`)).toBe(true);
    expect(ctas).toContain(
      `external_location = 's3://\${S3_BUCKET_NAME}/compaction-out/messages/tenant_id=acme/dt=2025-08-11/run=20250812T020000Z-1a2b3c4d/'`,
    );
    expect(cetas).toContain("LOCATION = 'compaction-out/messages/tenant_id=acme/dt=2025-08-11/run=20250812T020000Z-1a2b3c4d/'");
  });

  it('refuses a tenant id or run id that could leave its literal', () => {
    expect(() => distributedSelectSql('athena', "x' OR 1=1 --", DATE)).toThrow(/tenant id/);
    expect(() => athenaCompactionCtasSql(TENANT, DATE, "r'; DROP TABLE x")).toThrow(/run id/);
  });
});
