import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quoteLiteral } from '../../src/core/sql/quote.js';
import type { DeltaAction } from '../../src/lake/table/actions.js';
import { readCheckpointFile, writeCheckpointFile } from '../../src/lake/table/checkpointFile.js';
import { openDuckDb, withConnection } from '../../src/ports/duckdb/openDuckDb.js';
import { tempDir } from '../kit/tempDir.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/delta/', import.meta.url));

interface CheckpointCounts {
  readonly rows: number;
  readonly protocol: number;
  readonly metaData: number;
  readonly txn: number;
  readonly add: number;
  readonly remove: number;
}

interface ExpectedTable {
  readonly version: number;
  readonly files: readonly string[];
  readonly tombstones: number;
  readonly txns: Record<string, number>;
  readonly checkpoints: Record<string, CheckpointCounts>;
}

const KINDS = ['protocol', 'metaData', 'txn', 'add', 'remove'] as const;

function counts(actions: readonly DeltaAction[]): Omit<CheckpointCounts, 'rows'> {
  return Object.fromEntries(KINDS.map((kind) => [kind, actions.filter((a) => a[kind] !== undefined).length])) as Omit<
    CheckpointCounts,
    'rows'
  >;
}

/**
 * The one normalisation between what is written and what is read back: a field that is null (or
 * undefined) is absent after reading. Nulls inside maps (a null partition value) are kept.
 */
function withoutNullFields(actions: readonly DeltaAction[]): DeltaAction[] {
  return actions.map(
    (action) =>
      Object.fromEntries(
        Object.entries(action).map(([kind, body]) => [
          kind,
          Object.fromEntries(Object.entries(body as object).filter(([, value]) => value !== null && value !== undefined)),
        ]),
      ) as DeltaAction,
  );
}

const SCHEMA_STRING = JSON.stringify({
  type: 'struct',
  fields: [
    { name: 'message_id', type: 'string', nullable: false, metadata: {} },
    { name: 'body', type: 'string', nullable: true, metadata: {} },
    { name: 'tenant_id', type: 'string', nullable: false, metadata: {} },
    { name: 'dt', type: 'string', nullable: false, metadata: {} },
  ],
});

const STATS = JSON.stringify({
  numRecords: 3,
  minValues: { message_id: 'm-001', body: 'a' },
  maxValues: { message_id: 'm-003', body: 'it\'s "quoted"' },
  nullCount: { message_id: 0, body: 1 },
});

/** Every kind of action, with the optional fields both set and missing. */
const ALL_KINDS: DeltaAction[] = [
  { protocol: { minReaderVersion: 1, minWriterVersion: 2 } },
  {
    metaData: {
      id: 'a3b4c5d6-0000-4000-8000-000000000001',
      name: 'messages',
      description: null,
      format: { provider: 'parquet', options: {} },
      schemaString: SCHEMA_STRING,
      partitionColumns: ['tenant_id', 'dt'],
      createdTime: 1754870400123,
      configuration: { 'delta.appendOnly': 'false', 'delta.logRetentionDuration': 'interval 30 days' },
    },
  },
  { txn: { appId: 'compactor', version: 42, lastUpdated: 1754870400999 } },
  { txn: { appId: 'stream-ingest/shard-0001', version: 9_007_199_254_740 } },
  {
    add: {
      path: 'tenant_id=acme/dt=2025-08-11/part-00000-0f8e3c1a.parquet',
      partitionValues: { tenant_id: 'acme', dt: '2025-08-11' },
      size: 123_456_789_012,
      modificationTime: 1754870401000,
      dataChange: true,
      stats: STATS,
      tags: { 'makoto.rows': '3', 'makoto.run': 'r-1' },
    },
  },
  {
    add: {
      path: 'tenant_id=o%27brien%20%26%20co/dt=2025-08-12/part-00001-%E3%81%BE.parquet',
      partitionValues: { tenant_id: "o'brien & co", dt: '2025-08-12' },
      size: 1,
      modificationTime: 1754956800000,
      dataChange: false,
      stats: null,
      tags: null,
    },
  },
  {
    add: {
      path: 'tenant_id=__HIVE_DEFAULT_PARTITION__/dt=2025-08-13/part-00002.parquet',
      partitionValues: { tenant_id: null, dt: '2025-08-13' },
      size: 0,
      modificationTime: 0,
      dataChange: true,
      tags: {},
    },
  },
  {
    remove: {
      path: 'tenant_id=acme/dt=2025-08-10/part-00000-old.parquet',
      deletionTimestamp: 1754870402000,
      dataChange: true,
      extendedFileMetadata: true,
      partitionValues: { tenant_id: 'acme', dt: '2025-08-10' },
      size: 987_654,
      tags: { 'makoto.rows': '7' },
    },
  },
  { remove: { path: 'part-00009-legacy.parquet', deletionTimestamp: 1754870403000, dataChange: false } },
];

