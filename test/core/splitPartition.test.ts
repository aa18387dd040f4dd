import { spawn } from 'node:child_process';
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import type { StagedRecord } from '../../src/core/schema/messageSchema.js';
import { DEFAULT_SPLIT_THRESHOLD_BYTES, splitShapeFor } from '../../src/core/splitShape.js';
import {
  ANALYTICS_ROOT,
  lockKey,
  runManifestKey,
  splitBucketPrefix,
  splitPlanKey,
  splitWorkPrefix,
  stagingKey,
  tombstoneKey,
} from '../../src/core/staging/layout.js';
import { gzipNdjson } from '../../src/core/staging/ndjson.js';
import { type CompactionDeps, compactPartition, type PartitionResult } from '../../src/engine/compactPartition.js';
import {
  abandonSplit,
  commitSplit,
  mapRange,
  reduceBucket,
  runSplit,
  type SplitRef,
  type SplitShape,
  startSplit,
} from '../../src/engine/splitPartition.js';
import { parseJob, planJobs, runJob } from '../../src/jobs/fanOut.js';
import { runCompaction } from '../../src/jobs/runCompaction.js';
import { vacuumLake } from '../../src/lake/lakeTable.js';
import { type PartitionManifest, readManifest } from '../../src/lake/manifest.js';
import { readLease } from '../../src/lake/partitionLease.js';
import { DeltaTable, partitionFiles, tableKey } from '../../src/lake/table/deltaTable.js';
import { lakeStatus, statusTable } from '../../src/ops/status.js';
import { openDuckDb } from '../../src/ports/duckdb/openDuckDb.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { getBytes, listAll, type ObjectStore, type PutOptions } from '../../src/ports/store/ObjectStore.js';
import { CountingStore } from '../kit/CountingStore.js';
import { duckDbFixture } from '../kit/duckDbFixture.js';
import { stagedRecord } from '../kit/factories.js';
import { currentFiles, readParquetRows } from '../kit/readParquet.js';

const fixture = duckDbFixture('makoto-lake-split-', { memoryLimit: '1GB' });

const D = '2025-08-11';
const NOW = Date.parse('2025-08-11T17:00:00Z');
const T0 = Date.parse('2025-08-11T03:00:00Z');

let n = 0;

const depsFor = (store: ObjectStore, extra: Partial<CompactionDeps> = {}): CompactionDeps => ({
  store,
  db: fixture.db,
  workDirectory: join(fixture.path, `work-${++n}`),
  now: () => NOW,
  ...extra,
});

/** A new empty store. */
const newStore = () => new LocalStore(join(fixture.path, `data-${++n}`));

/** Two identical copies of a store's contents: one for the single pass, one for the split. */
async function twins(source: LocalStore): Promise<[LocalStore, LocalStore]> {
  const a = newStore();
  const b = newStore();
  await cp(source.root, a.root, { recursive: true });
  await cp(source.root, b.root, { recursive: true });
  return [a, b];
}

/** A staging line; `at` is the capture time in seconds after T0. */
const line = (id: string, seq: number, overrides: Partial<StagedRecord> & { at?: number } = {}) => {
  const { at = 0, ...rest } = overrides;
  return stagedRecord({ message_id: id, source_seq: String(seq), content: `${id}@${seq}`, ingested_at: T0 + at * 1000, ...rest });
};
const stage = (store: ObjectStore, name: string, records: StagedRecord[]) =>
  store.putBytes(stagingKey('acme', D, name), gzipNdjson(records));

/** Everything a reader or the next run sees of the partition, with run-specific names taken out. */
async function published(store: LocalStore, result: PartitionResult) {
  const manifest = (await readManifest(store, 'acme', D)) as PartitionManifest;
  // the files of the table's current version, and the remembered-deletes file it names
  const rows = await readParquetRows(await currentFiles(store, 'acme', D), { orderBy: 'message_id, source_seq' });
  const tombstones = manifest.tombstones
    ? await readParquetRows([join(store.root, manifest.tombstones.key)], { orderBy: 'message_id' })
    : [];
  // the attempt's own quarantine file, as its manifest names it
  const quarantineKey = manifest.quarantine;
  const quarantine = quarantineKey
    ? gunzipSync(await getBytes(store, quarantineKey))
        .toString('utf8')
        .trim()
        .split('\n')
        .map((l) => {
          const { run_id: _, ...entry } = JSON.parse(l) as Record<string, unknown>;
          return entry;
        })
    : [];
  const { runId: _r, durationMs: _d, timingsMs: _t, outputFiles: _o, bytesWritten: _b, ...counts } = result;
  return {
    counts,
    manifest: {
      rows_read: manifest.rows_read,
      rows_carried: manifest.rows_carried,
      deletes_remembered: manifest.deletes_remembered,
      rows_rejected: manifest.rows_rejected,
      objects_rejected: manifest.objects_rejected,
      duplicates_removed: manifest.duplicates_removed,
      versions_superseded: manifest.versions_superseded,
      deletes_applied: manifest.deletes_applied,
      rows_written: manifest.rows_written,
      tombstone_rows: manifest.tombstones?.rows ?? 0,
      inputs: manifest.inputs.map((i) => i.key),
      published_inputs: (manifest.published_inputs ?? []).map((i) => i.key),
      // the attempt's own quarantine file (its name carries the run id)
      quarantine: manifest.quarantine?.replace(manifest.run_id, 'RUN') ?? null,
    },
    rows,
    tombstones,
    quarantine,
  };
}

