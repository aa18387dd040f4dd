import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { ingestBatch } from '../../src/capture/ingest/ingestBatch.js';
import { dynamodbEventChanges } from '../../src/capture/ingest/sources.js';
import { loadConfig } from '../../src/core/config.js';
import { analyticsPrefix, runManifestKey, tombstonePrefix } from '../../src/core/staging/layout.js';
import { type CompactionDeps, compactPartition } from '../../src/engine/compactPartition.js';
import { runCompaction } from '../../src/jobs/runCompaction.js';
import { vacuumLake } from '../../src/lake/lakeTable.js';
import { type PartitionManifest, readManifest } from '../../src/lake/manifest.js';
import { DeltaTable, partitionFiles, tableKey } from '../../src/lake/table/deltaTable.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { listAll } from '../../src/ports/store/ObjectStore.js';
import { duckDbFixture } from '../kit/duckDbFixture.js';
import { chatItem, dynamodbRecord } from '../kit/factories.js';
import { readPartition } from '../kit/pipeline.js';
import { readParquetRows } from '../kit/readParquet.js';

const fixture = duckDbFixture('makoto-lake-merge-', { memoryLimit: '1GB' });

const D = '2025-08-11';
const NOW = Date.parse('2025-08-11T17:00:00Z'); // 02:00 JST on the 12th
const LATER = Date.parse('2025-09-20T17:00:00Z'); // weeks later: D's staging has long expired

let store: LocalStore;
let n = 0;

beforeEach(() => {
  store = new LocalStore(join(fixture.path, `data-${++n}`));
});

const deps = (now = NOW, extra: Partial<CompactionDeps> = {}): CompactionDeps => ({
  store,
  db: fixture.db,
  workDirectory: join(fixture.path, `work-${++n}`),
  now: () => now,
  ...extra,
});
const at = (iso: string) => ({ createdAt: iso, updatedAt: iso });
const message = (seq: number, id: string, content: string, event?: 'REMOVE') =>
  dynamodbRecord({ seq, ...(event ? { event } : {}), item: chatItem({ messageId: id, content, ...at('2025-08-11T01:00:00Z') }) });

async function deliver(records: ReturnType<typeof dynamodbRecord>[], now: number): Promise<void> {
  const { changes, batchId } = dynamodbEventChanges({ Records: records });
  const result = await ingestBatch(store, changes, { source: 'dynamodb', batchId, now });
  expect(result.failed).toStrictEqual([]);
}

/** The staging lifecycle rule: every staging object of the day is gone. */
async function expireStaging(): Promise<void> {
  for (const o of await listAll(store, 'staging/')) await store.delete(o.key);
}

/** The keys of the files the table's current version names for the partition. */
const currentKeys = async () =>
  partitionFiles(await new DeltaTable(store, {}).snapshot(), 'acme', D).map((a) => tableKey(a.path));

/** What a reader of the partition sees: [message_id, content, source_seq], by message id. */
const lake = async () =>
  (await readPartition(store, 'acme', D, join(fixture.path, `read-${++n}`))).map((r) => [r.message_id, r.content, r.source_seq]);

/** The manifest's counts reconcile: every row read is written, superseded, a duplicate, a delete or rejected. */
function reconciles(m: PartitionManifest | undefined): boolean {
  if (!m) return false;
  const readIn = m.rows_read + (m.rows_carried ?? 0) + (m.deletes_remembered ?? 0);
  return readIn === m.rows_written + m.deletes_applied + m.versions_superseded + m.duplicates_removed + m.rows_rejected;
}

const nightly = (now: number) =>
  runCompaction({
    store,
    config: loadConfig({
      DATA_DIR: store.root,
      TEMP_DIR: fixture.path,
      DUCKDB_THREADS: '2',
      DUCKDB_MEMORY_LIMIT: '1GB',
    }),
    date: '2025-09-20',
    tenants: ['acme'],
    late: true,
    now: () => now,
  });