describe('classic Delta checkpoint file', () => {
  let db: DuckDBInstance;
  let dir: Awaited<ReturnType<typeof tempDir>>;

  beforeAll(async () => {
    dir = await tempDir('makoto-checkpoint-');
    db = await openDuckDb({ memoryLimit: '1GB', threads: 2, workDirectory: join(dir.path, 'duckdb') });
  });

  afterAll(async () => {
    db?.closeSync();
    await dir?.cleanup();
  });

  it('reads back exactly what it wrote, for every kind of action, in order', async () => {
    const path = join(dir.path, '00000000000000000007.checkpoint.parquet');
    await writeCheckpointFile(db, ALL_KINDS, path);
    expect(await readCheckpointFile(db, path)).toStrictEqual(withoutNullFields(ALL_KINDS));
  });

  it('writes one action per row, in exactly one of txn/add/remove/metaData/protocol, with the nested Parquet types', async () => {
    const path = join(dir.path, 'schema.checkpoint.parquet');
    await writeCheckpointFile(db, ALL_KINDS, path);
    const { schema, oneColumnPerRow } = await withConnection(db, async (connection) => {
      const rows = (
        await connection.runAndReadAll(
          `SELECT name, type, repetition_type, converted_type, num_children FROM parquet_schema(${quoteLiteral(path)})`,
        )
      ).getRows();
      const perRow = (
        await connection.runAndReadAll(
          `SELECT count(*) FILTER (WHERE (txn IS NOT NULL)::INT + ("add" IS NOT NULL)::INT + (remove IS NOT NULL)::INT
             + ("metaData" IS NOT NULL)::INT + (protocol IS NOT NULL)::INT = 1), count(*) FROM read_parquet(${quoteLiteral(path)})`,
        )
      ).getRows();
      return { schema: rows.map((row) => row.map((v) => (v === null ? null : String(v)))), oneColumnPerRow: perRow[0] };
    });
    expect(oneColumnPerRow).toStrictEqual([BigInt(ALL_KINDS.length), BigInt(ALL_KINDS.length)]);
    const tree = renderTree(schema);
    expect(tree).toStrictEqual([
      'txn: (appId: BYTE_ARRAY UTF8, version: INT64 INT_64, lastUpdated: INT64 INT_64)',
      'add: (path: BYTE_ARRAY UTF8, partitionValues: MAP<key: BYTE_ARRAY UTF8 REQUIRED, value: BYTE_ARRAY UTF8>, size: INT64 INT_64, modificationTime: INT64 INT_64, dataChange: BOOLEAN, stats: BYTE_ARRAY UTF8, tags: MAP<key: BYTE_ARRAY UTF8 REQUIRED, value: BYTE_ARRAY UTF8>)',
      'remove: (path: BYTE_ARRAY UTF8, deletionTimestamp: INT64 INT_64, dataChange: BOOLEAN, extendedFileMetadata: BOOLEAN, partitionValues: MAP<key: BYTE_ARRAY UTF8 REQUIRED, value: BYTE_ARRAY UTF8>, size: INT64 INT_64, tags: MAP<key: BYTE_ARRAY UTF8 REQUIRED, value: BYTE_ARRAY UTF8>)',
      'metaData: (id: BYTE_ARRAY UTF8, name: BYTE_ARRAY UTF8, description: BYTE_ARRAY UTF8, format: (provider: BYTE_ARRAY UTF8, options: MAP<key: BYTE_ARRAY UTF8 REQUIRED, value: BYTE_ARRAY UTF8>), schemaString: BYTE_ARRAY UTF8, partitionColumns: LIST<element: BYTE_ARRAY UTF8>, configuration: MAP<key: BYTE_ARRAY UTF8 REQUIRED, value: BYTE_ARRAY UTF8>, createdTime: INT64 INT_64)',
      'protocol: (minReaderVersion: INT32 INT_32, minWriterVersion: INT32 INT_32)',
    ]);
    // the rows for add.partitionValues themselves: a MAP group, a repeated key_value group, a required key
    const add = schema.findIndex((row) => row[0] === 'add');
    const start = schema.findIndex((row, i) => i > add && row[0] === 'partitionValues');
    expect(schema.slice(start, start + 4)).toStrictEqual([
      ['partitionValues', null, 'OPTIONAL', 'MAP', '1'],
      ['key_value', null, 'REPEATED', null, '2'],
      ['key', 'BYTE_ARRAY', 'REQUIRED', 'UTF8', null],
      ['value', 'BYTE_ARRAY', 'OPTIONAL', 'UTF8', null],
    ]);
  });

  it('refuses an action that does not fit a checkpoint instead of dropping it', async () => {
    const path = join(dir.path, 'refused.checkpoint.parquet');
    const bad: [DeltaAction, string][] = [
      [
        { commitInfo: { operation: 'WRITE' } },
        'checkpoint action 1 must hold exactly one of txn, add, remove, metaData, protocol; it holds: commitInfo',
      ],
      [{ protocol: { minReaderVersion: 1, minWriterVersion: 2 }, txn: { appId: 'a', version: 1 } }, 'it holds: protocol, txn'],
      [{}, 'it holds: none'],
      [
        { add: { ...(ALL_KINDS[4]?.add as object), deletionVector: { storageType: 'u' } } as never },
        'checkpoint action 1: add.deletionVector is not part of the checkpoint schema written here',
      ],
      [
        { protocol: { minReaderVersion: 3, minWriterVersion: 7, readerFeatures: ['deletionVectors'] } as never },
        'protocol.readerFeatures is not part of the checkpoint schema',
      ],
    ];
    for (const [action, message] of bad) {
      await expect(writeCheckpointFile(db, [ALL_KINDS[0] as DeltaAction, action], path)).rejects.toThrow(message);
    }
    // a checkpoint's remove is a tombstone without stats (PROTOCOL.md): dropped, not refused
    await writeCheckpointFile(db, [{ remove: { path: 'p', dataChange: true, stats: '{}' } as never }], path);
    expect(await readCheckpointFile(db, path)).toStrictEqual([{ remove: { path: 'p', dataChange: true } }]);
    await writeCheckpointFile(db, [], path);
    expect(await readCheckpointFile(db, path)).toStrictEqual([]);
  });

  describe('reference tables from delta-rs (test/fixtures/delta)', async () => {
    const expected = JSON.parse(await readFile(join(FIXTURES, 'expected.json'), 'utf8')) as Record<string, ExpectedTable>;
    const checkpoints = Object.entries(expected).flatMap(([table, e]) =>
      Object.entries(e.checkpoints).map(([version, count]) => ({ table, version: Number(version), count, e })),
    );

    it('has the checkpoints the fixtures are chosen for', () => {
      expect(checkpoints.map(({ table, version }) => `${table}@${version}`)).toStrictEqual([
        'simple_table_with_checkpoint@10',
        'checkpoint_with_partitions@2',
        'delta-0.2.0@3',
      ]);
    });

    it.each(checkpoints)(
      '$table: the checkpoint at version $version holds the table at that version',
      async ({ table, version, count, e }) => {
        const name = `${String(version).padStart(20, '0')}.checkpoint.parquet`;
        const actions = await readCheckpointFile(db, join(FIXTURES, table, '_delta_log', name));
        const { rows, ...kinds } = count;
        expect(counts(actions)).toStrictEqual(kinds);
        expect(actions).toHaveLength(rows);
        // every fixture checkpoint is at the table's last version here, or the last one its own commits replay to
        expect(version).toBe(e.version);
        expect(actions.flatMap((a) => (a.add ? [a.add.path] : [])).sort()).toStrictEqual(e.files);
        expect(actions.flatMap((a) => (a.remove ? [a.remove.path] : []))).toHaveLength(e.tombstones);
        expect(Object.fromEntries(actions.flatMap((a) => (a.txn ? [[a.txn.appId, a.txn.version]] : [])))).toStrictEqual(e.txns);
        expect(actions.find((a) => a.protocol)?.protocol).toStrictEqual({ minReaderVersion: 1, minWriterVersion: 2 });
      },
    );

    it('reads a Spark 3.0 checkpoint (parquet-mr, with a cdc column) into plain actions', async () => {
      const actions = await readCheckpointFile(
        db,
        join(FIXTURES, 'simple_table_with_checkpoint/_delta_log/00000000000000000010.checkpoint.parquet'),
      );
      expect(actions.find((a) => a.metaData)).toStrictEqual({
        metaData: {
          id: 'cf3741a3-5f93-434f-99ac-9a4bebcdf06c',
          format: { provider: 'parquet', options: {} },
          schemaString: '{"type":"struct","fields":[{"name":"version","type":"integer","nullable":true,"metadata":{}}]}',
          partitionColumns: [],
          configuration: {},
          createdTime: 1615751699422,
        },
      });
      expect(
        actions.find((a) => a.add?.path === 'part-00000-f0e955c5-a1e3-4eec-834e-dcc098fc9005-c000.snappy.parquet'),
      ).toStrictEqual({
        add: {
          path: 'part-00000-f0e955c5-a1e3-4eec-834e-dcc098fc9005-c000.snappy.parquet',
          partitionValues: {},
          size: 442,
          modificationTime: 1615751716698,
          dataChange: false,
        },
      });
    });

    it('reads a delta-rs checkpoint (parquet-rs, stats_parsed, partitionValues_parsed, a null partition value)', async () => {
      const actions = await readCheckpointFile(
        db,
        join(FIXTURES, 'checkpoint_with_partitions/_delta_log/00000000000000000002.checkpoint.parquet'),
      );
      // what delta-rs asserted of this file (parquet2_read/mod.rs test_add_action_with_partition_values)
      expect(actions).toStrictEqual([
        { protocol: { minReaderVersion: 1, minWriterVersion: 2 } },
        {
          metaData: {
            id: '94ba8468-c676-4468-b326-adde3ab9dcd2',
            schemaString:
              '{"type":"struct","fields":[{"name":"id","type":"integer","nullable":true,"metadata":{}},{"name":"color","type":"string","nullable":true,"metadata":{}}]}',
            createdTime: 1661662807027,
            partitionColumns: ['color'],
            configuration: {},
            format: { provider: 'parquet', options: {} },
          },
        },
        {
          add: {
            path: 'f62d8868-d952-4f9d-8bb2-fd4e011ebf36',
            size: 100,
            modificationTime: 1661662807080,
            dataChange: false,
            partitionValues: { color: 'red' },
          },
        },
        {
          add: {
            path: '8ac7d8e1-daab-48ef-9d05-ec22fb4b0d2f',
            size: 100,
            modificationTime: 1661662807097,
            dataChange: false,
            partitionValues: { color: null },
          },
        },
      ]);
    });

    it('reads a Spark 2019 checkpoint with a txn, tombstones and an all-null commitInfo column', async () => {
      const actions = await readCheckpointFile(
        db,
        join(FIXTURES, 'delta-0.2.0/_delta_log/00000000000000000003.checkpoint.parquet'),
      );
      // as delta-rs asserted of actions[2], [3] and [9] (parquet2_read/mod.rs test_add_action_without_partition_values_and_stats)
      expect(actions[2]).toStrictEqual({
        txn: { appId: 'e4a20b59-dd0e-4c50-b074-e8ae4786df30', version: 0, lastUpdated: 1564524299648 },
      });
      expect(actions[3]).toStrictEqual({
        remove: {
          path: 'part-00000-512e1537-8aaa-4193-b8b4-bef3de0de409-c000.snappy.parquet',
          deletionTimestamp: 1564524298213,
          dataChange: false,
        },
      });
      expect(actions[9]).toStrictEqual({
        add: {
          path: 'part-00001-c373a5bd-85f0-4758-815e-7eb62007a15c-c000.snappy.parquet',
          partitionValues: {},
          size: 400,
          modificationTime: 1564524297000,
          dataChange: false,
        },
      });
    });
  });

  describe('checkpoints of other writers (test/fixtures/delta/foreign-checkpoints)', async () => {
    const root = join(FIXTURES, 'foreign-checkpoints');
    const expected = JSON.parse(await readFile(join(root, 'expected.json'), 'utf8')) as Record<string, CheckpointCounts>;

    it.each(Object.entries(expected))('%s: every action, and only actions', async (file, count) => {
      const actions = await readCheckpointFile(db, join(root, file));
      const { rows, ...kinds } = count;
      expect(counts(actions)).toStrictEqual(kinds);
      expect(actions.length).toBeLessThanOrEqual(rows);
      expect(actions.every((a) => Object.keys(a).length === 1)).toBe(true);
      // derived *_parsed fields are never read
      expect(actions.some((a) => a.add && ('stats_parsed' in a.add || 'partitionValues_parsed' in a.add))).toBe(false);
    });

    it('passes fields beyond DeltaAction through for the caller to judge (table features, row tracking)', async () => {
      const actions = await readCheckpointFile(
        db,
        join(root, 'table-with-domain-metadata/00000000000000000108.checkpoint.parquet'),
      );
      expect(actions[0]).toStrictEqual({
        protocol: {
          minReaderVersion: 3,
          minWriterVersion: 7,
          readerFeatures: ['deletionVectors'],
          writerFeatures: ['deletionVectors', 'domainMetadata', 'rowTracking', 'invariants', 'appendOnly', 'clustering'],
        },
      });
      const add = actions.find((a) => a.add)?.add as unknown as Record<string, unknown>;
      expect(Object.keys(add).sort()).toStrictEqual([
        'baseRowId',
        'dataChange',
        'defaultRowCommitVersion',
        'modificationTime',
        'partitionValues',
        'path',
        'size',
        'stats',
        'tags',
      ]);
    });

    it('gives adds without stats when a checkpoint has only stats_parsed', async () => {
      const actions = await readCheckpointFile(
        db,
        join(root, 'delta-1.2.1-only-struct-stats/00000000000000000010.checkpoint.parquet'),
      );
      expect(actions.filter((a) => a.add).every((a) => a.add?.stats === undefined)).toBe(true);
    });
  });

  it('refuses a V2 checkpoint that points to sidecar files', async () => {
    const path = join(dir.path, 'sidecar.checkpoint.parquet');
    await withConnection(db, (connection) =>
      connection
        .run(
          `COPY (SELECT {'version': 3, 'tags': MAP {}::MAP(VARCHAR, VARCHAR)} AS "checkpointMetadata", NULL::STRUCT(path VARCHAR) AS sidecar
             UNION ALL SELECT NULL, {'path': 'a.parquet'}) TO ${quoteLiteral(path)} (FORMAT parquet)`,
        )
        .then(() => undefined),
    );
    await expect(readCheckpointFile(db, path)).rejects.toThrow('refers to sidecar files');
  });

  it('writes and reads 100k adds quickly', async () => {
    const actions: DeltaAction[] = [ALL_KINDS[0] as DeltaAction, ALL_KINDS[1] as DeltaAction];
    for (let i = 0; i < 100_000; i += 1) {
      const tenant = `tenant-${i % 500}`;
      const dt = `2025-08-${String((i % 28) + 1).padStart(2, '0')}`;
      actions.push({
        add: {
          path: `tenant_id=${tenant}/dt=${dt}/part-${String(i).padStart(5, '0')}-0f8e3c1a-5b7d-4d2e-9a6b-${String(i).padStart(12, '0')}.c000.parquet`,
          partitionValues: { tenant_id: tenant, dt },
          size: 1_000_000 + i,
          modificationTime: 1754870400000 + i,
          dataChange: true,
          stats: `{"numRecords":${1000 + i},"minValues":{"message_id":"m-${i}-000"},"maxValues":{"message_id":"m-${i}-999"},"nullCount":{"message_id":0}}`,
          tags: { 'makoto.rows': String(1000 + i) },
        },
      });
    }
    const path = join(dir.path, 'large.checkpoint.parquet');
    let started = performance.now();
    await writeCheckpointFile(db, actions, path);
    const writeMs = performance.now() - started;
    started = performance.now();
    const back = await readCheckpointFile(db, path);
    const readMs = performance.now() - started;
    const { size } = await stat(path);
    console.info(`100k adds: write ${writeMs.toFixed(0)} ms, read ${readMs.toFixed(0)} ms, ${size} bytes`);
    started = performance.now();
    expect(back).toStrictEqual(withoutNullFields(actions));
    console.info(`compared in ${(performance.now() - started).toFixed(0)} ms`);
    // only a guard against pathological slowness on a loaded machine; the numbers are in the log
    expect(writeMs).toBeLessThan(60_000);
    expect(readMs).toBeLessThan(60_000);
  }, 300_000);
});

