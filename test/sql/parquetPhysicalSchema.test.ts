/**
 * The Parquet the compactor writes, checked against what Athena engine v3 and Synapse serverless read:
 * INT64 TIMESTAMP(MILLIS) holding UTC instants, no INT96 / nanos / unsigned / UUID / HUGEINT, UTF-8
 * strings, snappy (zstd when chosen), partition columns only in key=value folders and the log's
 * partitionValues. The table is a Delta Lake table, so the files checked are the ones its current version
 * names (the folder also holds the parts that version replaced, until vacuum removes them).
 */
import { readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MESSAGE_COLUMNS } from '../../src/core/schema/messageSchema.js';
import { quoteLiteral } from '../../src/core/sql/quote.js';
import { RUN_ID_PATTERN } from '../../src/core/staging/layout.js';
import type { AddAction } from '../../src/lake/table/actions.js';
import { DeltaTable, partitionFiles, partitionId, type TableSnapshot } from '../../src/lake/table/deltaTable.js';
import { tempDir } from '../kit/tempDir.js';
import { buildFixtureLake, FIXTURE_DATES, FIXTURE_TENANTS, INGESTED_AT, SECOND_INGESTED_AT } from './fixtureLake.js';

/** Rows of each tenant-day after both runs (fixtureLake.ts); fuji-bank 2025-08-11 lost its only message. */
const PARTITION_ROWS: Record<string, number> = {
  'tenant_id=default_tenant/dt=2025-08-10': 8,
  'tenant_id=default_tenant/dt=2025-08-11': 5,
  'tenant_id=fuji-bank/dt=2025-08-10': 2,
  'tenant_id=fuji-bank/dt=2025-08-11': 0,
};

/** What each schema type must be in the file. */
const PHYSICAL = {
  VARCHAR: { type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: null },
  TIMESTAMP_MS: {
    type: 'INT64',
    converted_type: 'TIMESTAMP_MILLIS',
    logical_type: 'TimestampType(isAdjustedToUTC=0, unit=TimeUnit(MILLIS=MilliSeconds(), MICROS=<null>, NANOS=<null>))',
  },
} as const;

/** The Delta type the log gives each physical column type. */
const PHYSICAL_OF_DELTA = { string: PHYSICAL.VARCHAR, timestamp: PHYSICAL.TIMESTAMP_MS } as const;

async function walk(root: string, dir = root): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(root, path)));
    else out.push(relative(root, path));
  }
  return out.sort();
}

