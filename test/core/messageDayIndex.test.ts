import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestBatch } from '../../src/capture/ingest/ingestBatch.js';
import { cosmosDocumentChanges } from '../../src/capture/ingest/sources.js';
import { PENDING_DELETES_ROOT, stagingPrefix, stagingTenantPrefix } from '../../src/core/staging/layout.js';
import { gzipNdjson } from '../../src/core/staging/ndjson.js';
import { type CompactionDeps, compactPartition } from '../../src/engine/compactPartition.js';
import { planCompaction } from '../../src/lake/lateData.js';
import { type PlacedDeletes, SEARCH_OVERLAP_MS } from '../../src/lake/pendingDeletes.js';
import { DeltaTable, partitionFiles } from '../../src/lake/table/deltaTable.js';
import { openDuckDb } from '../../src/ports/duckdb/openDuckDb.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { getBytes, listAll, type ObjectStore } from '../../src/ports/store/ObjectStore.js';
import { S3Store } from '../../stores/s3/S3Store.js';
import { type S3rver, startS3rver } from '../aws/support/localAws.js';
import { CountingStore } from '../kit/CountingStore.js';
import { cosmosDocument } from '../kit/factories.js';
import { readPartition } from '../kit/pipeline.js';
import { tempDir } from '../kit/tempDir.js';

const D1 = '2025-08-11';
const D2 = '2025-08-12';
const D3 = '2025-08-13';
const NOW = Date.parse('2025-08-14T05:00:00.000Z');

let dir: Awaited<ReturnType<typeof tempDir>>;
let db: DuckDBInstance;
let s3: S3rver;
let n = 0;

beforeAll(async () => {
  dir = await tempDir('makoto-lake-day-index-');
  db = await openDuckDb({ memoryLimit: '512MB', threads: 2, workDirectory: join(dir.path, 'duckdb') });
  s3 = await startS3rver();
  await s3.createBucket('lake');
});
afterAll(async () => {
  db.closeSync();
  await s3?.stop();
  await dir.cleanup();
});

/** A message as the Cosmos change feed (latest version) delivers it, created at 10:00 JST of `date`. */
const created = (lsn: number, id: string, date: string) =>
  cosmosDocument(lsn, { id, content: `text of ${id}`, createdAt: `${date}T01:00:00.000Z` });

/** A delete as the all-versions-and-deletes feed documents it: metadata only (id, partition key, position). */
const metadataOnlyDelete = (lsn: number, id: string) => ({
  metadata: { operationType: 'delete', lsn, crts: 1755100000, id, partitionKey: { tenantId: 'acme' } },
});

async function deliver(store: ObjectStore, documents: unknown[]) {
  const { changes, batchId } = cosmosDocumentChanges(documents);
  return { batchId, result: await ingestBatch(store, changes, { source: 'cosmos', batchId, now: NOW }) };
}

function lake(store: ObjectStore) {
  const deps = (): CompactionDeps => ({ store, db, workDirectory: join(dir.path, `work-${++n}`) });
  return {
    compact: async (...dates: string[]) => {
      for (const date of dates) expect((await compactPartition(deps(), 'acme', date)).status).toBe('compacted');
    },
    rows: async (date: string) =>
      (await readPartition(store, 'acme', date, join(dir.path, `read-${++n}`))).map((r) => [r.message_id, r.source_seq]),
    expireStaging: async () => {
      for (const o of await listAll(store, stagingTenantPrefix('acme'))) await store.delete(o.key);
    },
    pending: async () => {
      const out: Record<string, unknown>[] = [];
      for (const o of await listAll(store, PENDING_DELETES_ROOT)) {
        for (const line of gunzipSync(await getBytes(store, o.key))
          .toString('utf8')
          .trim()
          .split('\n'))
          out.push(JSON.parse(line));
      }
      return out;
    },
    plan: async (counting: ObjectStore = store) => {
      const placed: PlacedDeletes[] = [];
      const jobs = await planCompaction(counting, ['acme'], {
        placement: { db, workDirectory: dir.path },
        onPlaced: (_tenant, p) => placed.push(p),
      });
      return { jobs: jobs.map((j) => [j.date, j.reason.replace(/run \S+/, 'run R')]), placed };
    },
  };
}

/**
 * m1, m2 and m4 on D1, m3 on D2, compacted, their staging expired. Then the feed delivers an edit that moves
 * m4 to D2 (with its previous image: not compacted yet when its delete arrives) and deletes that name only
 * the message id: m1's (its day is found in the table), m4's (found in D1 tonight, in D2 once the move is
 * compacted) and ghost's (a message the table does not hold yet).
 */