/** The single pass on one copy, the split on the other: what they publish must be equal. */
async function splitMatchesSinglePass(source: LocalStore, shape: SplitShape) {
  const [single, split] = await twins(source);
  const expected = await compactPartition(depsFor(single), 'acme', D);
  const actual = await runSplit(depsFor(split), 'acme', D, shape);
  expect(expected.status).toBe('compacted');
  const want = await published(single, expected);
  const got = await published(split, actual);
  expect(got).toStrictEqual(want);
  expect((await readManifest(split, 'acme', D))?.split).toStrictEqual(shape);
  // nothing of the split is left behind
  expect((await listAll(split, 'compaction-work/')).map((o) => o.key)).toStrictEqual([]);
  expect(await split.head(lockKey('acme', D))).toBeUndefined();
  return { single: want, split, actual };
}

/** The store, but every write `holds` picks waits until release() (reached: the first one is waiting). */
function held(store: ObjectStore, holds: (key: string) => boolean) {
  let release = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let reach = () => {};
  const reached = new Promise<void>((resolve) => {
    reach = resolve;
  });
  const wait = async (key: string) => {
    if (!holds(key)) return;
    reach();
    await released;
  };
  const wrapped: ObjectStore = {
    location: store.location,
    list: (prefix) => store.list(prefix),
    listFolders: (prefix) => store.listFolders(prefix),
    head: (key) => store.head(key),
    getStream: (key) => store.getStream(key),
    getToFile: (key, path) => store.getToFile(key, path),
    putBytes: async (key, body, options) => {
      await wait(key);
      return store.putBytes(key, body, options);
    },
    putFile: async (key, path, options) => {
      await wait(key);
      return store.putFile(key, path, options);
    },
    delete: (key, options) => store.delete(key, options),
  };
  return { store: wrapped, reached, release: () => release() };
}

/** Which range each staging object went to, from the plan a startSplit writes. */
async function rangesOf(source: LocalStore, shape: SplitShape): Promise<Record<string, number>> {
  const [copy] = await twins(source);
  const deps = depsFor(copy);
  const started = await startSplit(deps, 'acme', D, shape);
  if (!('ref' in started)) throw new Error('expected a split');
  const plan = JSON.parse((await getBytes(copy, splitPlanKey('acme', D, started.ref.splitId))).toString('utf8')) as {
    inputs: { key: string; range: number }[];
  };
  await abandonSplit(deps, started.ref, 'inspected');
  return Object.fromEntries(plan.inputs.map((i) => [i.key.slice(i.key.lastIndexOf('/') + 1), i.range]));
}

/** Four staging objects of about one size: duplicates, versions, a delete and a TTL expiry across them. */
async function spreadDay(): Promise<LocalStore> {
  const store = newStore();
  await stage(store, 'a', [
    line('m1', 10),
    line('m2', 20),
    line('m3', 30, { attributes: '{"ttl":1754874000}' }),
    line('m4', 40),
    line('m7', 70, { content: 'tie-a', at: 5 }),
  ]);
  await stage(store, 'b', [
    line('m1', 10, { at: 60 }), // a re-delivery of m1@10, later
    line('m1', 11, { at: 61 }), // m1's newer version, in another range than its older one
    line('m2', 21, { op: 'delete', at: 62 }), // the delete of m2, whose upsert is in range 0
    line('m5', 50, { at: 63 }),
    line('m8', 80, { at: 64 }),
  ]);
  await stage(store, 'c', [
    line('m3', 31, { op: 'expire', attributes: '{"ttl":1754874000}', at: 120 }), // a TTL expiry: kept, not a delete
    line('m4', 40, { at: 121 }),
    line('m2', 20, { at: 122 }),
    line('m9', 90, { at: 123 }),
    line('m9', 89, { at: 124 }),
  ]);
  await stage(store, 'd', [
    line('m1', 10, { at: 180 }),
    line('m7', 70, { content: 'tie-b', at: 5 }), // the same version at the same capture time: the file name decides
    line('m6', 60, { at: 181 }),
    line('m6', 61, { at: 182 }),
    line('m2', 21, { op: 'delete', at: 183 }),
  ]);
  return store;
}