async function rows(connection: DuckDBConnection, sql: string): Promise<Record<string, unknown>[]> {
  return (await connection.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe.each<{ compression: string; env: Record<string, string>; codec: string }>([
  { compression: 'snappy', env: {}, codec: 'SNAPPY' },
  { compression: 'zstd', env: { PARQUET_COMPRESSION: 'zstd' }, codec: 'ZSTD' },
])('the compacted fixture lake, $compression', ({ env, codec }) => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let db: DuckDBInstance;
  let connection: DuckDBConnection;
  let snapshot: TableSnapshot;
  const tableFolder = () => join(dir.path, 'analytics/messages');
  /** The local file of a table path. */
  const local = (add: AddAction) => join(tableFolder(), decodeURIComponent(add.path));
  /** The files the current version names, by path. */
  const current = () => [...snapshot.files.values()].sort((a, b) => (a.path < b.path ? -1 : 1));

  beforeAll(async () => {
    dir = await tempDir();
    const store = await buildFixtureLake(dir.path, env);
    snapshot = await new DeltaTable(store, {}).snapshot();
    db = await DuckDBInstance.create(':memory:', { threads: '1' });
    connection = await db.connect();
  });
  afterAll(async () => {
    connection?.closeSync();
    db?.closeSync();
    await dir?.cleanup();
  });

  test('the current version names one file per tenant-day (a partition whose messages were all deleted: one 0-row part)', async () => {
    const named: Record<string, number[]> = {};
    for (const tenant of FIXTURE_TENANTS) {
      for (const date of FIXTURE_DATES) {
        const files = partitionFiles(snapshot, tenant, date);
        named[partitionId({ tenant_id: tenant, dt: date })] = files.map((a) => JSON.parse(a.stats ?? '{}').numRecords);
        for (const add of files) {
          expect(add.partitionValues).toStrictEqual({ tenant_id: tenant, dt: date });
          const m = new RegExp(`^tenant_id=${escapeRegExp(tenant)}/dt=${date}/part-0-([^/]+)\\.parquet$`).exec(add.path);
          expect(m, add.path).not.toBeNull();
          expect(RUN_ID_PATTERN.test(m?.[1] ?? ''), add.path).toBe(true);
          expect(add.size).toBe((await stat(local(add))).size);
          // the log's row count is the file's
          const [count] = await rows(connection, `SELECT count(*) AS n FROM read_parquet(${quoteLiteral(local(add))})`);
          expect(Number(count?.n)).toBe(JSON.parse(add.stats ?? '{}').numRecords);
        }
      }
    }
    expect(named).toStrictEqual(Object.fromEntries(Object.entries(PARTITION_ROWS).map(([p, n]) => [p, [n]])));
    expect(snapshot.files.size).toBe(Object.keys(PARTITION_ROWS).length);
  });

  test('under key=value folders only; the folder also holds the parts the current version replaced, and nothing else', async () => {
    const found = await walk(tableFolder());
    const log = found.filter((p) => p.startsWith('_delta_log/'));
    const data = found.filter((p) => !p.startsWith('_delta_log/'));
    // one commit file per version, versions 0..current (fewer than 10 commits: no checkpoint yet)
    expect(log).toStrictEqual(
      Array.from({ length: snapshot.version + 1 }, (_, v) => `_delta_log/${String(v).padStart(20, '0')}.json`),
    );
    for (const path of data) expect(path).toMatch(/^tenant_id=[\w-]+\/dt=\d{4}-\d{2}-\d{2}\/part-\d+-[A-Za-z0-9-]+\.parquet$/);
    // every data file is either named by the current version or removed by it (kept for time travel until vacuum)
    expect(data).toStrictEqual([...snapshot.files.keys(), ...snapshot.removed.keys()].sort());
    // the second run replaced the parts of both tenant-days it changed: a glob of the folder would read both
    for (const partition of ['tenant_id=default_tenant/dt=2025-08-11', 'tenant_id=fuji-bank/dt=2025-08-11']) {
      expect(
        [...snapshot.removed.keys()].filter((p) => p.startsWith(`${partition}/`)),
        partition,
      ).toHaveLength(1);
      expect(
        data.filter((p) => p.startsWith(`${partition}/`)),
        partition,
      ).toHaveLength(2);
    }
  });

  test('every file has exactly the schema columns with Athena/Synapse-readable physical types', async () => {
    for (const add of current()) {
      const schema = await rows(
        connection,
        `SELECT name, type, converted_type, logical_type, repetition_type
         FROM parquet_schema(${quoteLiteral(local(add))}) ORDER BY column_id`,
      );
      expect(schema, add.path).toStrictEqual([
        { name: 'duckdb_schema', type: null, converted_type: null, logical_type: null, repetition_type: 'REQUIRED' },
        ...MESSAGE_COLUMNS.map((c) => ({ name: c.name, ...PHYSICAL[c.parquet], repetition_type: 'OPTIONAL' })),
      ]);
      // spelled out, so the reason each check exists is visible
      const leaves = schema.slice(1);
      expect(leaves.map((s) => s.name)).not.toContain('tenant_id');
      expect(leaves.map((s) => s.name)).not.toContain('dt');
      for (const leaf of leaves) {
        expect(leaf.type).not.toBe('INT96');
        expect(leaf.type).not.toBe('FIXED_LEN_BYTE_ARRAY'); // UUID and HUGEINT would be written as this
        expect(String(leaf.converted_type)).not.toMatch(/^UINT/);
        expect(String(leaf.logical_type)).not.toMatch(/NANOS=NanoSeconds|MICROS=MicroSeconds|UUID|isSigned=0/);
      }
    }
  });

  test("the log's schema names the file columns in file order, then the partition columns; string = UTF-8, timestamp = INT64 TIMESTAMP(MILLIS)", async () => {
    const fields = (JSON.parse(snapshot.metadata?.schemaString ?? '{}') as { fields: { name: string; type: string }[] }).fields;
    const fileFields = fields.filter((f) => !snapshot.metadata?.partitionColumns.includes(f.name));
    expect(fields.slice(fileFields.length).map((f) => f.name)).toStrictEqual(['tenant_id', 'dt']);
    for (const add of current()) {
      const leaves = await rows(
        connection,
        `SELECT name, type, converted_type, logical_type FROM parquet_schema(${quoteLiteral(local(add))})
         WHERE type IS NOT NULL ORDER BY column_id`,
      );
      expect(leaves, add.path).toStrictEqual(
        fileFields.map((f) => ({ name: f.name, ...PHYSICAL_OF_DELTA[f.type as keyof typeof PHYSICAL_OF_DELTA] })),
      );
    }
  });

  test(`every column chunk is ${codec}-compressed`, async () => {
    const files = current().map((a) => quoteLiteral(local(a)));
    const codecs = await rows(connection, `SELECT DISTINCT compression FROM parquet_metadata([${files.join(', ')}])`);
    expect(codecs).toStrictEqual([{ compression: codec }]);
  });

  test('timestamps hold the UTC instants of the input (no zone shift), carried unchanged through a re-compaction', async () => {
    const [add] = partitionFiles(snapshot, 'default_tenant', '2025-08-11');
    const read = await rows(
      connection,
      `SELECT message_id, epoch_ms(created_at) AS created_ms, epoch_ms(updated_at) AS updated_ms, epoch_ms(ingested_at) AS ingested_ms
       FROM read_parquet(${quoteLiteral(local(add as AddAction))}) ORDER BY created_at, message_id`,
    );
    const ms = (iso: string) => BigInt(Date.parse(iso));
    const first = BigInt(INGESTED_AT); // m09, m14, m12: first batch, carried from the first run's part
    const second = BigInt(SECOND_INGESTED_AT); // m10 (edited), m13: second batch
    expect(read).toStrictEqual([
      { message_id: 'm09', created_ms: ms('2025-08-10T15:00:01.000Z'), updated_ms: null, ingested_ms: first },
      {
        message_id: 'm10',
        created_ms: ms('2025-08-11T00:00:00.000Z'),
        updated_ms: ms('2025-08-11T00:00:02.000Z'),
        ingested_ms: second,
      },
      { message_id: 'm14', created_ms: ms('2025-08-11T00:00:01.000Z'), updated_ms: null, ingested_ms: first },
      { message_id: 'm12', created_ms: ms('2025-08-11T00:00:03.000Z'), updated_ms: null, ingested_ms: first },
      { message_id: 'm13', created_ms: ms('2025-08-11T05:00:00.000Z'), updated_ms: null, ingested_ms: second },
    ]);
  });
});
