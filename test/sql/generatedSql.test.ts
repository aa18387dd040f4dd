import { cp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { main } from '../../compactor/cli.js';
import { loadConfig } from '../../src/core/config.js';
import { MESSAGE_COLUMNS, PARTITION_COLUMNS } from '../../src/core/schema/messageSchema.js';
import { generatedSqlFiles, staleSqlFiles } from '../../src/core/sqlgen/generateSql.js';
import { placeholderValues, renderPlaceholders, storageAccountName } from '../../src/core/sqlgen/placeholders.js';
import { renderSql } from '../../src/core/sqlgen/renderSql.js';
import { DeltaTable } from '../../src/lake/table/deltaTable.js';
import { splitStatements, stripComments } from '../kit/splitStatements.js';
import { tempDir } from '../kit/tempDir.js';
import { buildFixtureLake } from './fixtureLake.js';

const SQL_DIR = fileURLToPath(new URL('../../sql/', import.meta.url));

function capture() {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { out: { stdout: (t: string) => stdout.push(t), stderr: (t: string) => stderr.push(t) }, stdout, stderr };
}

describe('committed DDL is what the generator produces today', () => {
  test('no generated file under sql/ is missing or stale', async () => {
    expect(await staleSqlFiles(SQL_DIR)).toStrictEqual([]);
  });

  test('the generated file list', () => {
    expect(generatedSqlFiles().map((f) => f.path)).toStrictEqual([
      'athena/01_create_database.sql',
      'athena/02_create_table_messages.sql',
      'synapse/01_create_database.sql',
      'synapse/02_create_data_source.sql',
      'synapse/03_create_view_messages.sql',
      'synapse/04_cetas_daily_message_counts.sql',
    ]);
  });

  describe('on a copy of sql/', () => {
    let dir: { path: string; cleanup: () => Promise<void> };
    beforeAll(async () => {
      dir = await tempDir();
      await cp(SQL_DIR, dir.path, { recursive: true });
    });
    afterAll(() => dir.cleanup());

    test('an edited file and a deleted file are both reported', async () => {
      const table = join(dir.path, 'athena/02_create_table_messages.sql');
      const original = await readFile(table, 'utf8');
      const edited = original.replace("'table_type' = 'DELTA'", "'table_type' = 'PARQUET'");
      expect(edited).not.toBe(original);
      await writeFile(table, edited);
      await rm(join(dir.path, 'synapse/03_create_view_messages.sql'));
      expect(await staleSqlFiles(dir.path)).toStrictEqual([
        { path: 'athena/02_create_table_messages.sql', problem: 'differs' },
        { path: 'synapse/03_create_view_messages.sql', problem: 'missing' },
      ]);
    });
  });
});

/** The Synapse view's OPENROWSET WITH clause: [name, type] in order. */
function synapseWithColumns(view: string): [string, string][] {
  const withClause = view.slice(view.indexOf(') WITH ('));
  return [...withClause.matchAll(/^ {4}\[(\w+)\]\s+(.+?),?$/gm)].map((m) => [m[1] as string, m[2] as string]);
}

/**
 * The Delta type the log gives each kind of file column: text is `string`, instants are `timestamp` (reader
 * version 1 has no `timestamp_ntz`; docs/SQL.md, Timestamps).
 */
const DELTA_TYPE = { VARCHAR: 'string', TIMESTAMP_MS: 'timestamp' } as const;

describe('the DDL follows the schema', () => {
  test('Athena: exactly the documented Delta Lake CREATE statement (LOCATION and table_type only)', () => {
    expect(generatedSqlFiles('athena')[1]?.text).toBe(
      [
        'CREATE EXTERNAL TABLE IF NOT EXISTS `makoto_lake`.`messages`',
        `LOCATION 's3://\${S3_BUCKET_NAME}/analytics/messages/'`,
        "TBLPROPERTIES ('table_type' = 'DELTA')",
        '',
      ].join('\n'),
    );
  });

  test('Athena: one statement per file and no comment before it (Athena routes DDL by its first word)', () => {
    for (const file of generatedSqlFiles('athena')) {
      expect(splitStatements(file.text)).toHaveLength(1);
      expect(file.text.startsWith('CREATE ')).toBe(true);
    }
  });

  test('Synapse: OPENROWSET reads the Delta table root with FORMAT = DELTA; WITH lists the partition columns, then every column', () => {
    const view = generatedSqlFiles('synapse')[2]?.text ?? '';
    expect(synapseWithColumns(view)).toStrictEqual([
      ['tenant_id', 'varchar(64) COLLATE Latin1_General_100_BIN2_UTF8'],
      ['dt', 'varchar(10) COLLATE Latin1_General_100_BIN2_UTF8'],
      ...MESSAGE_COLUMNS.map((c) => [c.name, c.synapse]),
    ]);
    expect(view).toContain(
      "FROM OPENROWSET(\n    BULK 'analytics/messages/',\n    DATA_SOURCE = 'makoto_lake_storage',\n    FORMAT = 'DELTA'\n) WITH (\n",
    );
    // the view selects the same columns, in the same order, straight from the Delta read (no filepath())
    const selected = [...view.matchAll(/^ {4}r\.\[(\w+)\],?$/gm)].map((m) => m[1]);
    expect(selected).toStrictEqual(['tenant_id', 'dt', ...MESSAGE_COLUMNS.map((c) => c.name)]);
    expect(view).not.toContain('filepath(');
    expect(view).not.toContain("FORMAT = 'PARQUET'");
  });

  describe("the table's log, written by a compaction of the fixture lake", () => {
    let dir: { path: string; cleanup: () => Promise<void> };
    let snapshot: Awaited<ReturnType<DeltaTable['snapshot']>>;
    beforeAll(async () => {
      dir = await tempDir();
      const store = await buildFixtureLake(dir.path);
      snapshot = await new DeltaTable(store, {}).snapshot();
    });
    afterAll(() => dir?.cleanup());

    test('protocol reader 1 / writer 2; metaData: parquet, partitioned by tenant_id and dt, the schema as the files hold it', () => {
      expect(snapshot.protocol).toStrictEqual({ minReaderVersion: 1, minWriterVersion: 2 });
      const metadata = snapshot.metadata;
      expect(metadata?.format).toStrictEqual({ provider: 'parquet', options: {} });
      expect(metadata?.partitionColumns).toStrictEqual(['tenant_id', 'dt']);
      expect(metadata?.configuration).toStrictEqual({}); // no table features: no column mapping, no deletion vectors
      const schema = JSON.parse(metadata?.schemaString ?? '{}') as { type: string; fields: Record<string, unknown>[] };
      expect(schema.type).toBe('struct');
      expect(schema.fields).toStrictEqual([
        ...MESSAGE_COLUMNS.map((c) => ({ name: c.name, type: DELTA_TYPE[c.parquet], nullable: c.nullable, metadata: {} })),
        { name: 'tenant_id', type: 'string', nullable: false, metadata: {} },
        { name: 'dt', type: 'string', nullable: false, metadata: {} },
      ]);
    });

    test('the Synapse view declares exactly the columns of the log, each with the matching type', () => {
      const fields = (JSON.parse(snapshot.metadata?.schemaString ?? '{}') as { fields: { name: string; type: string }[] }).fields;
      const fromLog = Object.fromEntries(fields.map((f) => [f.name, f.type]));
      const fromView = Object.fromEntries(
        synapseWithColumns(generatedSqlFiles('synapse')[2]?.text ?? '').map(([name, type]) => [
          name,
          type === 'datetime2(3)' ? 'timestamp' : /^varchar\((\d+|MAX)\) COLLATE /.test(type) ? 'string' : type,
        ]),
      );
      expect(fromView).toStrictEqual(fromLog);
      expect(Object.keys(fromLog)).toHaveLength(MESSAGE_COLUMNS.length + PARTITION_COLUMNS.length);
    });
  });
});

describe('placeholders', () => {
  test(`only the upper-case project placeholders are replaced; lower-case \${tenant_id} and \${dt} stay`, () => {
    expect(renderPlaceholders(`s3://\${S3_BUCKET_NAME}/a/tenant_id=\${tenant_id}/dt=\${dt}/`, { S3_BUCKET_NAME: 'b-1' })).toBe(
      `s3://b-1/a/tenant_id=\${tenant_id}/dt=\${dt}/`,
    );
    expect(() => renderPlaceholders(`\${AZURE_STORAGE_ACCOUNT}`, {})).toThrow(
      `no value for placeholder \${AZURE_STORAGE_ACCOUNT}`,
    );
  });

  test('the storage account comes from the account URL, else the connection string', () => {
    expect(storageAccountName(loadConfig({ AZURE_STORAGE_ACCOUNT_URL: 'https://makotolake.blob.core.windows.net' }))).toBe(
      'makotolake',
    );
    expect(
      storageAccountName(
        loadConfig({ AZURE_STORAGE_CONNECTION_STRING: 'DefaultEndpointsProtocol=https;AccountName=acct01;AccountKey=x' }),
      ),
    ).toBe('acct01');
    expect(storageAccountName(loadConfig({}))).toBeUndefined();
  });

  test('values are validated before they reach SQL text', () => {
    expect(() => placeholderValues(loadConfig({ S3_BUCKET_NAME: "x'; DROP TABLE y; --" }), 'athena')).toThrow(
      /S3_BUCKET_NAME\} must match/,
    );
    expect(
      placeholderValues(loadConfig({ AZURE_STORAGE_ACCOUNT_URL: 'https://acct01.blob.core.windows.net' }), 'synapse'),
    ).toStrictEqual({
      AZURE_STORAGE_ACCOUNT: 'acct01',
      AZURE_STORAGE_CONTAINER: 'makoto',
    });
  });
});