describe('a split tenant-day publishes exactly what the single pass publishes', () => {
  it('duplicates, versions and a delete in different ranges, a TTL expiry; K=4 × B=3', async () => {
    const day = await spreadDay();
    expect(await rangesOf(day, { ranges: 4, buckets: 3 })).toStrictEqual({
      'a.ndjson.gz': 0,
      'b.ndjson.gz': 1,
      'c.ndjson.gz': 2,
      'd.ndjson.gz': 3,
    });
    const { single } = await splitMatchesSinglePass(day, { ranges: 4, buckets: 3 });
    expect(single.counts).toStrictEqual({
      tenant: 'acme',
      date: D,
      status: 'compacted',
      inputs: 4,
      rowsRead: 20,
      rowsCarried: 0,
      deletesRemembered: 0,
      rowsRejected: 0,
      objectsRejected: 0,
      duplicatesRemoved: 6,
      versionsSuperseded: 5,
      deletesApplied: 1,
      rowsWritten: 8,
    });
    expect(single.rows.map((r) => [r.message_id, r.source_seq, r.content])).toStrictEqual([
      ['m1', '11', 'm1@11'],
      ['m3', '31', 'm3@31'],
      ['m4', '40', 'm4@40'],
      ['m5', '50', 'm5@50'],
      ['m6', '61', 'm6@61'],
      ['m7', '70', 'tie-a'],
      ['m8', '80', 'm8@80'],
      ['m9', '90', 'm9@90'],
    ]);
    expect(single.tombstones.map((t) => [t.message_id, t.source_seq])).toStrictEqual([['m2', '21']]);
  });

  it('K=1 × B=1', async () => {
    await splitMatchesSinglePass(await spreadDay(), { ranges: 1, buckets: 1 });
  });

  it('more buckets than messages (empty buckets) and more ranges than inputs (empty ranges)', async () => {
    await splitMatchesSinglePass(await spreadDay(), { ranges: 5, buckets: 10 });
  });

  it('a re-compaction: published parts and remembered deletes are inputs of their own ranges', async () => {
    const lake = await spreadDay();
    await compactPartition(depsFor(lake), 'acme', D);
    for (const o of await listAll(lake, 'staging/')) await lake.delete(o.key);
    await stage(lake, 'late-1', [
      line('m4', 41, { at: 900 }), // a late edit
      line('m5', 51, { op: 'delete', at: 901 }), // a late delete
      line('m2', 20, { at: 902 }), // a replay of the deleted message's old version: stays deleted
      line('m1', 11, { at: 903 }), // a re-delivery of the published version
    ]);
    await stage(lake, 'late-2', [line('m2', 21, { op: 'delete', at: 904 }), line('m10', 100, { at: 905 })]);
    const { single } = await splitMatchesSinglePass(lake, { ranges: 3, buckets: 2 });
    expect([single.counts.rowsCarried, single.counts.deletesRemembered, single.counts.rowsWritten]).toStrictEqual([8, 1, 8]);
    expect(single.tombstones.map((t) => [t.message_id, t.source_seq])).toStrictEqual([
      ['m2', '21'],
      ['m5', '51'],
    ]);
  });

  it('a re-compaction with no new staging: published rows and remembered deletes alone', async () => {
    const lake = await spreadDay();
    await compactPartition(depsFor(lake), 'acme', D);
    for (const o of await listAll(lake, 'staging/')) await lake.delete(o.key);
    // nothing to do for either path: no staging, and the table already holds the partition
    const [single, split] = await twins(lake);
    expect((await compactPartition(depsFor(single), 'acme', D)).status).toBe('no-input');
    expect((await runSplit(depsFor(split), 'acme', D, { ranges: 2, buckets: 2 })).status).toBe('no-input');
    // one re-delivered message makes both merge the published rows and the remembered deletes
    await stage(lake, 'again', [line('m1', 11, { at: 61 })]);
    const { single: merged } = await splitMatchesSinglePass(lake, { ranges: 2, buckets: 2 });
    expect([merged.counts.inputs, merged.counts.rowsCarried, merged.counts.deletesRemembered]).toStrictEqual([1, 8, 1]);
  });

  it('rejected rows and lines DuckDB refuses are counted and quarantined with the staging key', async () => {
    const store = newStore();
    const text = (r: StagedRecord) => JSON.stringify(r);
    await stage(store, 'a', [line('g1', 1), line('other', 2, { tenant_id: 'globex' }), line('g3', 3)]);
    const duplicateKey = `{"tenant_id":"acme",${text(line('dup', 4)).slice(1)}`;
    await store.putBytes(
      stagingKey('acme', D, 'b'),
      gzipSync(`${text(line('g5', 5))}\n{"message_id": "broken"\n${duplicateKey}\n${text(line('g1', 6, { at: 30 }))}\n`),
    );
    await store.putBytes(stagingKey('acme', D, 'c'), Buffer.alloc(0));
    await stage(store, 'd', [line('g7', 7), line('late', 8, { created_at: Date.parse('2025-08-12T16:00:00Z') })]);
    const { single } = await splitMatchesSinglePass(store, { ranges: 4, buckets: 2 });
    expect([single.counts.rowsRejected, single.counts.objectsRejected, single.counts.rowsWritten]).toStrictEqual([4, 1, 4]);
    const key = (name: string) => stagingKey('acme', D, name);
    expect(single.quarantine.map((q) => [q.object_key, q.line ?? null, String(q.reason).slice(0, 40)])).toStrictEqual([
      [key('b'), 2, "malformed JSON: Expected ',' or '}' afte"],
      [key('b'), 3, 'DuckDB refused the line: Invalid Input E'],
      [key('c'), null, 'empty object (0 bytes, not gzip)'],
      [key('a'), null, 'tenant_id globex does not match the part'],
      [key('d'), null, 'created_at is not in the JST day 2025-08'],
    ]);
  });
});

