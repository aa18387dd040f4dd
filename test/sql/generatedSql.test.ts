import { cp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { main } from '../../compactor/cli.js';
import { loadConfig } from '../../src/config.js';
import { MESSAGE_COLUMNS } from '../../src/schema/messageSchema.js';
import { generatedSqlFiles, staleSqlFiles } from '../../src/sqlgen/generateSql.js';
import { placeholderValues, renderPlaceholders, storageAccountName } from '../../src/sqlgen/placeholders.js';
import { renderSql } from '../../src/sqlgen/renderSql.js';
import { jstDate } from '../../src/time/jst.js';
import { EARLIEST_MS, parseInstant } from '../../src/time/parseInstant.js';
import { splitStatements, stripComments } from '../kit/splitStatements.js';
import { tempDir } from '../kit/tempDir.js';

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
      await writeFile(table, (await readFile(table, 'utf8')).replace('`content`         string', '`content`         varchar'));
      await rm(join(dir.path, 'synapse/03_create_view_messages.sql'));
      expect(await staleSqlFiles(dir.path)).toStrictEqual([
        { path: 'athena/02_create_table_messages.sql', problem: 'differs' },
        { path: 'synapse/03_create_view_messages.sql', problem: 'missing' },
      ]);
    });
  });
});

describe('the DDL follows the schema', () => {
  test('Athena: every column with its athena type, in file order, then the partition columns', () => {
    const table = generatedSqlFiles('athena')[1]?.text ?? '';
    const columns = [...table.matchAll(/^ {2}`(\w+)`\s+(\w+)\s+COMMENT/gm)].map((m) => [m[1], m[2]]);
    expect(columns).toStrictEqual([...MESSAGE_COLUMNS.map((c) => [c.name, c.athena]), ['tenant_id', 'string'], ['dt', 'string']]);
    expect(table).toContain("'projection.tenant_id.type' = 'injected'");
    expect(table).toContain("'projection.dt.range' = '2000-01-01,NOW+9HOURS'");
    expect(table).toContain(
      `'storage.location.template' = 's3://\${S3_BUCKET_NAME}/analytics/messages/tenant_id=\${tenant_id}/dt=\${dt}/'`,
    );
  });

  test('Athena: dt is projected from the first day ingest accepts to the current JST day', () => {
    const table = generatedSqlFiles('athena')[1]?.text ?? '';
    const range = /'projection\.dt\.range' = '([^']+)'/.exec(table)?.[1] ?? '';
    const [start, end] = range.split(',') as [string, string];
    // the first instant ingest accepts lands on the first projected day; the one before it is refused
    expect(parseInstant(EARLIEST_MS)).toStrictEqual({ ok: true, ms: EARLIEST_MS });
    expect(parseInstant(EARLIEST_MS - 1).ok).toBe(false);
    expect(start).toBe(jstDate(EARLIEST_MS));
    // Athena's relative end NOW[+-]<n>HOURS, evaluated in UTC and formatted yyyy-MM-dd, as Athena does
    const projectedEnd = (nowMs: number) => {
      const m = /^NOW\+(\d+)HOURS$/.exec(end);
      expect(m, end).not.toBeNull();
      return new Date(nowMs + Number(m?.[1]) * 3_600_000).toISOString().slice(0, 10);
    };
    // every hour of a JST day (02:00 JST = 17:00 UTC of the day before, when the nightly run compacts)
    for (let hour = 0; hour < 24; hour++) {
      const now = Date.parse('2025-08-11T15:00:00Z') + hour * 3_600_000; // 00:00 JST 2025-08-12 + hour
      expect(projectedEnd(now), `at ${new Date(now).toISOString()}`).toBe(jstDate(now));
    }
  });

  test('Athena: one statement per file and no comment before it (Athena routes DDL by its first word)', () => {
    for (const file of generatedSqlFiles('athena')) {
      expect(splitStatements(file.text)).toHaveLength(1);
      expect(file.text.startsWith('CREATE ')).toBe(true);
    }
  });

  test('Synapse: the OPENROWSET WITH clause lists every column with its synapse type', () => {
    const view = generatedSqlFiles('synapse')[2]?.text ?? '';
    const withClause = view.slice(view.indexOf(') WITH ('));
    const columns = [...withClause.matchAll(/^ {4}\[(\w+)\]\s+(.+?),?$/gm)].map((m) => [m[1], m[2]]);
    expect(columns).toStrictEqual(MESSAGE_COLUMNS.map((c) => [c.name, c.synapse]));
    expect(view).toContain("BULK 'analytics/messages/tenant_id=*/dt=*/*.parquet'");
    expect(view).toContain('r.filepath(1) AS [tenant_id],\n    r.filepath(2) AS [dt],');
  });
});

describe('placeholders', () => {
  test(`only the upper-case project placeholders are replaced; Athena \${tenant_id} and \${dt} stay`, () => {
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