describe('makoto-lake sql', () => {
  test('--target athena prints the DDL with the bucket filled in, statements ended by ;', async () => {
    const { out, stdout, stderr } = capture();
    expect(await main(['sql', '--target', 'athena'], { S3_BUCKET_NAME: 'makoto-lake-prod' }, out)).toBe(0);
    const committed = await Promise.all(
      ['01_create_database.sql', '02_create_table_messages.sql'].map((f) => readFile(join(SQL_DIR, 'athena', f), 'utf8')),
    );
    expect(stdout).toStrictEqual([
      committed
        .map((t) => `${t.replaceAll(`\${S3_BUCKET_NAME}`, 'makoto-lake-prod').trimEnd()};\n`)
        .join('\n')
        .trimEnd(),
    ]);
    expect(stdout[0]).toContain("LOCATION 's3://makoto-lake-prod/analytics/messages/'");
    expect(stderr).toStrictEqual([]);
  });

  test('--target synapse --out DIR writes every file with the account and container filled in', async () => {
    const dir = await tempDir();
    try {
      const { out, stderr } = capture();
      const env = { AZURE_STORAGE_ACCOUNT_URL: 'https://makotolake.blob.core.windows.net', AZURE_STORAGE_CONTAINER: 'lake' };
      expect(await main(['sql', '--target', 'synapse', '--out', dir.path], env, out)).toBe(0);
      const names = [
        '01_create_database.sql',
        '02_create_data_source.sql',
        '03_create_view_messages.sql',
        '04_cetas_daily_message_counts.sql',
      ];
      expect((await readdir(dir.path)).sort()).toStrictEqual(names);
      expect(stderr).toStrictEqual(names.map((n) => `wrote ${join(dir.path, n)}`));
      for (const name of names) {
        const committed = await readFile(join(SQL_DIR, 'synapse', name), 'utf8');
        expect(await readFile(join(dir.path, name), 'utf8')).toBe(
          committed.replaceAll(`\${AZURE_STORAGE_ACCOUNT}`, 'makotolake').replaceAll(`\${AZURE_STORAGE_CONTAINER}`, 'lake'),
        );
      }
      expect(renderSql(loadConfig(env), 'synapse').files[1]?.text).toContain(
        "WITH (LOCATION = 'https://makotolake.blob.core.windows.net/lake');",
      );
    } finally {
      await dir.cleanup();
    }
  });

  test('usage errors exit 2 with the reason', async () => {
    const cases: [string[], Record<string, string>, string][] = [
      [['sql'], {}, '--target must be athena or synapse, got null'],
      [['sql', '--target', 'bigquery'], {}, '--target must be athena or synapse, got "bigquery"'],
      [['sql', '--target', 'athena'], {}, `sql --target athena needs \${S3_BUCKET_NAME}: set S3_BUCKET_NAME`],
      [['sql', '--target', 'athena'], { S3_BUCKET_NAME: 'Bad_Bucket' }, `\${S3_BUCKET_NAME} must match`],
      [['sql', '--target', 'synapse'], {}, `sql --target synapse needs \${AZURE_STORAGE_ACCOUNT}`],
    ];
    for (const [argv, env, message] of cases) {
      const { out, stdout, stderr } = capture();
      expect(await main(argv, env, out)).toBe(2);
      expect(stdout).toStrictEqual([]);
      expect(stderr[0]).toContain(`makoto-lake: ${message}`);
    }
  });
});

describe('splitStatements', () => {
  test('splits at ; and GO lines, not inside quotes, brackets or comments', () => {
    const script = "-- it's a comment; really\nUSE [a;b];\nGO\nSELECT 'x;y' AS [c]]d] /* ; */\ngo\nSELECT 2;\n-- trailing\n";
    expect(splitStatements(script)).toStrictEqual([
      "-- it's a comment; really\nUSE [a;b]",
      "SELECT 'x;y' AS [c]]d] /* ; */",
      'SELECT 2',
    ]);
    expect(stripComments('-- c\nSELECT 1 /* x */ AS a')).toBe('SELECT 1  AS a');
  });
});
