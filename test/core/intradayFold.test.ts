import { cp, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StagedRecord } from '../../src/core/schema/messageSchema.js';
import { STAGING_ROOT, stagingKey, TOMBSTONE_ROOT } from '../../src/core/staging/layout.js';
import { gzipNdjson } from '../../src/core/staging/ndjson.js';
import type { CompactionDeps, CompactionPhase } from '../../src/engine/compactPartition.js';
import { compactTenants } from '../../src/engine/compactTenants.js';
import { readManifest } from '../../src/lake/manifest.js';
import { openDuckDb } from '../../src/ports/duckdb/openDuckDb.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { listAll } from '../../src/ports/store/ObjectStore.js';
import { stagedRecord } from '../kit/factories.js';
import { readPartition } from '../kit/pipeline.js';
import { readParquetRows } from '../kit/readParquet.js';
import { tempDir } from '../kit/tempDir.js';

const DATE = '2025-08-11';
/** 14:00 JST on DATE: an intraday run's clock (DATE is today and open). */
const AFTERNOON = Date.parse(`${DATE}T14:00:00+09:00`);

let dir: Awaited<ReturnType<typeof tempDir>>;
let db: DuckDBInstance;
let lakes = 0;

beforeAll(async () => {
  dir = await tempDir('makoto-lake-intraday-fold-');
  db = await openDuckDb({ memoryLimit: '512MB', threads: 2, workDirectory: join(dir.path, 'duckdb') });
});
afterAll(async () => {
  db.closeSync();
  await dir.cleanup();
});

const newStore = () => new LocalStore(join(dir.path, `lake-${++lakes}`));
const depsOf = (store: LocalStore, extra: Partial<CompactionDeps> = {}): CompactionDeps => ({
  store,
  db,
  workDirectory: join(dir.path, `work-${lakes}`),
  now: () => AFTERNOON,
  ...extra,
});

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
  const rows = (await readPartition(store, tenant, DATE, join(dir.path, 'read'))).sort((a, b) =>
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
});
