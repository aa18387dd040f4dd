import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../compactor/cli.js';
import { ingestBatch } from '../../src/capture/ingest/ingestBatch.js';
import { dynamodbEventChanges } from '../../src/capture/ingest/sources.js';
import { gzipNdjson } from '../../src/core/staging/ndjson.js';
import { OFFBOARDED_CACHE_MS, offboardedTenants } from '../../src/lake/offboarded.js';
import { DeltaTable } from '../../src/lake/table/deltaTable.js';
import { openDuckDb } from '../../src/ports/duckdb/openDuckDb.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { getBytes, listAll, type ObjectStore } from '../../src/ports/store/ObjectStore.js';
import { chatItem, dynamodbRecord, stagedRecord } from '../kit/factories.js';
import { parquetPhysicalSchema, readLake } from '../kit/readParquet.js';
import { tempDir } from '../kit/tempDir.js';
import {
  buildYearLake,
  changedDays,
  ERASED_MESSAGE,
  ERASED_SENDER,
  ERASED_TEXT,
  erasedDays,
  expectedYearRows,
  rawScan,
  snapshotObjects,
  type YearShape,
} from './eraseLake.js';

/** A year of days for three tenants; the sender writes on every 7th day of acme (53 days); staging kept 14 days. */
const SHAPE: YearShape = { start: '2025-01-01', days: 365, every: 7, stagingDays: 14 };
/** Days of acme whose live part holds the sender's message: every 7th but the first (the user deleted it there). */
const SENDER_PARTS = erasedDays(SHAPE).length - 1;
const NEEDLES = [ERASED_SENDER, ERASED_TEXT, ERASED_MESSAGE];
const OTHERS = ['globex', 'initech'];
const tenantPrefixes = (t: string) => [
  `staging/messages/tenant_id=${t}/`,
  `analytics/messages/tenant_id=${t}/`,
  `manifests/messages/tenant_id=${t}/`,
  `tombstones/messages/tenant_id=${t}/`,
  `quarantine/compaction/tenant_id=${t}/`,
  `compaction-work/messages/tenant_id=${t}/`,
];

/** Key → etag of every object but the receipts: what "nothing changed" compares. */
async function versions(store: ObjectStore): Promise<Record<string, string>> {
  return Object.fromEntries((await listAll(store, '')).filter((o) => !o.key.startsWith('erasures/')).map((o) => [o.key, o.etag]));
}

function cli(args: string[], dataDir: string, tempDirPath: string) {
  const lines = { stdout: [] as string[], stderr: [] as string[] };
  const run = main(
    args,
    { DATA_DIR: dataDir, TEMP_DIR: tempDirPath, DUCKDB_THREADS: '1', DUCKDB_MEMORY_LIMIT: '512MB' },
    {
      stdout: (t) => lines.stdout.push(t),
      stderr: (t) => lines.stderr.push(t),
    },
  );
  return run.then((code) => ({ code, ...lines }));
}