describe('merge into the published partition', () => {
  it('100 messages compacted, staging expired, a late delete of one: 99 rows remain (the issue reproduction)', async () => {
    await deliver(
      Array.from({ length: 100 }, (_, i) => message(i + 1, `m${String(i).padStart(3, '0')}`, `c${i}`)),
      NOW - 3_600_000,
    );
    expect((await compactPartition(deps(), 'acme', D)).rowsWritten).toBe(100);
    await expireStaging();
    await deliver([message(500, 'm042', 'c42', 'REMOVE')], LATER - 3_600_000);

    const result = await compactPartition(deps(LATER), 'acme', D);
    expect([result.status, result.rowsRead, result.rowsCarried, result.deletesApplied, result.rowsWritten]).toStrictEqual([
      'compacted',
      1,
      100,
      1,
      99,
    ]);
    const rows = await lake();
    expect(rows.length).toBe(99);
    expect(rows.map((r) => r[0])).toStrictEqual(
      Array.from({ length: 100 }, (_, i) => `m${String(i).padStart(3, '0')}`).filter((id) => id !== 'm042'),
    );
    const manifest = await readManifest(store, 'acme', D);
    expect(reconciles(manifest)).toBe(true);
    expect([manifest?.rows_carried, manifest?.deletes_remembered, manifest?.tombstones?.rows]).toStrictEqual([100, 0, 1]);
  });

  it('after staging expired: the nightly run applies a late edit and a late delete, and replays never resurrect', async () => {
    // day D: six messages, m5 deleted by its user the same day
    await deliver(
      [
        message(10, 'm0', 'zero'),
        message(11, 'm1', 'one'),
        message(12, 'm2', 'two'),
        message(13, 'm3', 'three'),
        message(14, 'm4', 'four'),
        message(15, 'm5', 'five'),
        message(16, 'm5', 'five', 'REMOVE'),
      ],
      NOW - 3_600_000,
    );
    expect((await compactPartition(deps(), 'acme', D)).rowsWritten).toBe(5);
    expect(await readParquetRows(join(store.root, tombstoneFile(await readManifest(store, 'acme', D))))).toStrictEqual([
      { message_id: 'm5', source_seq: '16', ingested_at: new Date(NOW - 3_600_000).toISOString() },
    ]);
    await expireStaging();

    // weeks later: an edit of m1, a user delete of m2, and a replay of m5's older version (its delete's staging is gone)
    await deliver(
      [message(40, 'm1', 'one edited'), message(41, 'm2', 'two', 'REMOVE'), message(15, 'm5', 'five')],
      LATER - 7_200_000,
    );
    const night = await nightly(LATER);
    expect(
      night.results.map((r) => [r.date, r.status, r.rowsRead, r.rowsCarried, r.deletesRemembered, r.rowsWritten]),
    ).toStrictEqual([
      ['2025-09-20', 'no-input', 0, 0, 0, 0],
      [D, 'compacted', 3, 5, 1, 4],
    ]);
    const expected = [
      ['m0', 'zero', '10'],
      ['m1', 'one edited', '40'],
      ['m3', 'three', '13'],
      ['m4', 'four', '14'],
    ];
    expect(await lake()).toStrictEqual(expected);

    // the delete of m2 expires from staging too; then m2's old version and m5's are replayed once more
    await expireStaging();
    await deliver([message(12, 'm2', 'two'), message(15, 'm5', 'five')], LATER + 86_400_000);
    const second = await nightly(LATER + 2 * 86_400_000);
    expect(second.results.map((r) => [r.date, r.status, r.deletesRemembered, r.deletesApplied, r.rowsWritten])).toStrictEqual([
      ['2025-09-20', 'no-input', 0, 0, 0],
      [D, 'compacted', 2, 2, 4],
    ]);
    expect(await lake()).toStrictEqual(expected);
    const manifest = await readManifest(store, 'acme', D);
    expect(reconciles(manifest)).toBe(true);
    // the current version names the manifest's parts and its tombstone file; a vacuum past the retention
    // leaves exactly those (earlier runs' parts and tombstone files are no longer referenced)
    expect((await currentKeys()).sort()).toStrictEqual(manifest?.outputs.map((o) => o.key).sort());
    await vacuumLake({ store, db: fixture.db, workDirectory: fixture.path }, { now: Date.now() + 8 * 86_400_000 });
    expect((await listAll(store, tombstonePrefix('acme', D))).map((o) => o.key)).toStrictEqual([tombstoneFile(manifest)]);
    expect((await listAll(store, analyticsPrefix('acme', D))).map((o) => o.key)).toStrictEqual(
      manifest?.outputs.map((o) => o.key),
    );

    // and with nothing new, the nightly run has nothing to do for D
    expect((await nightly(LATER + 3 * 86_400_000)).results.map((r) => [r.date, r.status])).toStrictEqual([
      ['2025-09-20', 'no-input'],
    ]);
  });

  it('is idempotent: a re-run over the same staging gives the same rows and counts', async () => {
    await deliver(
      [message(1, 'a', 'A'), message(2, 'a', 'A2'), message(3, 'b', 'B'), message(4, 'b', 'B', 'REMOVE'), message(5, 'c', 'C')],
      NOW - 3_600_000,
    );
    await deliver([message(3, 'b', 'B'), message(5, 'c', 'C')], NOW - 1_800_000); // a redelivery
    const counts = (r: Awaited<ReturnType<typeof compactPartition>>) => [
      r.rowsRead,
      r.rowsWritten,
      r.deletesApplied,
      r.versionsSuperseded,
      r.duplicatesRemoved,
      r.rowsCarried,
      r.deletesRemembered,
    ];
    const first = await compactPartition(deps(), 'acme', D);
    const rows = await lake();
    expect(rows).toStrictEqual([
      ['a', 'A2', '2'],
      ['c', 'C', '5'],
    ]);
    expect(counts(first)).toStrictEqual([7, 2, 1, 2, 2, 0, 0]);
    const second = await compactPartition(deps(NOW + 60_000), 'acme', D);
    // the 2 published rows and the remembered delete are duplicates of their staging versions
    expect(counts(second)).toStrictEqual([7, 2, 1, 2, 5, 2, 1]);
    expect(await lake()).toStrictEqual(rows);
    const third = await compactPartition(deps(NOW + 120_000), 'acme', D);
    expect(counts(third)).toStrictEqual(counts(second));
    expect(await lake()).toStrictEqual(rows);
    expect(reconciles(await readManifest(store, 'acme', D))).toBe(true);
  });

  it('a torn run manifest costs only its counts: the files come from the table, and the next run replaces it', async () => {
    await deliver([message(1, 'a', 'A'), message(2, 'b', 'B')], NOW - 3_600_000);
    const first = await compactPartition(deps(), 'acme', D);
    await expireStaging();
    await store.putBytes(runManifestKey('acme', D, first.runId), '{"version":1,"run_id":');
    await deliver([message(3, 'c', 'C')], LATER - 3_600_000);
    const result = await compactPartition(deps(LATER), 'acme', D);
    expect([result.status, result.rowsRead, result.rowsCarried, result.rowsWritten]).toStrictEqual(['compacted', 1, 2, 3]);
    expect(await lake()).toStrictEqual([
      ['a', 'A', '1'],
      ['b', 'B', '2'],
      ['c', 'C', '3'],
    ]);
    expect((await readManifest(store, 'acme', D))?.run_id).toBe(result.runId);
  });

  it('fails the partition without writing a manifest when the Parquet on disk is not what the writer reported', async () => {
    await deliver([message(1, 'a', 'A'), message(2, 'b', 'B')], NOW - 3_600_000);
    const good = await compactPartition(deps(), 'acme', D);
    await deliver([message(3, 'c', 'C')], NOW - 1_800_000);
    const before = await readManifest(store, 'acme', D);

    // a part that lost rows after its writer reported it: the local part is replaced by the first run's (2 rows, not 3)
    const work = join(fixture.path, `work-${++n}`);
    const corrupt = async (phase: string) => {
      if (phase !== 'verifying') return;
      const [run] = await readdir(work);
      const out = join(work, run as string, 'out');
      await rm(join(out, 'part-0.parquet'));
      await store.getToFile(good.outputFiles[0] as string, join(out, 'part-0.parquet'));
    };
    await expect(
      compactPartition({ store, db: fixture.db, workDirectory: work, now: () => NOW, onPhase: corrupt }, 'acme', D),
    ).rejects.toThrow(
      /^compaction of tenant acme for 2025-08-11 failed: the merge wrote part-0\.parquet \(\d+ bytes\) but its writer reported \d+ bytes: nothing was published$/,
    );
    expect(await readManifest(store, 'acme', D)).toStrictEqual(before);
    expect(await currentKeys()).toStrictEqual(good.outputFiles);
    expect((await listAll(store, analyticsPrefix('acme', D))).map((o) => o.key)).toStrictEqual(good.outputFiles);
    expect(await lake()).toStrictEqual([
      ['a', 'A', '1'],
      ['b', 'B', '2'],
    ]);
  });

  it('a stop that arrives once the table commit is written leaves the partition compacted', async () => {
    await deliver([message(1, 'a', 'A'), message(2, 'b', 'B')], NOW - 3_600_000);
    const first = await compactPartition(deps(), 'acme', D);
    await deliver([message(3, 'b', 'B2')], NOW - 1_800_000);

    const stop = new AbortController();
    const stopAtCleaning = (phase: string) => {
      if (phase === 'cleaning') stop.abort(new Error('SIGTERM'));
    };
    const second = await compactPartition(deps(NOW, { signal: stop.signal, onPhase: stopAtCleaning }), 'acme', D);

    expect(stop.signal.aborted).toBe(true);
    expect([second.status, second.rowsWritten, second.versionsSuperseded]).toStrictEqual(['compacted', 2, 1]);
    expect(second.outputFiles).not.toStrictEqual(first.outputFiles);
    expect(await currentKeys()).toStrictEqual(second.outputFiles);
    expect(await listAll(store, 'locks/')).toStrictEqual([]);
    expect(await lake()).toStrictEqual([
      ['a', 'A', '1'],
      ['b', 'B2', '3'],
    ]);
  });

  it('a foreign file in a partition folder is read by no one, needs no run, and goes with the vacuum', async () => {
    await deliver([message(1, 'a', 'A'), message(2, 'b', 'B', 'REMOVE')], NOW - 3_600_000);
    const first = await compactPartition(deps(), 'acme', D);
    await expireStaging();
    const stray = `${analyticsPrefix('acme', D)}stray.parquet`;
    await store.putBytes(stray, 'left by a run killed mid-upload');

    const again = await compactPartition(deps(LATER), 'acme', D);
    expect([again.status, first.status]).toStrictEqual(['no-input', 'compacted']);
    expect(await currentKeys()).toStrictEqual(first.outputFiles);
    expect(await lake()).toStrictEqual([['a', 'A', '1']]);
    // the stray file is younger than the retention: kept; past it, deleted
    expect(
      (await vacuumLake({ store, db: fixture.db, workDirectory: fixture.path }, { now: LATER, dryRun: true })).deleted,
    ).toStrictEqual([]);
    const vacuumed = await vacuumLake(
      { store, db: fixture.db, workDirectory: fixture.path },
      { now: Date.now() + 8 * 86_400_000 },
    );
    expect(vacuumed.deleted).toStrictEqual([stray]);
    expect((await listAll(store, analyticsPrefix('acme', D))).map((o) => o.key)).toStrictEqual(first.outputFiles);
    expect(await lake()).toStrictEqual([['a', 'A', '1']]);
  });
});

function tombstoneFile(manifest: PartitionManifest | undefined): string {
  const key = manifest?.tombstones?.key;
  if (!key) throw new Error('the manifest names no tombstone file');
  return key;
}