describe('split tasks', () => {
  /** Runs every task of a split from its own CompactionDeps: its own DuckDB instance and work folder, as separate processes would. */
  async function inSeparateDeps(store: ObjectStore, shape: SplitShape, between?: (ref: SplitRef) => Promise<void>) {
    const opened: DuckDBInstance[] = [];
    const fresh = async () => {
      const own = await openDuckDb({ memoryLimit: '256MB', threads: 1, workDirectory: join(fixture.path, `duck-${++n}`) });
      opened.push(own);
      return depsFor(store, { db: own });
    };
    try {
      const started = await startSplit(await fresh(), 'acme', D, shape);
      if (!('ref' in started)) throw new Error(`expected a split, got ${started.result.status}`);
      for (let i = 0; i < shape.ranges; i++) await mapRange(await fresh(), started.ref, i);
      await between?.(started.ref);
      for (let b = 0; b < shape.buckets; b++) await reduceBucket(await fresh(), started.ref, b);
      return await commitSplit(await fresh(), started.ref);
    } finally {
      for (const own of opened) own.closeSync();
    }
  }

  it('tasks run from separate deps (own DuckDB, own work folder), with a map task retried, give the single pass', async () => {
    const [single, split] = await twins(await spreadDay());
    const expected = await published(single, await compactPartition(depsFor(single), 'acme', D));
    const actual = await inSeparateDeps(split, { ranges: 3, buckets: 2 }, async (ref) => {
      await mapRange(depsFor(split), ref, 1); // a retried task rewrites its own outputs
    });
    expect(await published(split, actual)).toStrictEqual(expected);
    expect((await listAll(split, 'compaction-work/')).map((o) => o.key)).toStrictEqual([]);
  });

  /** The published partition (analytics, manifest, tombstones) as keys and versions. */
  const publishedObjects = async (store: ObjectStore) =>
    (await Promise.all(['analytics/', 'manifests/', 'tombstones/', 'quarantine/'].map(async (p) => await listAll(store, p))))
      .flat()
      .map((o) => `${o.key} ${o.etag}`);

  it('a missing report fails the reduce or the commit, publishing nothing; abandonSplit leaves only the placed parts no version names, which vacuum removes after the retention', async () => {
    const lake = await spreadDay();
    await compactPartition(depsFor(lake), 'acme', D);
    await stage(lake, 'late', [line('m4', 41, { at: 900 }), line('m5', 51, { op: 'delete', at: 901 })]);
    const before = await publishedObjects(lake);
    const deps = depsFor(lake);
    const started = await startSplit(deps, 'acme', D, { ranges: 2, buckets: 2 });
    if (!('ref' in started)) throw new Error('expected a split');
    const { ref } = started;
    await mapRange(deps, ref, 0);
    await expect(reduceBucket(deps, ref, 0)).rejects.toThrow(
      `bucket 0 of split ${ref.splitId} of tenant acme for ${D} failed: range 1's report is missing (compaction-work/messages/tenant_id=acme/dt=${D}/${ref.splitId}/range=1/report.json): its task has not finished`,
    );
    await mapRange(deps, ref, 1);
    await reduceBucket(deps, ref, 0);
    await expect(commitSplit(deps, ref)).rejects.toThrow(
      `commit of split ${ref.splitId} of tenant acme for ${D} failed: bucket 1's report is missing (compaction-work/messages/tenant_id=acme/dt=${D}/${ref.splitId}/bucket=1/report.json): its task has not finished`,
    );
    // bucket 0 placed its part in the partition's folder; no version names it, so no reader sees it
    const report = JSON.parse(
      (await getBytes(lake, `${splitBucketPrefix('acme', D, ref.splitId, 0)}report.json`)).toString('utf8'),
    );
    const placed = (report.parts as { key: string; etag: string }[]).map((p) => `${p.key} ${p.etag}`);
    expect(placed.map((p) => p.slice(0, p.indexOf(' ')))).toStrictEqual([
      `analytics/messages/tenant_id=acme/dt=${D}/part-0-${ref.splitId}-0-${report.attempt.replace(/-/g, '').slice(0, 16)}.parquet`,
    ]);
    expect(await publishedObjects(lake)).toStrictEqual([...before, ...placed].sort());
    const table = async () => {
      const snapshot = await new DeltaTable(lake, {}).snapshot();
      return [snapshot.version, partitionFiles(snapshot, 'acme', D).map((a) => tableKey(a.path))];
    };
    const tableBefore = await table();
    expect(tableBefore[0]).toBe(0);
    expect(await lake.head(lockKey('acme', D))).toBeDefined(); // still the split's: it may be retried

    const result = await abandonSplit(deps, ref, 'bucket 1 kept failing');
    expect([result.status, result.runId, result.error, result.rowsWritten]).toStrictEqual([
      'failed',
      ref.splitId,
      'bucket 1 kept failing',
      0,
    ]);
    expect(await publishedObjects(lake)).toStrictEqual([...before, ...placed].sort());
    expect(await table()).toStrictEqual(tableBefore);
    expect((await listAll(lake, 'compaction-work/')).map((o) => o.key)).toStrictEqual([]);
    expect((await listAll(lake, 'locks/')).map((o) => o.key)).toStrictEqual([]);
    // a straggler task of the abandoned split finds its lease gone and writes nothing
    await expect(mapRange(deps, ref, 0)).rejects.toThrow(/the lease object is gone/);
    expect((await listAll(lake, 'compaction-work/')).map((o) => o.key)).toStrictEqual([]);
    // vacuum: within the retention the orphan stays (a commit may be under way); past it, it goes, and only it
    const vacuumDeps = { store: lake, db: fixture.db, workDirectory: join(fixture.path, `vacuum-${++n}`) };
    expect((await vacuumLake(vacuumDeps, { now: Date.now() + 86_400_000 })).deleted).toStrictEqual([]);
    const vacuumed = await vacuumLake(vacuumDeps, { now: Date.now() + 8 * 86_400_000 });
    expect(vacuumed.deleted).toStrictEqual(placed.map((p) => p.slice(0, p.indexOf(' '))));
    expect(await publishedObjects(lake)).toStrictEqual(before);
    expect(await table()).toStrictEqual(tableBefore);
  });

  it('a map retried after the reduces makes their reports stale: the commit refuses them until they run again', async () => {
    const [single, split] = await twins(await spreadDay());
    const expected = await published(single, await compactPartition(depsFor(single), 'acme', D));
    const deps = depsFor(split);
    const started = await startSplit(deps, 'acme', D, { ranges: 2, buckets: 2 });
    if (!('ref' in started)) throw new Error('expected a split');
    const { ref } = started;
    for (const i of [0, 1]) await mapRange(deps, ref, i);
    for (const b of [0, 1]) await reduceBucket(deps, ref, b);
    await mapRange(deps, ref, 1);
    await expect(commitSplit(deps, ref)).rejects.toThrow(
      `commit of split ${ref.splitId} of tenant acme for ${D} failed: bucket 0 was reduced from map outputs that have since been replaced`,
    );
    for (const b of [0, 1]) await reduceBucket(deps, ref, b);
    expect(await published(split, await commitSplit(deps, ref))).toStrictEqual(expected);
  });

  it('a redelivered twin of a map task writes beside its sibling, never over it: the reduces and the commit read the reported attempt, exact', async () => {
    const [single, split] = await twins(await spreadDay());
    const expected = await published(single, await compactPartition(depsFor(single), 'acme', D));
    const deps = depsFor(split);
    const started = await startSplit(deps, 'acme', D, { ranges: 2, buckets: 2 });
    if (!('ref' in started)) throw new Error('expected a split');
    const { ref } = started;
    for (const i of [0, 1]) await mapRange(deps, ref, i);
    const rangeOne = `compaction-work/messages/tenant_id=acme/dt=${D}/${ref.splitId}/range=1/`;
    const sibling = (await listAll(split, rangeOne)).map((o) => `${o.key} ${o.etag}`);
    // the twin of range 1 (the queue delivered the task again) is held at its first output, as if slow
    const twin = held(split, (key) => key.startsWith(rangeOne) && !key.endsWith('report.json'));
    const late = mapRange(depsFor(twin.store), ref, 1);
    const outcome = late.then(
      () => 'finished',
      (error: unknown) => (error instanceof Error ? error.message : String(error)),
    );
    await twin.reached;
    // it has started and deleted nothing: the sibling's report and outputs are as the sibling wrote them
    expect((await listAll(split, rangeOne)).map((o) => `${o.key} ${o.etag}`)).toStrictEqual(sibling);
    for (const b of [0, 1]) await reduceBucket(deps, ref, b);
    const actual = await commitSplit(deps, ref);
    expect(await published(split, actual)).toStrictEqual(expected);
    // the twin resumes: it writes only under its own attempt's folder, and finds the split's lease gone
    twin.release();
    expect(await outcome).toMatch(new RegExp(`^range 1 of split ${ref.splitId} of tenant acme for ${D} failed: .*lease`));
    const left = (await listAll(split, 'compaction-work/')).map((o) => o.key);
    for (const key of left) expect(key).toMatch(new RegExp(`^${rangeOne}attempt=[0-9a-f-]{36}/bucket=\\d+/[^/]+\\.parquet$`));
    expect(await published(split, actual)).toStrictEqual(expected);
  });

  it('a part whose footer disagrees with its bucket report stops the commit before the manifest', async () => {
    const lake = await spreadDay();
    const deps = depsFor(lake);
    const started = await startSplit(deps, 'acme', D, { ranges: 2, buckets: 1 });
    if (!('ref' in started)) throw new Error('expected a split');
    const { ref } = started;
    for (const i of [0, 1]) await mapRange(deps, ref, i);
    await reduceBucket(deps, ref, 0);
    const reportKey = `compaction-work/messages/tenant_id=acme/dt=${D}/${ref.splitId}/bucket=0/report.json`;
    const report = JSON.parse((await getBytes(lake, reportKey)).toString('utf8'));
    report.parts[0].rows += 1;
    report.counts.current += 1;
    await lake.putBytes(reportKey, JSON.stringify(report));
    await expect(commitSplit(deps, ref)).rejects.toThrow(
      `commit of split ${ref.splitId} of tenant acme for ${D} failed: ${report.parts[0].key} holds 8 rows, its bucket reported 9: the manifest was not written`,
    );
    expect(await readManifest(lake, 'acme', D)).toBeUndefined();
  });

  it('a placed part that is gone or replaced stops the commit before the manifest (checked by HEAD, not downloaded)', async () => {
    const lake = await spreadDay();
    const deps = depsFor(lake);
    const started = await startSplit(deps, 'acme', D, { ranges: 2, buckets: 1 });
    if (!('ref' in started)) throw new Error('expected a split');
    const { ref } = started;
    for (const i of [0, 1]) await mapRange(deps, ref, i);
    await reduceBucket(deps, ref, 0);
    const report = JSON.parse(
      (await getBytes(lake, `${splitBucketPrefix('acme', D, ref.splitId, 0)}report.json`)).toString('utf8'),
    );
    const key = report.parts[0].key as string;
    const body = await getBytes(lake, key);
    await lake.delete(key);
    await expect(commitSplit(deps, ref)).rejects.toThrow(
      `commit of split ${ref.splitId} of tenant acme for ${D} failed: ${key}, which its bucket reported, is gone: the manifest was not written`,
    );
    await lake.putBytes(key, Buffer.concat([body, Buffer.from(' ')]));
    await expect(commitSplit(deps, ref)).rejects.toThrow(
      `commit of split ${ref.splitId} of tenant acme for ${D} failed: ${key} is not the version its bucket reported (another attempt replaced it): nothing was published`,
    );
    expect(await readManifest(lake, 'acme', D)).toBeUndefined();
    expect((await new DeltaTable(lake, {}).snapshot()).version).toBe(-1);
  });

  it('a split stopped (SIGTERM) after it started is abandoned: failed, no lease, no work left', async () => {
    const store = await spreadDay();
    const stop = new AbortController();
    const log = (event: string) => {
      if (event === 'split.started') stop.abort(new Error('SIGTERM'));
    };
    const result = await runSplit(depsFor(store, { signal: stop.signal, log }), 'acme', D, { ranges: 2, buckets: 2 });
    expect([result.status, result.error]).toStrictEqual([
      'failed',
      `compaction of tenant acme for ${D} failed: range 0 of split ${result.runId} of tenant acme for ${D} failed: SIGTERM`,
    ]);
    expect((await listAll(store, 'compaction-work/')).length + (await listAll(store, 'locks/')).length).toBe(0);
    expect(await readManifest(store, 'acme', D)).toBeUndefined();
  });

  it('a commit retried after it went through (its reply lost) reports the same result from the manifest', async () => {
    const store = await spreadDay();
    const deps = depsFor(store);
    const started = await startSplit(deps, 'acme', D, { ranges: 2, buckets: 2 });
    if (!('ref' in started)) throw new Error('expected a split');
    for (const i of [0, 1]) await mapRange(deps, started.ref, i);
    for (const b of [0, 1]) await reduceBucket(deps, started.ref, b);
    const first = await commitSplit(deps, started.ref);
    const again = await commitSplit(deps, started.ref);
    expect({ ...again, timingsMs: first.timingsMs }).toStrictEqual(first);
    expect(again.durationMs).toBe(first.durationMs);
  });

  it('a day with nothing to do is no-input, a day another run holds is locked; neither leaves a split behind', async () => {
    const store = newStore();
    const deps = depsFor(store);
    const none = await startSplit(deps, 'acme', D, { ranges: 2, buckets: 2 });
    expect('result' in none && none.result.status).toBe('no-input');
    await stage(store, 'a', [line('m1', 1)]);
    const first = await startSplit(deps, 'acme', D, { ranges: 2, buckets: 2 });
    const second = await startSplit(deps, 'acme', D, { ranges: 2, buckets: 2 });
    expect('result' in second && second.result.status).toBe('locked');
    if (!('ref' in first)) throw new Error('expected a split');
    await abandonSplit(deps, first.ref, 'test');
    expect((await listAll(store, 'compaction-work/')).length + (await listAll(store, 'locks/')).length).toBe(0);
  });
});