/**
 * parquet_schema rows (name, type, repetition, converted type, children) as one line per top-level column:
 * `name: TYPE CONVERTED`, a group as `name: (fields)`, a MAP as `name: MAP<key…, value…>`, a LIST as
 * `name: LIST<element…>`; a repetition other than OPTIONAL is appended.
 */
function renderTree(rows: readonly (string | null)[][]): string[] {
  let next = 0;
  const node = (): { text: string; kids: string[] } => {
    const [name, type, repetition, converted, children] = rows[next++] as (string | null)[];
    const nested: { text: string; kids: string[] }[] = [];
    for (let i = 0; i < Number(children ?? 0); i += 1) nested.push(node());
    const rep = repetition === 'OPTIONAL' || repetition === null ? '' : ` ${repetition}`;
    const kids = nested.map((n) => n.text);
    let text: string;
    if (converted === 'MAP') text = `${name}: MAP<${nested[0]?.kids.join(', ')}>`;
    else if (converted === 'LIST') text = `${name}: LIST<${nested[0]?.kids.join(', ')}>`;
    else if (nested.length > 0) text = `${name}: (${kids.join(', ')})`;
    else text = `${name}: ${[type, converted].filter((v) => v !== null).join(' ')}`;
    return { text: `${text}${rep}`, kids };
  };
  return node().kids;
}
