import { cp, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { StagedRecord } from '../../src/core/schema/messageSchema.js';
import { ANALYTICS_ROOT, STAGING_ROOT, stagingKey, TOMBSTONE_ROOT, tombstonePrefix } from '../../src/core/staging/layout.js';
import { gzipNdjson } from '../../src/core/staging/ndjson.js';
import type { CompactionDeps, CompactionPhase } from '../../src/engine/compactPartition.js';
import { compactTenants } from '../../src/engine/compactTenants.js';
import { MAX_KEPT_PARTS } from '../../src/engine/mergePartition.js';
import { vacuumLake } from '../../src/lake/lakeTable.js';
import { readManifest } from '../../src/lake/manifest.js';
import { DeltaTable, partitionFiles, TAG_MANIFEST, tableKey } from '../../src/lake/table/deltaTable.js';
import type { LocalStore } from '../../src/ports/store/LocalStore.js';
import { getBytes, listAll, type ObjectStore } from '../../src/ports/store/ObjectStore.js';
import { CountingStore } from '../../tools/CountingStore.js';
import { duckDbFixture, lakesIn } from '../kit/duckDbFixture.js';
import { stagedRecord } from '../kit/factories.js';
import { readPartition } from '../kit/pipeline.js';
import { readParquetRows } from '../kit/readParquet.js';

const DATE = '2025-08-11';
/** 14:00 JST on DATE: an intraday run's clock (DATE is today and open). */
const AFTERNOON = Date.parse(`${DATE}T14:00:00+09:00`);

const fixture = duckDbFixture('makoto-lake-intraday-fold-');
const lakes = lakesIn(fixture);
const { newStore } = lakes;
const depsOf = (store: ObjectStore, extra: Partial<CompactionDeps> = {}) =>
  lakes.depsOf(store, { now: () => AFTERNOON, ...extra });

let objects = 0;
/** One staging object of `tenant` on DATE. */
async function stage(store: LocalStore, tenant: string, records: Partial<StagedRecord>[]): Promise<void> {
  const body = gzipNdjson(
    records.map((r) =>
      stagedRecord({
        tenant_id: tenant,
        dt: DATE,
        created_at: Date.parse(`${DATE}T01:00:00Z`),
        ingested_at: Date.parse(`${DATE}T01:00:05Z`),
        ...r,
      }),
    ),
  );
  await store.putBytes(stagingKey(tenant, DATE, `batch-${String(++objects).padStart(4, '0')}.ndjson.gz`), body);
}

/** An intraday run (in-process, as `compact --today` runs it): each result's tenant, status, objects read and rows. */
async function intraday(deps: CompactionDeps) {
  const summary = await compactTenants(deps, DATE, { tenants: 'all', concurrency: 2, intraday: true });
  return summary.results.map((r) => [r.tenant, r.status, r.inputs, r.rowsWritten]).sort();
}

/** A full re-fold of everything the lake's staging holds, in a fresh lake: what the nightly run would publish. */
async function fullRefold(store: LocalStore) {
  const fresh = newStore();
  await mkdir(fresh.root, { recursive: true });
  await cp(join(store.root, STAGING_ROOT), join(fresh.root, STAGING_ROOT), { recursive: true });
  await compactTenants(depsOf(fresh), DATE, { tenants: 'all', concurrency: 2 });
  return fresh;
}

/** The partition's rows (every column) and its remembered deletes, as a reader and the next merge see them. */
async function published(store: LocalStore, tenant: string) {
  const rows = (await readPartition(store, tenant, DATE, join(fixture.path, 'read'))).sort((a, b) =>
    String(a.message_id).localeCompare(String(b.message_id)),
  );
  const manifest = await readManifest(store, tenant, DATE);
  const deletesKey = manifest?.tombstones?.key;
  const deletes = deletesKey ? await readParquetRows(join(store.root, deletesKey)) : [];
  return { rows, deletes: deletes.map((d) => [d.message_id, d.source_seq, d.ingested_at]).sort() };
}

const contents = (rows: readonly Record<string, unknown>[]) => rows.map((r) => [r.message_id, r.content]);

describe('an intraday run folds in only the staging its partition has not folded in', () => {
  it('reads only the new objects, and publishes exactly what a full re-fold does: a late edit, a delete, a re-delivery, TTL', async () => {
    const store = newStore();
    await stage(store, 'acme', [
      { message_id: 'm1', content: 'first', source_seq: '10' },
      { message_id: 'm2', content: 'to be deleted later', source_seq: '11' },
      { message_id: 'm3', content: 'deleted at once', source_seq: '12' },
    ]);
    await stage(store, 'acme', [
      { message_id: 'm3', op: 'delete', content: null, source_seq: '13' },
      { message_id: 'm4', content: 'expires', source_seq: '14' },
    ]);
    await stage(store, 'globex', [{ message_id: 'g1', content: 'hello', source_seq: '5' }]);
    expect(await intraday(depsOf(store))).toStrictEqual([
      ['acme', 'compacted', 2, 3],
      ['globex', 'compacted', 1, 1],
    ]);

    // an hour later: a late edit of m1, a delete of m2, a re-delivery of m4's first version, a TTL expiry of
    // m4 as its latest version, and a new message; globex gains nothing
    await stage(store, 'acme', [
      { message_id: 'm1', content: 'edited', source_seq: '20', ingested_at: Date.parse(`${DATE}T04:00:00Z`) },
      { message_id: 'm2', op: 'delete', content: null, source_seq: '21' },
      { message_id: 'm4', content: 'expires', source_seq: '14', ingested_at: Date.parse(`${DATE}T04:00:01Z`) },
      { message_id: 'm5', content: 'new', source_seq: '22' },
    ]);
    await stage(store, 'acme', [{ message_id: 'm4', op: 'expire', content: 'expires', source_seq: '23' }]);
    expect(await intraday(depsOf(store))).toStrictEqual([['acme', 'compacted', 2, 3]]);

    const manifest = await readManifest(store, 'acme', DATE);
    expect({
      inputs: manifest?.inputs.length,
      carried: manifest?.inputs_carried,
      rowsRead: manifest?.rows_read,
      rowsCarried: manifest?.rows_carried,
      deletesRemembered: manifest?.deletes_remembered,
      deletesApplied: manifest?.deletes_applied,
    }).toStrictEqual({ inputs: 4, carried: 2, rowsRead: 5, rowsCarried: 3, deletesRemembered: 1, deletesApplied: 2 });
    // the planner sees every object as folded in: the next intraday run has nothing to do
    expect(await intraday(depsOf(store))).toStrictEqual([]);

    const incremental = await published(store, 'acme');
    expect(contents(incremental.rows)).toStrictEqual([
      ['m1', 'edited'],
      ['m4', 'expires'],
      ['m5', 'new'],
    ]);
    expect(incremental.deletes.map(([id, seq]) => [id, seq])).toStrictEqual([
      ['m2', '21'],
      ['m3', '13'],
    ]);
    const full = await fullRefold(store);
    expect(incremental).toStrictEqual(await published(full, 'acme'));
    expect(await published(store, 'globex')).toStrictEqual(await published(full, 'globex'));
  }, 120_000);

  it('a run that stopped before its commit leaves the next run to fold in everything not committed', async () => {
    const store = newStore();
    await stage(store, 'acme', [
      { message_id: 'm1', content: 'first', source_seq: '10' },
      { message_id: 'm2', content: 'second', source_seq: '11' },
    ]);
    expect(await intraday(depsOf(store))).toStrictEqual([['acme', 'compacted', 1, 2]]);
    await stage(store, 'acme', [{ message_id: 'm1', content: 'edited', source_seq: '20' }]);
    const crash = async (phase: CompactionPhase) => {
      if (phase === 'committing') throw new Error('killed before the commit');
    };
    expect(await intraday(depsOf(store, { onPhase: crash }))).toStrictEqual([['acme', 'failed', 0, 0]]);
    await stage(store, 'acme', [
      { message_id: 'm2', op: 'delete', content: null, source_seq: '21' },
      { message_id: 'm3', content: 'third', source_seq: '22' },
    ]);
    expect(await intraday(depsOf(store))).toStrictEqual([['acme', 'compacted', 2, 2]]);
    const incremental = await published(store, 'acme');
    expect(contents(incremental.rows)).toStrictEqual([
      ['m1', 'edited'],
      ['m3', 'third'],
    ]);
    expect(incremental).toStrictEqual(await published(await fullRefold(store), 'acme'));
  }, 120_000);

  it('reads the whole day when the partition holds a backfilled version or quarantined lines', async () => {
    const store = newStore();
    const backfillAt = Date.parse(`${DATE}T03:00:00Z`);
    await stage(store, 'acme', [{ message_id: 'm1', content: 'captured', source_seq: '10' }]);
    await stage(store, 'acme', [{ message_id: 'm1', content: 'backfilled', source_seq: '0', ingested_at: backfillAt }]);
    await stage(store, 'bad', [
      { message_id: 'b1', content: 'ok', source_seq: '10' },
      { message_id: 'b0', dt: '2025-08-12', source_seq: '9' },
    ]);
    expect(await intraday(depsOf(store))).toStrictEqual([
      ['acme', 'compacted', 2, 1],
      ['bad', 'compacted', 1, 1],
    ]);
    // an older feed position delivered late, captured after the backfill: it weighs by the message's latest
    // captured version (seq 10, before the backfill), which only the whole day's staging still holds
    await stage(store, 'acme', [
      { message_id: 'm1', content: 'old position', source_seq: '5', ingested_at: Date.parse(`${DATE}T05:00:00Z`) },
    ]);
    await stage(store, 'bad', [{ message_id: 'b2', content: 'more', source_seq: '11' }]);
    expect(await intraday(depsOf(store))).toStrictEqual([
      ['acme', 'compacted', 3, 1],
      ['bad', 'compacted', 2, 2],
    ]);
    const acme = await published(store, 'acme');
    expect(contents(acme.rows)).toStrictEqual([['m1', 'backfilled']]);
    const full = await fullRefold(store);
    expect(acme).toStrictEqual(await published(full, 'acme'));
    expect(await published(store, 'bad')).toStrictEqual(await published(full, 'bad'));
    // the re-fold quarantined the refused line again: the current version names it
    expect((await readManifest(store, 'bad', DATE))?.rows_rejected).toBe(1);
    expect((await listAll(store, TOMBSTONE_ROOT)).length).toBe(0);
  }, 120_000);

  it('names the remembered-deletes file it read when its deletes are unchanged; vacuum keeps that file', async () => {
    const store = newStore();
    await stage(store, 'acme', [
      { message_id: 'm1', content: 'first', source_seq: '10' },
      { message_id: 'm2', content: 'second', source_seq: '11' },
      { message_id: 'm3', content: 'third', source_seq: '12' },
      { message_id: 'm3', op: 'delete', content: null, source_seq: '13' },
    ]);
    expect(await intraday(depsOf(store))).toStrictEqual([['acme', 'compacted', 1, 2]]);
    const first = (await readManifest(store, 'acme', DATE))?.tombstones;
    const tombstoneFiles = async () => (await listAll(store, tombstonePrefix('acme', DATE))).map((o) => o.key);
    expect(await tombstoneFiles()).toStrictEqual([first?.key]);

    // an edit and a new message, no delete: the version names the same file (no new copy), rows as a full re-fold
    await stage(store, 'acme', [
      { message_id: 'm1', content: 'edited', source_seq: '20' },
      { message_id: 'm4', content: 'fourth', source_seq: '21' },
    ]);
    expect(await intraday(depsOf(store))).toStrictEqual([['acme', 'compacted', 1, 3]]);
    const second = await readManifest(store, 'acme', DATE);
    expect(second?.tombstones).toStrictEqual(first);
    expect([second?.deletes_remembered, second?.deletes_applied, second?.inputs_carried]).toStrictEqual([1, 1, 1]);
    expect(await tombstoneFiles()).toStrictEqual([first?.key]);
    const kept = await published(store, 'acme');
    expect(kept.deletes.map(([id, seq]) => [id, seq])).toStrictEqual([['m3', '13']]);
    expect(kept).toStrictEqual(await published(await fullRefold(store), 'acme'));

    // a new delete: a new file with both deletes
    await stage(store, 'acme', [{ message_id: 'm2', op: 'delete', content: null, source_seq: '22' }]);
    expect(await intraday(depsOf(store))).toStrictEqual([['acme', 'compacted', 1, 2]]);
    const third = (await readManifest(store, 'acme', DATE))?.tombstones;
    expect(third?.key === first?.key).toBe(false);
    expect(third?.rows).toBe(2);
    expect(await published(store, 'acme')).toStrictEqual(await published(await fullRefold(store), 'acme'));

    // a newer version of a deleted message, and no new delete: a remembered delete is superseded, so a new file
    await stage(store, 'acme', [{ message_id: 'm2', content: 'second, again', source_seq: '23' }]);
    expect(await intraday(depsOf(store))).toStrictEqual([['acme', 'compacted', 1, 3]]);
    const fourth = await readManifest(store, 'acme', DATE);
    expect([fourth?.tombstones?.key === third?.key, fourth?.tombstones?.rows, fourth?.deletes_remembered]).toStrictEqual([
      false,
      1,
      2,
    ]);
    const again = await published(store, 'acme');
    expect(again.deletes.map(([id, seq]) => [id, seq])).toStrictEqual([['m3', '13']]);
    expect(again).toStrictEqual(await published(await fullRefold(store), 'acme'));

    // then an unchanged run again: it names the fourth version's file; a vacuum past the retention keeps the
    // file the current version names, though the run that wrote it is no longer retained
    await stage(store, 'acme', [{ message_id: 'm5', content: 'fifth', source_seq: '24' }]);
    expect(await intraday(depsOf(store))).toStrictEqual([['acme', 'compacted', 1, 4]]);
    const fifth = await readManifest(store, 'acme', DATE);
    expect(fifth?.tombstones).toStrictEqual(fourth?.tombstones);
    const vacuumed = await vacuumLake(
      { store, db: fixture.db, workDirectory: join(fixture.path, 'vacuum') },
      { now: Date.now() + 8 * 86_400_000 },
    );
    expect(vacuumed.deleted.filter((k) => k.startsWith(TOMBSTONE_ROOT)).sort()).toStrictEqual([first?.key, third?.key].sort());
    expect(await tombstoneFiles()).toStrictEqual([fourth?.tombstones?.key]);
    const vacuumedLake = await published(store, 'acme');
    expect(vacuumedLake.deletes).toStrictEqual(again.deletes);
    expect(contents(vacuumedLake.rows)).toStrictEqual([
      ['m1', 'edited'],
      ['m2', 'second, again'],
      ['m4', 'fourth'],
      ['m5', 'fifth'],
    ]);
    expect(vacuumedLake).toStrictEqual(await published(await fullRefold(store), 'acme'));
  }, 120_000);

  it('reads each run manifest once per run, and writes no planner cache for the partitions it compacts', async () => {
    const store = newStore();
    for (const tenant of ['acme', 'globex']) {
      await stage(store, tenant, [
        { message_id: `${tenant}-1`, content: 'first', source_seq: '10' },
        { message_id: `${tenant}-2`, content: 'second', source_seq: '11' },
        { message_id: `${tenant}-2`, op: 'delete', content: null, source_seq: '12' },
      ]);
    }
    expect(await intraday(depsOf(store))).toStrictEqual([
      ['acme', 'compacted', 1, 1],
      ['globex', 'compacted', 1, 1],
    ]);
    // an hour later each tenant gains a message (no delete)
    for (const tenant of ['acme', 'globex']) await stage(store, tenant, [{ message_id: `${tenant}-3`, source_seq: '20' }]);
    const counting = new CountingStore(store);
    expect(await intraday(depsOf(counting))).toStrictEqual([
      ['acme', 'compacted', 1, 2],
      ['globex', 'compacted', 1, 2],
    ]);
    const areas = counting.byArea();
    // the planner's LIST of tenant folders; per tenant: the planner's cache GET and the run manifest GET (the
    // partition's plan reads the planner's copy), the new run manifest PUT and no cache PUT (the compaction
    // replaced the manifest it would name)
    expect(areas['manifests/messages']).toStrictEqual({ LIST: 1, HEAD: 0, GET: 4, PUT: 2, DELETE: 0 });
    // the planner's LIST of tenant folders, then per tenant its one staging LIST (the plan uses the planner's
    // listing) and the GET of the new object
    expect(areas['staging/messages']).toStrictEqual({ LIST: 3, HEAD: 0, GET: 2, PUT: 0, DELETE: 0 });
    // the remembered deletes are unchanged: no new file, the HEAD of the plan only
    expect(areas['tombstones/messages']).toStrictEqual({ LIST: 0, HEAD: 2, GET: 2, PUT: 0, DELETE: 0 });
    for (const tenant of ['acme', 'globex']) {
      expect(await published(store, tenant)).toStrictEqual(await published(await fullRefold(store), tenant));
    }

    // an idle hour: the planner caches the new manifests once, then an idle run reads only the caches
    counting.reset();
    expect(await intraday(depsOf(counting))).toStrictEqual([]);
    expect(counting.byArea()['manifests/messages']).toStrictEqual({ LIST: 1, HEAD: 0, GET: 4, PUT: 2, DELETE: 0 });
    counting.reset();
    expect(await intraday(depsOf(counting))).toStrictEqual([]);
    expect(counting.byArea()['manifests/messages']).toStrictEqual({ LIST: 1, HEAD: 0, GET: 2, PUT: 0, DELETE: 0 });
  }, 120_000);

  it('plans again from a fresh listing when a staging object the planner listed is gone', async () => {
    const store = newStore();
    await stage(store, 'acme', [{ message_id: 'm1', content: 'first', source_seq: '10' }]);
    expect(await intraday(depsOf(store))).toStrictEqual([['acme', 'compacted', 1, 1]]);
    await stage(store, 'acme', [{ message_id: 'm2', content: 'erased', sender_id: 'gone', source_seq: '20' }]);
    await stage(store, 'acme', [{ message_id: 'm3', content: 'third', source_seq: '21' }]);
    const erased = stagingKey('acme', DATE, `batch-${String(objects - 1).padStart(4, '0')}.ndjson.gz`);
    // after the planner listed the day and before the partition is planned, an erasure deletes one object
    const events: [string, unknown][] = [];
    const deps = depsOf(store, {
      onPhase: async (phase) => {
        if (phase === 'locked') await store.delete(erased);
      },
      log: (event, fields) => {
        if (event.startsWith('partition.')) events.push([event, fields.error]);
      },
    });
    expect(await intraday(deps)).toStrictEqual([['acme', 'compacted', 1, 2]]);
    expect(events.map(([event, error]) => [event, String(error).startsWith(`object not found: ${erased}:`)])).toStrictEqual([
      ['partition.relist', true],
      ['partition.compacted', false],
    ]);
    expect(contents((await published(store, 'acme')).rows)).toStrictEqual([
      ['m1', 'first'],
      ['m3', 'third'],
    ]);
    expect(await published(store, 'acme')).toStrictEqual(await published(await fullRefold(store), 'acme'));
  }, 120_000);

  it('adds a part of only the new messages while every published row stays current; an edit, the part limit and the nightly run write one part again', async () => {
    const store = newStore();
    await stage(store, 'acme', [
      { message_id: 'm1', content: 'first', source_seq: '10' },
      { message_id: 'm2', content: 'second', source_seq: '11' },
      { message_id: 'm3', content: 'deleted', source_seq: '12' },
      { message_id: 'm3', op: 'delete', content: null, source_seq: '13' },
    ]);
    expect(await intraday(depsOf(store))).toStrictEqual([['acme', 'compacted', 1, 2]]);
    const [first] = await parts(store);
    const deletes = (await readManifest(store, 'acme', DATE))?.tombstones;

    // new messages only (one delivered twice): the published part stays, a new part holds exactly them
    await stage(store, 'acme', [
      { message_id: 'm4', content: 'fourth', source_seq: '20' },
      { message_id: 'm4', content: 'fourth', source_seq: '20', ingested_at: Date.parse(`${DATE}T02:00:00Z`) },
      { message_id: 'm5', content: 'fifth', source_seq: '21' },
    ]);
    expect(await intraday(depsOf(store))).toStrictEqual([['acme', 'compacted', 1, 4]]);
    const appended = await parts(store);
    expect(appended.map((p) => p.key).filter((k) => k !== first?.key).length).toBe(1);
    expect(appended.find((p) => p.key === first?.key)).toStrictEqual({ ...first, manifest: appended[0]?.manifest });
    const added = appended.find((p) => p.key !== first?.key);
    expect(contents(await readParquetRows(join(store.root, added?.key as string), { orderBy: 'message_id' }))).toStrictEqual([
      ['m4', 'fourth'],
      ['m5', 'fifth'],
    ]);
    const manifest = await readManifest(store, 'acme', DATE);
    expect({
      outputs: manifest?.outputs.map((o) => o.key).sort(),
      rowsWritten: manifest?.rows_written,
      duplicates: manifest?.duplicates_removed,
      tombstones: manifest?.tombstones,
      tags: appended.map((p) => p.manifest),
    }).toStrictEqual({
      outputs: appended.map((p) => p.key).sort(),
      rowsWritten: 4,
      duplicates: 1,
      tombstones: deletes,
      tags: appended.map(() => manifest && `manifests/messages/tenant_id=acme/dt=${DATE}/${manifest.run_id}.json`),
    });
    // the version removes nothing; it names the kept part again (no data change) with the new run's tags
    expect(await lastCommit(store)).toStrictEqual([
      ['add', first?.key, false],
      ['add', added?.key, true],
    ]);
    expect(await published(store, 'acme')).toStrictEqual(await published(await fullRefold(store), 'acme'));

    // an edit of a published message: the fold writes the partition again as one part
    await stage(store, 'acme', [{ message_id: 'm1', content: 'edited', source_seq: '30' }]);
    expect(await intraday(depsOf(store))).toStrictEqual([['acme', 'compacted', 1, 4]]);
    const rewritten = await parts(store);
    expect(rewritten.length).toBe(1);
    expect((await lastCommit(store)).map(([kind, key]) => [kind, key]).sort()).toStrictEqual(
      [...appended.map((p) => ['remove', p.key]), ['add', rewritten[0]?.key]].sort(),
    );
    expect(await published(store, 'acme')).toStrictEqual(await published(await fullRefold(store), 'acme'));

    // new messages every hour: a part each, up to the limit, then one part again
    const counts: number[] = [];
    for (let hour = 0; hour < MAX_KEPT_PARTS; hour++) {
      await stage(store, 'acme', [{ message_id: `h${hour}`, content: `hour ${hour}`, source_seq: String(40 + hour) }]);
      await intraday(depsOf(store));
      counts.push((await parts(store)).length);
    }
    expect(counts).toStrictEqual([...Array.from({ length: MAX_KEPT_PARTS - 1 }, (_, i) => i + 2), 1]);
    await stage(store, 'acme', [{ message_id: 'm6', content: 'sixth', source_seq: '60' }]);
    expect(await intraday(depsOf(store))).toStrictEqual([['acme', 'compacted', 1, 5 + MAX_KEPT_PARTS]]);
    expect((await parts(store)).length).toBe(2);
    const beforeNight = await published(store, 'acme');
    expect(beforeNight).toStrictEqual(await published(await fullRefold(store), 'acme'));

    // the nightly run folds the whole day again: one part, the same rows and remembered deletes
    await compactTenants(depsOf(store), DATE, { tenants: 'all', concurrency: 2 });
    expect((await parts(store)).length).toBe(1);
    expect(await published(store, 'acme')).toStrictEqual(beforeNight);
  }, 120_000);
});

/** The partition's parts in the table's current version: key, size, statistics and the run manifest its tags name. */
async function parts(store: LocalStore) {
  const snapshot = await new DeltaTable(store, {}).snapshot();
  return partitionFiles(snapshot, 'acme', DATE).map((a) => ({
    key: tableKey(a.path),
    size: a.size,
    stats: a.stats,
    manifest: a.tags?.[TAG_MANIFEST],
  }));
}

/** The file actions of the table's latest commit: kind, key, and an add's dataChange. */
async function lastCommit(store: LocalStore) {
  const logs = (await listAll(store, `${ANALYTICS_ROOT}_delta_log/`)).map((o) => o.key).filter((k) => k.endsWith('.json'));
  return (await getBytes(store, logs.sort().at(-1) as string))
    .toString('utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as { add?: { path: string; dataChange: boolean }; remove?: { path: string } })
    .flatMap((a) =>
      a.add ? [['add', tableKey(a.add.path), a.add.dataChange]] : a.remove ? [['remove', tableKey(a.remove.path)]] : [],
    );
}