describe('big tenant-days become split jobs', () => {
  it('splits at the threshold into K = B = ceil(2 · bytes / threshold) tasks, 2 to 64; 0 never splits', () => {
    const GB = 1024 ** 3;
    expect([0.5, 1, 1.2, 3, 40].map((x) => splitShapeFor(x * GB, GB))).toStrictEqual([
      undefined,
      { ranges: 2, buckets: 2 },
      { ranges: 3, buckets: 3 },
      { ranges: 6, buckets: 6 },
      { ranges: 64, buckets: 64 },
    ]);
    expect(splitShapeFor(100 * GB, 0)).toBeUndefined();
    expect(loadConfig({}).compaction.splitThresholdBytes).toBe(DEFAULT_SPLIT_THRESHOLD_BYTES);
    expect(loadConfig({ SPLIT_THRESHOLD_BYTES: '0' }).compaction.splitThresholdBytes).toBe(0);
    expect(() => loadConfig({ SPLIT_THRESHOLD_BYTES: '1GB' })).toThrow('SPLIT_THRESHOLD_BYTES must be an integer, got "1GB"');
  });

  it('takes a split job as the orchestrators pass it and refuses a bad shape, saying why', () => {
    const job = { tenant: 'a', date: D, stagingBytes: 9, split: { ranges: 4, buckets: 2 } };
    expect(parseJob(job)).toStrictEqual(job);
    expect(() => parseJob({ ...job, split: { ranges: 0, buckets: 2 } })).toThrow(
      'job.split.ranges must be a whole number from 1 to 256, got 0',
    );
    expect(() => parseJob({ ...job, split: { ranges: 2, buckets: 2, k: 1 } })).toThrow('unknown job.split field(s) k');
    expect(() => parseJob({ ...job, split: [2, 2] })).toThrow(
      'job.split must be an object like {"ranges": 4, "buckets": 4}, got [2,2]',
    );
  });

  it('planJobs gives a day past the threshold a split; runJob and the CLI path compact it as a split', async () => {
    const day = await spreadDay();
    const bytes = (await listAll(day, 'staging/')).reduce((sum, o) => sum + o.size, 0);
    const jobs = await planJobs(day, { date: D, tenants: ['acme'], lateLookbackDays: 0, splitThresholdBytes: bytes });
    expect(jobs).toStrictEqual([{ tenant: 'acme', date: D, stagingBytes: bytes, split: { ranges: 2, buckets: 2 } }]);
    expect(
      await planJobs(day, { date: D, tenants: ['acme'], lateLookbackDays: 0, splitThresholdBytes: bytes + 1 }),
    ).toStrictEqual([{ tenant: 'acme', date: D, stagingBytes: bytes }]);

    const [byJob, byCli] = await twins(day);
    const result = await runJob(depsFor(byJob), { ...(jobs[0] as (typeof jobs)[number]) });
    expect([result.status, result.rowsWritten, (await readManifest(byJob, 'acme', D))?.split]).toStrictEqual([
      'compacted',
      8,
      { ranges: 2, buckets: 2 },
    ]);
    const summary = await runCompaction({
      store: byCli,
      config: loadConfig({
        DATA_DIR: byCli.root,
        TEMP_DIR: fixture.path,
        TENANT_ID: 'acme',
        DUCKDB_THREADS: '1',
        DUCKDB_MEMORY_LIMIT: '512MB',
        SPLIT_THRESHOLD_BYTES: String(bytes),
      }),
      date: D,
      now: () => NOW,
    });
    expect([summary.ok, summary.totals.rowsWritten, (await readManifest(byCli, 'acme', D))?.split]).toStrictEqual([
      true,
      8,
      { ranges: 2, buckets: 2 },
    ]);
  });
});

