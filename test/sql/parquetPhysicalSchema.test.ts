/**
 * The Parquet the compactor writes, checked against what Athena engine v3 and Synapse serverless read:
 * INT64 TIMESTAMP(MILLIS) holding UTC instants, no INT96 / nanos / unsigned / UUID / HUGEINT, UTF-8
 * strings, snappy (zstd when chosen), partition columns only in key=value folders.
 */
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MESSAGE_COLUMNS } from '../../src/schema/messageSchema.js';
import { quoteLiteral } from '../../src/sql/quote.js';
import { tempDir } from '../kit/tempDir.js';
import { buildFixtureLake } from './fixtureLake.js';

const PARTITION_FILES = [
  'analytics/messages/tenant_id=default_tenant/dt=2025-08-10/part-0.parquet',
  'analytics/messages/tenant_id=default_tenant/dt=2025-08-11/part-0.parquet',
  'analytics/messages/tenant_id=fuji-bank/dt=2025-08-10/part-0.parquet',
];

/** What each schema type must be in the file. */
const PHYSICAL = {
  VARCHAR: { type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: null },
  TIMESTAMP_MS: {
    type: 'INT64',
    converted_type: 'TIMESTAMP_MILLIS',
    logical_type: 'TimestampType(isAdjustedToUTC=0, unit=TimeUnit(MILLIS=MilliSeconds(), MICROS=<null>, NANOS=<null>))',
  },
} as const;

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

describe.each<{ compression: string; env: Record<string, string>; codec: string }>([
  { compression: 'snappy', env: {}, codec: 'SNAPPY' },
  { compression: 'zstd', env: { PARQUET_COMPRESSION: 'zstd' }, codec: 'ZSTD' },
])('the compacted fixture lake, $compression', ({ env, codec }) => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let db: DuckDBInstance;
  let connection: DuckDBConnection;
  beforeAll(async () => {
    dir = await tempDir();
    await buildFixtureLake(dir.path, env);
    db = await DuckDBInstance.create(':memory:', { threads: '1' });
    connection = await db.connect();
  });
  afterAll(async () => {
    connection?.closeSync();
    db?.closeSync();
    await dir?.cleanup();
  });

  test('one file per tenant-day, under key=value folders only', async () => {
    expect(await walk(join(dir.path, 'analytics')).then((f) => f.map((p) => `analytics/${p}`))).toStrictEqual(PARTITION_FILES);
  });

  test('every file has exactly the schema columns with Athena/Synapse-readable physical types', async () => {
    for (const file of PARTITION_FILES) {
      const schema = await rows(
        connection,
        `SELECT name, type, converted_type, logical_type, repetition_type
         FROM parquet_schema(${quoteLiteral(join(dir.path, file))}) ORDER BY column_id`,
      );
      expect(schema).toStrictEqual([
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

  test(`every column chunk is ${codec}-compressed`, async () => {
    const codecs = await rows(
      connection,
      `SELECT DISTINCT compression FROM parquet_metadata(${quoteLiteral(`${dir.path}/analytics/messages/*/*/*.parquet`)})`,
    );
    expect(codecs).toStrictEqual([{ compression: codec }]);
  });

  test('timestamps hold the UTC instants of the input (no zone shift)', async () => {
    const read = await rows(
      connection,
      `SELECT message_id, epoch_ms(created_at) AS created_ms, epoch_ms(updated_at) AS updated_ms, epoch_ms(ingested_at) AS ingested_ms
       FROM read_parquet(${quoteLiteral(join(dir.path, PARTITION_FILES[1] as string))}) ORDER BY created_at, message_id`,
    );
    const ms = (iso: string) => BigInt(Date.parse(iso));
    const ingested = ms('2025-08-12T00:30:00.000Z');
    expect(read).toStrictEqual([
      { message_id: 'm09', created_ms: ms('2025-08-10T15:00:01.000Z'), updated_ms: null, ingested_ms: ingested },
      {
        message_id: 'm10',
        created_ms: ms('2025-08-11T00:00:00.000Z'),
        updated_ms: ms('2025-08-11T00:00:02.000Z'),
        ingested_ms: ingested,
      },
      { message_id: 'm14', created_ms: ms('2025-08-11T00:00:01.000Z'), updated_ms: null, ingested_ms: ingested },
      { message_id: 'm12', created_ms: ms('2025-08-11T00:00:03.000Z'), updated_ms: null, ingested_ms: ingested },
      { message_id: 'm13', created_ms: ms('2025-08-11T05:00:00.000Z'), updated_ms: null, ingested_ms: ingested },
    ]);
  });
});
