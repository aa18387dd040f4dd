import { cp, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../compactor/cli.js';
import { readManifest } from '../../src/lake/manifest.js';
import { DeltaTable } from '../../src/lake/table/deltaTable.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { listAll } from '../../src/ports/store/ObjectStore.js';
import { chatItem, dynamodbRecord } from '../kit/factories.js';
import { readParquetFiles, readPartitionFolder } from '../kit/readParquet.js';
import { tempDir } from '../kit/tempDir.js';

const FIXTURE = join(import.meta.dirname, '../fixtures/legacy-lake');
const PARTITIONS = [
  ['acme', '2025-08-11'],
  ['globex', '2025-08-10'],
  ['globex', '2025-08-11'],
] as const;

let dir: Awaited<ReturnType<typeof tempDir>>;
let n = 0;
beforeAll(async () => {
  dir = await tempDir('makoto-lake-convert-');
});
afterAll(() => dir.cleanup());

async function cli(data: string, argv: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await main(
    argv,
    { DATA_DIR: data, TEMP_DIR: dir.path, DUCKDB_THREADS: '1' },
    {
      stdout: (t) => stdout.push(t),
      stderr: (t) => stderr.push(t),
    },
  );
  return { code, stdout: stdout.join('\n'), stderr: stderr.join('\n') };
}

/** A copy of the previous release's lake (test/fixtures/legacy-lake/README.md). */
async function legacyLake(): Promise<string> {
  const data = join(dir.path, `lake-${++n}`);
  await cp(FIXTURE, data, { recursive: true });
  return data;
}

/** The rows as the previous release's readers saw them: every Parquet file in the partition folder. */
async function folderRows(data: string, tenant: string, date: string) {
  const folder = join(data, 'analytics/messages', `tenant_id=${tenant}`, `dt=${date}`);
  return readParquetFiles((await readdir(folder)).filter((f) => f.endsWith('.parquet')).map((f) => join(folder, f)));
}

const partition = (data: string, tenant: string, date: string) =>
  join(data, 'analytics/messages', `tenant_id=${tenant}`, `dt=${date}`);

describe('a lake of the previous release becomes version 0 of the table', () => {
  it('`convert` makes version 0 in place with the same rows, is idempotent, and the remembered deletes carry over', async () => {
    const data = await legacyLake();
    const before = await Promise.all(PARTITIONS.map(([t, d]) => folderRows(data, t, d)));
    const files = (await listAll(new LocalStore(data), '')).map((o) => o.key).sort();

    const converted = await cli(data, ['convert']);
    expect([converted.code, converted.stderr]).toStrictEqual([0, 'converted: table version 0, 3 files']);
    // nothing was rewritten: the only new object is the commit
    expect((await listAll(new LocalStore(data), '')).map((o) => o.key).sort()).toStrictEqual(
      [...files, 'analytics/messages/_delta_log/00000000000000000000.json'].sort(),
    );
    expect(await Promise.all(PARTITIONS.map(([t, d]) => readPartitionFolder(partition(data, t, d))))).toStrictEqual(before);
    expect(before.map((rows) => rows.map((r) => [r.message_id, r.content]))).toStrictEqual([
      [
        ['m1', 'hello'],
        ['m3', 'v2 edited'],
      ],
      [['g2', 'second']],
      [['g1', 'こんにちは']],
    ]);
    expect((await readManifest(new LocalStore(data), 'acme', '2025-08-11'))?.tombstones?.rows).toBe(1);

    const again = await cli(data, ['convert']);
    expect([again.code, again.stderr]).toStrictEqual([0, 'already a table (version 0): nothing to convert']);

    // staging expired; then a replay of m2's old version (its delete is only remembered) and a late edit of m1
    for (const o of await listAll(new LocalStore(data), 'staging/')) await new LocalStore(data).delete(o.key);
    const event = join(dir.path, `late-${n}.json`);
    await writeFile(
      event,
      JSON.stringify({
        Records: [
          dynamodbRecord({ seq: 2, item: chatItem({ tenantId: 'acme', messageId: 'm2', content: 'to be deleted' }) }),
          dynamodbRecord({ seq: 9, item: chatItem({ tenantId: 'acme', messageId: 'm1', content: 'hello, edited' }) }),
        ],
      }),
    );
    expect((await cli(data, ['ingest', '--source', 'dynamodb', event])).code).toBe(0);
    expect((await cli(data, ['compact', '2025-08-11', 'acme'])).code).toBe(0);
    expect(
      (await readPartitionFolder(partition(data, 'acme', '2025-08-11'))).map((r) => [r.message_id, r.content]),
    ).toStrictEqual([
      ['m1', 'hello, edited'],
      ['m3', 'v2 edited'],
    ]);
    expect((await new DeltaTable(new LocalStore(data), {}).snapshot()).version).toBe(1);

    // `export` writes a version's files for any Parquet reader; `--as-of 0` is the lake as converted
    const current = join(dir.path, `export-${n}`);
    const asConverted = join(dir.path, `export-${n}-v0`);
    expect((await cli(data, ['export', current, '--tenants', 'acme'])).stderr).toBe(
      `exported table version 1: 1 files to ${current}`,
    );
    expect((await cli(data, ['export', asConverted, '--as-of', '0'])).stderr).toBe(
      `exported table version 0: 3 files to ${asConverted}`,
    );
    const exported = async (root: string) =>
      (
        await readParquetFiles([
          join(root, 'tenant_id=acme/dt=2025-08-11', (await readdir(join(root, 'tenant_id=acme/dt=2025-08-11')))[0] as string),
        ])
      ).map((r) => [r.message_id, r.content]);
    expect(await exported(current)).toStrictEqual([
      ['m1', 'hello, edited'],
      ['m3', 'v2 edited'],
    ]);
    expect(await exported(asConverted)).toStrictEqual([
      ['m1', 'hello'],
      ['m3', 'v2 edited'],
    ]);
    // status judges the current version, or an older one
    const runOf = async (...asOf: string[]) =>
      JSON.parse((await cli(data, ['status', '2025-08-11', 'acme', '--json', ...asOf])).stdout).partitions[0].run_id;
    const legacyRun = JSON.parse(
      await readFile(join(data, 'manifests/messages/tenant_id=acme/dt=2025-08-11.json'), 'utf8'),
    ).run_id;
    expect(await runOf('--as-of', '0')).toBe(legacyRun);
    expect(await runOf()).toBe((await readManifest(new LocalStore(data), 'acme', '2025-08-11'))?.run_id);
    expect(await runOf()).not.toBe(legacyRun);

    // vacuum: nothing is older than the retention yet; a retention shorter than any run is refused
    const dry = await cli(data, ['vacuum', '--dry-run', '--json']);
    expect([dry.code, JSON.parse(dry.stdout).deleted, JSON.parse(dry.stdout).version]).toStrictEqual([0, [], 1]);
    const short = await cli(data, ['vacuum', '--retain', '1']);
    expect([short.code, short.stderr.split('\n')[0]]).toStrictEqual([
      2,
      'makoto-lake: --retain must be a number of hours, at least 24, got "1"',
    ]);
  });

  it('the first compaction converts it too, and every partition it did not touch reads as before', async () => {
    const data = await legacyLake();
    const before = await Promise.all(PARTITIONS.map(([t, d]) => folderRows(data, t, d)));
    expect((await cli(data, ['compact', '2025-08-11', 'globex'])).code).toBe(0);
    const table = new DeltaTable(new LocalStore(data), {});
    expect((await table.snapshot()).version).toBe(1);
    expect((await table.snapshot({ version: 0 })).files.size).toBe(3);
    expect(await Promise.all(PARTITIONS.map(([t, d]) => readPartitionFolder(partition(data, t, d))))).toStrictEqual(before);
  });
});