describe('the reduce places its parts where the table will name them; the commit only names them', () => {
  /** A CountingStore that also keeps the keys it read and wrote. */
  class KeyedStore extends CountingStore {
    readonly gets: string[] = [];
    readonly puts: string[] = [];
    override getToFile(key: string, path: string) {
      this.gets.push(key);
      return super.getToFile(key, path);
    }
    override getStream(key: string) {
      this.gets.push(key);
      return super.getStream(key);
    }
    override putFile(key: string, path: string, options?: PutOptions) {
      this.puts.push(key);
      return super.putFile(key, path, options);
    }
    override putBytes(key: string, body: Uint8Array | string, options?: PutOptions) {
      this.puts.push(key);
      return super.putBytes(key, body, options);
    }
  }

  it("a reduce run twice (a retry, a redelivered twin) places its own parts beside the first's: the commit names the reported attempt's, vacuum removes the other's", async () => {
    const [single, split] = await twins(await spreadDay());
    const expected = await published(single, await compactPartition(depsFor(single), 'acme', D));
    const deps = depsFor(split);
    const started = await startSplit(deps, 'acme', D, { ranges: 2, buckets: 2 });
    if (!('ref' in started)) throw new Error('expected a split');
    const { ref } = started;
    for (const i of [0, 1]) await mapRange(deps, ref, i);
    const reportKey = `${splitBucketPrefix('acme', D, ref.splitId, 0)}report.json`;
    const partsOf = async () =>
      (JSON.parse((await getBytes(split, reportKey)).toString('utf8')).parts as { key: string; etag: string }[]).map(
        (p) => `${p.key} ${p.etag}`,
      );
    await reduceBucket(deps, ref, 0);
    const first = await partsOf();
    await reduceBucket(deps, ref, 0);
    const second = await partsOf();
    await reduceBucket(deps, ref, 1);
    // the second attempt wrote under names of its own: the first's parts are there, as they were written
    expect(second.some((p) => first.includes(p))).toBe(false);
    const folder = async () => (await listAll(split, 'analytics/messages/tenant_id=')).map((o) => `${o.key} ${o.etag}`);
    for (const p of [...first, ...second]) expect(await folder()).toContain(p);
    const result = await commitSplit(deps, ref);
    expect(await published(split, result)).toStrictEqual(expected);
    const named = partitionFiles(await new DeltaTable(split, {}).snapshot(), 'acme', D).map((a) => tableKey(a.path));
    const keys = (parts: string[]) => parts.map((p) => p.slice(0, p.indexOf(' ')));
    for (const key of keys(second)) expect(named).toContain(key);
    for (const key of keys(first)) expect(named).not.toContain(key);
    const vacuumed = await vacuumLake(
      { store: split, db: fixture.db, workDirectory: join(fixture.path, `vacuum-${++n}`) },
      { now: Date.now() + 8 * 86_400_000 },
    );
    expect(vacuumed.deleted).toStrictEqual(keys(first));
    expect(await published(split, result)).toStrictEqual(expected);
  });

  it('the commit downloads and uploads no data part: it reads reports and writes the deletes, the manifest and the log entry', async () => {
    const [single, split] = await twins(await spreadDay());
    const expected = await published(single, await compactPartition(depsFor(single), 'acme', D));
    const deps = depsFor(split);
    const started = await startSplit(deps, 'acme', D, { ranges: 2, buckets: 3 });
    if (!('ref' in started)) throw new Error('expected a split');
    const { ref } = started;
    for (const i of [0, 1]) await mapRange(deps, ref, i);
    for (const b of [0, 1, 2]) await reduceBucket(deps, ref, b);
    const reports = await Promise.all(
      [0, 1, 2].map(async (b) =>
        JSON.parse((await getBytes(split, `${splitBucketPrefix('acme', D, ref.splitId, b)}report.json`)).toString('utf8')),
      ),
    );
    const placed = reports.flatMap((r) => r.parts as { key: string; size: number }[]);
    const counting = new KeyedStore(split);
    const result = await commitSplit(depsFor(counting), ref);
    expect(await published(split, result)).toStrictEqual(expected);
    // every part the table now names is one a reduce placed, byte for byte where it lies
    const current = partitionFiles(await new DeltaTable(split, {}).snapshot(), 'acme', D).map((a) => tableKey(a.path));
    expect(current.sort()).toStrictEqual(placed.map((p) => p.key).sort());
    expect(result.bytesWritten).toBe(placed.reduce((n, p) => n + p.size, 0));
    const data = (k: string) => k.startsWith(ANALYTICS_ROOT) && !k.startsWith(`${ANALYTICS_ROOT}_delta_log/`);
    expect([counting.gets.filter(data), counting.puts.filter(data)]).toStrictEqual([[], []]);
    // reads: the lease, the plan, the reports; writes: the lease, the remembered deletes, the manifest, the log entry
    const work = splitWorkPrefix('acme', D, ref.splitId);
    expect(counting.gets).toStrictEqual([
      lockKey('acme', D),
      `${work}plan.json`,
      `${work}range=0/report.json`,
      `${work}range=1/report.json`,
      `${work}bucket=0/report.json`,
      `${work}bucket=1/report.json`,
      `${work}bucket=2/report.json`,
    ]);
    expect(counting.puts.filter((k) => k !== lockKey('acme', D))).toStrictEqual([
      tombstoneKey('acme', D, ref.splitId),
      runManifestKey('acme', D, ref.splitId),
      'analytics/messages/_delta_log/00000000000000000000.json',
    ]);
  });
});