describe('erase and offboard on the local store', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let root: string;
  let store: LocalStore;
  let close: () => void;
  let generated: Awaited<ReturnType<typeof buildYearLake>>['generated'];

  beforeAll(async () => {
    dir = await tempDir('makoto-erase-');
    root = join(dir.path, 'lake');
    store = new LocalStore(root);
    const t0 = Date.now();
    generated = (await buildYearLake(store, join(dir.path, 'build'), SHAPE)).generated;
    console.log(`year lake built in ${Date.now() - t0} ms`);
    await mkdir(join(dir.path, 'tmp'), { recursive: true });
    const db = await openDuckDb({ memoryLimit: '512MB', threads: 1, workDirectory: join(dir.path, 'duckdb') });
    close = () => db.closeSync();
  }, 300_000);

  afterAll(async () => {
    close?.();
    await dir?.cleanup();
  });

  it('the year lake: written by a few statements and table versions, it reads back like a compacted one', async () => {
    expect([generated.partitions.length, generated.versions]).toStrictEqual([3 * SHAPE.days, [0, 1, 2]]);
    // through the product's snapshot reader: every row of every day, the compactions of the three changed days applied
    expect(await readLake(store)).toStrictEqual(expectedYearRows(SHAPE));
    // a generated partition and one the compactor rewrote (day 0: merged the delete into the generated part)
    const snapshot = await new DeltaTable(store, {}).snapshot();
    const adds = [...snapshot.files.values()].filter((a) => a.partitionValues.tenant_id === 'acme');
    const [d0] = changedDays(SHAPE);
    const compacted = adds.find((a) => a.partitionValues.dt === d0);
    const plain = adds.find((a) => a.partitionValues.dt === '2025-01-03');
    const shape = (a: typeof compacted) => ({
      action: Object.keys(a ?? {}).sort(),
      stats: Object.fromEntries(
        Object.entries(JSON.parse(a?.stats ?? '{}')).map(([k, v]) => [
          k,
          typeof v === 'object' ? Object.keys(v as object).sort() : typeof v,
        ]),
      ),
      tags: Object.keys(a?.tags ?? {})
        .filter((k) => k !== 'makoto.deletes')
        .sort(),
      path: /^tenant_id=acme\/dt=\d{4}-\d{2}-\d{2}\/part-0-\d{8}T\d{9}Z-[0-9a-f]{8}\.parquet$/.test(a?.path ?? ''),
    });
    expect(shape(plain)).toStrictEqual(shape(compacted));
    expect(Object.keys(compacted?.tags ?? {}).sort()).toStrictEqual(['makoto.deletes', 'makoto.manifest', 'makoto.run_id']);
    const file = (a: typeof compacted) => join(root, 'analytics/messages', decodeURIComponent(a?.path ?? ''));
    expect(await parquetPhysicalSchema(file(plain))).toStrictEqual(await parquetPhysicalSchema(file(compacted)));
    // every version the lake went through (the generated ones, then the three compactions') reads, and names only
    // files that are there; group commit wrote the first change alone, then 1,000 (its batch limit), then the rest
    const seen: [number, number, string[]][] = [];
    for (let version = 0; version <= snapshot.version; version++) {
      const at = await new DeltaTable(store, {}).snapshot({ version });
      const missing: string[] = [];
      for (const add of at.files.values())
        if (!(await store.head(`analytics/messages/${decodeURIComponent(add.path)}`))) missing.push(add.path);
      seen.push([version, at.files.size, missing]);
    }
    expect(seen).toStrictEqual([0, 1, 2, 3, 4, 5].map((v) => [v, [1, 1001, 1095, 1095, 1095, 1095][v], []]));
    const manifest = async (a: typeof compacted) =>
      JSON.parse((await getBytes(store, a?.tags?.['makoto.manifest'] ?? '')).toString('utf8')) as Record<string, unknown>;
    expect(Object.keys(await manifest(plain)).sort()).toStrictEqual(Object.keys(await manifest(compacted)).sort());
  }, 300_000);

  it('erase: the dry run counts exactly, the erase leaves no byte of the sender anywhere, verifies, and a second erase is a no-op', async () => {
    const before = await readLake(store);
    const hitsBefore = Object.keys(await rawScan(store, NEEDLES));
    // the sender is everywhere the lake keeps records
    for (const area of [
      'staging/',
      'analytics/messages/tenant_id=acme/',
      '_delta_log/',
      'tombstones/',
      'quarantine/compaction/',
      'quarantine/ingest/',
      'quarantine/poison/',
      'compaction-work/',
    ])
      expect(hitsBefore.some((k) => k.includes(area))).toBe(true);
    const others = await snapshotObjects(store, OTHERS.flatMap(tenantPrefixes));
    const untouched = await versions(store);
    const logFiles = (await listAll(store, 'analytics/messages/_delta_log/')).filter((o) =>
      /\/\d{20}\.(json|checkpoint\.parquet)$/.test(o.key),
    ).length;

    const dry = await cli(
      ['erase', '--tenant', 'acme', '--sender', ERASED_SENDER, '--dry-run', '--json'],
      root,
      join(dir.path, 'tmp'),
    );
    expect(dry.code).toBe(0);
    // the sender wrote on 53 days of acme; staging is kept for the last 14 days (2 of them the sender's)
    const stagedSenderDays = erasedDays(SHAPE).filter((d) => d >= SHAPE.days - SHAPE.stagingDays).length;
    const expected = {
      partitions: erasedDays(SHAPE).length + 1, // the sender's days (day 0: remembered delete, replaced part) and day 1 (staging)
      data_files_read: SENDER_PARTS,
      data_files_pruned: SHAPE.days - SENDER_PARTS, // of acme's 365 live parts, these hold no sender id between their min and max
      data_files_rewritten: SENDER_PARTS,
      rows: SENDER_PARTS,
      old_files: 3, // day 0's part before the delete, day 7's before the edit, day 14's before the malformed line's run
      staging_objects: stagedSenderDays + 4, // + the delete, the malformed line, day 1's late object, the never-compacted day
      staging_lines: stagedSenderDays + 4,
      tombstone_rows: 1,
      compaction_quarantine_records: 1,
      ingest_quarantine_records: 1,
      poison_documents: 1,
      split_work_folders: 1,
      reports: 0,
      log_files: logFiles,
      objects_deleted: 0,
    };
    expect([expected.partitions, expected.data_files_pruned, expected.staging_objects]).toStrictEqual([54, 313, 6]);
    expect(JSON.parse(dry.stdout.join('\n'))).toStrictEqual({ dry_run: true, counts: expected });
    expect(await versions(store)).toStrictEqual(untouched);

    const run = await cli(['erase', '--tenant', 'acme', '--sender', ERASED_SENDER, '--json'], root, join(dir.path, 'tmp'));
    expect(run.stderr.at(-1)).toMatch(/^verified: \d+ objects scanned, no matching record left$/);
    expect(run.code).toBe(0);
    const receipt = JSON.parse(run.stdout.join('\n'));
    expect(receipt.counts).toStrictEqual(expected);
    expect(receipt.status).toBe('done');
    expect(receipt.table_versions).toHaveLength(1);
    expect(receipt.verification.remaining).toStrictEqual([]);

    // the test's own check: no object holds the sender's id, text or message ids, decompressed, Parquet read
    expect(await rawScan(store, NEEDLES)).toStrictEqual({});
    const receiptText = (await getBytes(store, receipt.receipt)).toString('utf8');
    expect(NEEDLES.filter((n) => receiptText.includes(n))).toStrictEqual([]);
    // every other row exactly as before; the other tenants' objects byte for byte
    expect(await readLake(store)).toStrictEqual(before.filter((r) => r.sender_id !== ERASED_SENDER));
    expect(await snapshotObjects(store, OTHERS.flatMap(tenantPrefixes))).toStrictEqual(others);
    // the log starts at the erase's checkpoint: one commit and its checkpoint, readable by a fresh reader
    const log = (await listAll(store, 'analytics/messages/_delta_log/')).map((o) =>
      o.key.slice('analytics/messages/_delta_log/'.length),
    );
    const v = String(receipt.table_versions[0]).padStart(20, '0');
    expect(log).toStrictEqual([`${v}.checkpoint.parquet`, `${v}.json`, '_last_checkpoint']);
    expect((await new DeltaTable(store, {}).snapshot()).version).toBe(receipt.table_versions[0]);

    const verify = await cli(['erase', '--verify', receipt.receipt], root, join(dir.path, 'tmp'));
    expect([verify.code, verify.stderr.at(-1)]).toStrictEqual([0, expect.stringMatching(/^verified: /)]);

    const afterErase = await versions(store);
    const again = await cli(['erase', '--tenant', 'acme', '--sender', ERASED_SENDER, '--json'], root, join(dir.path, 'tmp'));
    expect(again.code).toBe(0);
    const second = JSON.parse(again.stdout.join('\n'));
    expect(second.counts).toStrictEqual({ ...zeroes(expected), data_files_pruned: SHAPE.days });
    expect(second.table_versions).toStrictEqual([]);
    expect(await versions(store)).toStrictEqual(afterErase);

    // a record of the sender replayed into staging afterwards: --verify finds it, names it and exits 1
    const replayed = 'staging/messages/tenant_id=acme/dt=2025-07-05/replayed.ndjson.gz';
    await store.putBytes(
      replayed,
      gzipNdjson([stagedRecord({ tenant_id: 'acme', dt: '2025-07-05', message_id: 'r1', sender_id: ERASED_SENDER })]),
    );
    const found = await cli(['erase', '--verify', receipt.receipt], root, join(dir.path, 'tmp'));
    expect([found.code, found.stderr]).toStrictEqual([1, [`not removed: ${replayed} (1 records)`]]);
    const cleaned = await cli(['erase', '--tenant', 'acme', '--sender', ERASED_SENDER, '--json'], root, join(dir.path, 'tmp'));
    expect([cleaned.code, JSON.parse(cleaned.stdout.join('\n')).counts.staging_lines]).toStrictEqual([0, 1]);
    expect(await listAll(store, replayed)).toStrictEqual([]);
  }, 300_000);

  it('erase: a bad request exits 2 and changes nothing', async () => {
    const untouched = await versions(store);
    expect((await cli(['erase', '--tenant', 'acme'], root, join(dir.path, 'tmp'))).code).toBe(2);
    expect((await cli(['erase', '--tenant', 'a/b', '--sender', 'x'], root, join(dir.path, 'tmp'))).code).toBe(2);
    expect((await cli(['erase', '--verify', 'erasures/none.json'], root, join(dir.path, 'tmp'))).code).toBe(2);
    expect(await versions(store)).toStrictEqual(untouched);
  });

  it('offboard: every object of the tenant goes, the others stay byte-identical, capture then refuses the tenant until re-enabled', async () => {
    const others = await snapshotObjects(store, ['acme', 'initech'].flatMap(tenantPrefixes));
    const rowsBefore = await readLake(store);
    const dry = await cli(['offboard', '--tenant', 'globex', '--dry-run', '--json'], root, join(dir.path, 'tmp'));
    expect(dry.code).toBe(0);
    const counts = JSON.parse(dry.stdout.join('\n')).counts;
    const run = await cli(['offboard', '--tenant', 'globex', '--json'], root, join(dir.path, 'tmp'));
    expect(run.code).toBe(0);
    const receipt = JSON.parse(run.stdout.join('\n'));
    expect(receipt.counts).toStrictEqual(counts);
    expect([receipt.kind, receipt.status, receipt.counts.partitions, receipt.counts.ingest_quarantine_records]).toStrictEqual([
      'offboard',
      'done',
      SHAPE.days,
      1,
    ]);
    for (const prefix of tenantPrefixes('globex')) expect(await listAll(store, prefix)).toStrictEqual([]);
    expect(await snapshotObjects(store, ['acme', 'initech'].flatMap(tenantPrefixes))).toStrictEqual(others);
    expect(await readLake(store)).toStrictEqual(rowsBefore.filter((r) => r.tenant_id !== 'globex'));
    expect(await rawScan(store, ['globex-'])).toStrictEqual({});

    // capture: the tenant's records are quarantined with the reason, the others staged
    const ingest = async (at = Date.now()) => {
      const { changes, batchId } = dynamodbEventChanges({
        Records: [
          dynamodbRecord({
            seq: 7001,
            item: chatItem({ tenantId: 'globex', messageId: 'g-new', createdAt: '2025-07-05T01:00:00.000Z' }),
          }),
          dynamodbRecord({
            seq: 7002,
            item: chatItem({ tenantId: 'initech', messageId: 'i-new', createdAt: '2025-07-05T01:00:00.000Z' }),
          }),
        ],
      });
      return ingestBatch(store, changes, { source: 'dynamodb', batchId, refused: await offboardedTenants(store, at) });
    };
    const refused = await ingest();
    expect([refused.staged, refused.quarantined, refused.quarantine.map((q) => q.reason)]).toStrictEqual([
      1,
      1,
      ['tenant globex is offboarded: its records are refused until makoto-lake offboard --tenant globex --reenable'],
    ]);
    expect(await listAll(store, 'staging/messages/tenant_id=globex/')).toStrictEqual([]);

    expect((await cli(['offboard', '--tenant', 'globex', '--reenable'], root, join(dir.path, 'tmp'))).code).toBe(0);
    // another process re-enabled it: this one sees that once its cached list is a minute old
    const accepted = await ingest(Date.now() + OFFBOARDED_CACHE_MS);
    expect([accepted.staged, accepted.quarantined]).toStrictEqual([2, 0]);
  }, 300_000);
});

/** The counts that are zero after everything was erased (pruning still reads the same parts). */
function zeroes(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.keys(counts).map((k) => [k, 0]));
}