async function deletesAfterExpiry(store: ObjectStore) {
  const { compact, rows, expireStaging, pending, plan } = lake(store);
  await deliver(store, [created(10, 'm1', D1), created(11, 'm2', D1), created(12, 'm3', D2), created(13, 'm4', D1)]);
  await compact(D1, D2);
  await expireStaging();
  const m4 = (date: string) => ({ id: 'm4', tenantId: 'acme', content: 'text of m4', createdAt: `${date}T01:00:00.000Z` });
  await deliver(store, [{ current: m4(D2), previous: m4(D1), metadata: { operationType: 'replace', lsn: 60 } }]);

  const deletes = [metadataOnlyDelete(70, 'm1'), metadataOnlyDelete(71, 'ghost'), metadataOnlyDelete(72, 'm4')];
  const { batchId, result } = await deliver(store, deletes);
  const pendingKey = `${PENDING_DELETES_ROOT}tenant_id=acme/${batchId}_70_72.ndjson.gz`;
  expect([result.staged, result.waiting, result.quarantined, result.written.map((w) => [w.key, w.records])]).toStrictEqual([
    3,
    3,
    0,
    [[pendingKey, 3]],
  ]);

  // night 1: m1 and m4 are placed in D1 (where the table holds them), ghost waits
  const counting = new CountingStore(store);
  const first = await plan(counting);
  const snapshot1 = await new DeltaTable(store, {}).snapshot();
  const d1Part = partitionFiles(snapshot1, 'acme', D1)[0];
  expect(first.jobs).toStrictEqual([
    [D1, '2 staging objects newer than run R'],
    [D2, '1 staging object newer than run R'],
  ]);
  const placedKey = (await listAll(store, stagingPrefix('acme', D1))).find((o) => o.key.includes('-placed-'))?.key;
  expect(placedKey).toMatch(
    new RegExp(`^staging/messages/tenant_id=acme/dt=${D1}/${batchId}_70_72-placed-[0-9a-f]{12}\\.ndjson\\.gz$`),
  );
  expect(first.placed).toStrictEqual([
    {
      placed: 2,
      waiting: 1,
      settling: 2,
      done: 0,
      staged: [placedKey],
      unreadable: [],
      raced: 0,
      // D2's file is pruned by its message_id min/max (m3..m3); D1's (m1..m4) may hold them and is read
      lookup: { files: 2, pruned: 1, read: 1, bytesRead: d1Part?.size },
    },
  ]);
  const { operations, bytesRead } = counting.counts();
  // the snapshot (LIST of the log, _last_checkpoint, 2 commits), the pending LIST, the pending object, the D1
  // part; the planner's own LIST of staging, its cache, the run manifests of D1 and D2; PUTs: the placed
  // object, the rewritten pending object (not the planner's cache: both days are planned, and their
  // compactions replace the run manifests an entry would name)
  expect(operations).toStrictEqual({ LIST: 3, HEAD: 0, GET: 1 + 2 + 1 + 1 + 1 + 2, PUT: 2, DELETE: 0 });
  expect(bytesRead).toBeGreaterThan(d1Part?.size ?? 0);
  const line = (id: string, seq: string, kept: Record<string, unknown>) => ({
    tenant_id: 'acme',
    message_id: id,
    conversation_id: null,
    sender_id: null,
    role: null,
    content: null,
    updated_at: null,
    attributes: '{}',
    source: 'cosmos',
    source_seq: seq,
    ingested_at: NOW,
    op: 'delete',
    ...kept,
    checked_version: 1,
    checked_at: snapshot1.timestamp,
  });
  const placedIn = (id: string) =>
    `placed in ${D1} (version 1; 1 of 2 files read); kept until a later search finds message "${id}" in no other day`;
  expect(await pending()).toStrictEqual([
    line('m1', '70', { placed_in: [D1], waiting: placedIn('m1') }),
    line('ghost', '71', {
      waiting:
        'message "ghost" is in no data file of the table (version 1; 1 of 2 files read): it is placed once a compaction publishes it',
    }),
    line('m4', '72', { placed_in: [D1], waiting: placedIn('m4') }),
  ]);

  // the nightly run compacts both days: m1 is gone, m4 has left D1 and is published in D2 by its move
  await compact(D1, D2);
  expect(await rows(D1)).toStrictEqual([['m2', '11']]);
  expect(await rows(D2)).toStrictEqual([
    ['m3', '12'],
    ['m4', '60'],
  ]);

  // ghost is captured later (a replay of its creation, older than its delete) and compacted on D3
  await deliver(store, [created(5, 'ghost', D3)]);
  await compact(D3);
  expect(await rows(D3)).toStrictEqual([['ghost', '5']]);

  // night 2: m4's delete follows it to D2, ghost's is placed in D3, m1's is done
  const second = await plan();
  expect(second.jobs).toStrictEqual([
    [D2, '1 staging object newer than run R'],
    [D3, '1 staging object newer than run R'],
  ]);
  expect(second.placed.map((p) => [p.placed, p.waiting, p.settling, p.done, p.staged.length])).toStrictEqual([[2, 0, 2, 1, 2]]);
  await compact(D2, D3);
  expect([await rows(D1), await rows(D2), await rows(D3)]).toStrictEqual([[['m2', '11']], [['m3', '12']], []]);

  // night 3: nothing new anywhere; the pending deletes are done and gone
  const third = await plan();
  expect([third.jobs, third.placed.map((p) => [p.placed, p.waiting, p.settling, p.done])]).toStrictEqual([[], [[0, 0, 0, 2]]]);
  expect(await pending()).toStrictEqual([]);
  expect([await rows(D1), await rows(D2), await rows(D3)]).toStrictEqual([[['m2', '11']], [['m3', '12']], []]);
}