describe('a split run by one process (the CLI) that is killed', () => {
  const REPO = fileURLToPath(new URL('../../', import.meta.url));

  /** `makoto-lake compact D acme` as a split, in a child that SIGKILLs itself at `point`. */
  function killedCliSplit(root: string, threshold: number, point: 'map' | 'reduce') {
    return new Promise<{ code: number | null; signal: NodeJS.Signals | null; pid: number; stderr: string }>((resolve, reject) => {
      const args = [root, fixture.path, D, 'acme', String(threshold), point];
      const child = spawn(process.execPath, [join(REPO, 'bin/run-ts.mjs'), join(REPO, 'test/kit/splitCrashChild.ts'), ...args], {
        cwd: REPO,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      child.once('error', reject);
      child.once('exit', (code, signal) => resolve({ code, signal, pid: child.pid as number, stderr }));
    });
  }

  it.each(['map', 'reduce'] as const)(
    'killed during its %s tasks: the next run takes the day over at once and compacts it exactly; status counts the dead split, vacuum removes it after the retention',
    async (point) => {
      const day = await spreadDay();
      const threshold = (await listAll(day, 'staging/')).reduce((sum, o) => sum + o.size, 0);
      const [single, lake] = await twins(day);
      await compactPartition(depsFor(single), 'acme', D);
      const rows = async (store: LocalStore) =>
        readParquetRows(await currentFiles(store, 'acme', D), { orderBy: 'message_id, source_seq' });
      const expected = await rows(single);

      const killed = await killedCliSplit(lake.root, threshold, point);
      expect([killed.code, killed.signal]).toStrictEqual([null, 'SIGKILL']);
      // it died holding the day: its lease (the single pass's kind, bound to its pid) and its work are left
      const lease = await readLease(lake, lockKey('acme', D));
      const dead = lease?.body.run_id as string;
      expect([lease?.body.pid, lease?.body.across_processes]).toStrictEqual([killed.pid, undefined]);
      const work = (await listAll(lake, splitWorkPrefix('acme', D, dead))).map((o) => o.key);
      expect(work.length).toBeGreaterThan(0);
      const strays = (await listAll(lake, 'analytics/messages/tenant_id=')).map((o) => o.key);
      expect(strays.every((k) => k.includes(`-${dead}-`))).toBe(true);
      expect(strays.length).toBe(point === 'reduce' ? 1 : 0);

      // status counts the dead split's work and says which day (its lease holder is gone)
      const status = await lakeStatus(lake, { tenants: ['acme'], dates: [D], now: Date.now() });
      expect(status.abandoned_splits?.map((a) => [a.tenant_id, a.dt, a.split_id, a.objects, a.bytes > 0])).toStrictEqual([
        ['acme', D, dead, work.length, true],
      ]);
      expect(statusTable(status)).toContain('(split work no live run holds: vacuum removes it after the retention)');

      // the next run, at once (the lease has not lapsed): the dead holder is taken over, the day compacted exactly
      const summary = await runCompaction({
        store: lake,
        config: loadConfig({
          DATA_DIR: lake.root,
          TEMP_DIR: fixture.path,
          TENANT_ID: 'acme',
          DUCKDB_THREADS: '1',
          DUCKDB_MEMORY_LIMIT: '512MB',
          SPLIT_THRESHOLD_BYTES: String(threshold),
        }),
        date: D,
      });
      expect(summary.results.map((r) => [r.status, r.rowsWritten, r.error ?? null])).toStrictEqual([['compacted', 8, null]]);
      expect((await readManifest(lake, 'acme', D))?.split).toStrictEqual({ ranges: 2, buckets: 2 });
      expect(await rows(lake)).toStrictEqual(expected);
      expect(await lake.head(lockKey('acme', D))).toBeUndefined();

      // vacuum past the retention removes exactly the dead split's work and the part it placed; the rows stay
      const vacuumed = await vacuumLake(
        { store: lake, db: fixture.db, workDirectory: join(fixture.path, `vacuum-${++n}`) },
        { now: Date.now() + 8 * 86_400_000 },
      );
      expect(vacuumed.deleted.sort()).toStrictEqual([...work, ...strays].sort());
      expect(await listAll(lake, 'compaction-work/')).toStrictEqual([]);
      expect((await lakeStatus(lake, { tenants: ['acme'], dates: [D], now: Date.now() })).abandoned_splits).toBeUndefined();
      expect(await rows(lake)).toStrictEqual(expected);
    },
    60_000,
  );
});