describe('deletes that name no day (Cosmos metadata-only deletes)', () => {
  it('are placed in the day the table holds the message in, after its staging expired (local store)', async () => {
    await deletesAfterExpiry(new LocalStore(join(dir.path, 'local')));
  });

  it('are placed the same way on S3 (s3rver through the conditional proxy)', async () => {
    await deletesAfterExpiry(new S3Store({ bucket: 'lake', client: s3.client() }));
  });

  it('search again only the files written since their last search; an unreadable pending object is left as it is', async () => {
    const store = new LocalStore(join(dir.path, 'incremental'));
    const { compact, plan } = lake(store);
    await deliver(store, [created(10, 'm1', D1)]);
    await compact(D1);
    const part = partitionFiles(await new DeltaTable(store, {}).snapshot(), 'acme', D1)[0];
    const waitingLine = (checkedAt: number) => ({
      tenant_id: 'acme',
      message_id: 'm1',
      conversation_id: null,
      sender_id: null,
      role: null,
      content: null,
      updated_at: null,
      attributes: '{}',
      source: 'cosmos',
      source_seq: '70',
      ingested_at: NOW,
      op: 'delete',
      waiting: 'searched before',
      checked_version: 0,
      checked_at: checkedAt,
    });
    const key = `${PENDING_DELETES_ROOT}tenant_id=acme/cosmos-old_70_70.ndjson.gz`;
    const garbage = `${PENDING_DELETES_ROOT}tenant_id=acme/cosmos-bad_1_1.ndjson.gz`;
    await store.putBytes(garbage, 'not gzip');
    // searched a day and a minute after the part was written: the part is older than the search's overlap
    await store.putBytes(key, gzipNdjson([waitingLine((part?.modificationTime ?? 0) + SEARCH_OVERLAP_MS + 60_000)]));
    const skipped = await plan();
    expect(skipped.placed.map((p) => [p.placed, p.waiting, p.unreadable, p.lookup])).toStrictEqual([
      [0, 1, [garbage], { files: 0, pruned: 0, read: 0, bytesRead: 0 }],
    ]);
    expect(skipped.jobs).toStrictEqual([]);

    // searched within the overlap: the part is read again, and the delete is placed
    await store.putBytes(key, gzipNdjson([waitingLine((part?.modificationTime ?? 0) + SEARCH_OVERLAP_MS - 60_000)]));
    const found = await plan();
    expect(found.placed.map((p) => [p.placed, p.waiting, p.unreadable, p.lookup])).toStrictEqual([
      [1, 0, [garbage], { files: 1, pruned: 0, read: 1, bytesRead: part?.size }],
    ]);
    expect(found.jobs).toStrictEqual([[D1, '1 staging object newer than run R']]);
    await compact(D1);
    expect(await lake(store).rows(D1)).toStrictEqual([]);
    expect((await listAll(store, PENDING_DELETES_ROOT)).map((o) => o.key)).toStrictEqual([garbage, key]);
    const [kept] = gunzipSync(await getBytes(store, key))
      .toString('utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect([kept.placed_in, kept.checked_version]).toStrictEqual([[D1], 0]);
  });
});
