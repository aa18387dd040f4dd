import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tableMetadata } from '../../src/lake/lakeTable.js';
import type { AddAction } from '../../src/lake/table/actions.js';
import { DeltaTable, partitionFiles, type TableChange } from '../../src/lake/table/deltaTable.js';
import { CommitConflictError } from '../../src/lake/table/errors.js';
import { vacuum } from '../../src/lake/table/vacuum.js';
import { TransientStoreError } from '../../src/ports/store/errors.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { listAll, type ObjectStore, type PutOptions } from '../../src/ports/store/ObjectStore.js';
import { CountingStore } from '../kit/CountingStore.js';
import { duckDbFixture } from '../kit/duckDbFixture.js';

const fixture = duckDbFixture('makoto-lake-table-', { memoryLimit: '1GB', threads: 1 });

let n = 0;

const T0 = Date.parse('2025-08-12T00:00:00Z');
const freshStore = () => new LocalStore(join(fixture.path, `lake-${++n}`));
const table = (store: ObjectStore, now = () => T0) => new DeltaTable(store, { db: fixture.db, workDirectory: fixture.path, now });

function add(tenant: string, date: string, name: string): AddAction {
  return {
    path: `tenant_id=${tenant}/dt=${date}/${name}.parquet`,
    partitionValues: { tenant_id: tenant, dt: date },
    size: 100,
    modificationTime: T0,
    dataChange: true,
    stats: JSON.stringify({ numRecords: 1 }),
  };
}

/** Replaces a partition's files with `files` (as the compactor's commit does). */
function replace(current: readonly AddAction[], files: readonly AddAction[], tenant: string, date: string): TableChange {
  return {
    partitions: [`tenant_id=${tenant}/dt=${date}`],
    adds: files,
    removes: current.map((f) => ({
      path: f.path,
      deletionTimestamp: T0,
      dataChange: true,
      partitionValues: f.partitionValues,
      size: f.size,
    })),
    txns: [],
    info: {},
  };
}

const paths = (files: readonly AddAction[]) => files.map((f) => f.path);
const metadata = () => tableMetadata(T0);

describe('the Delta table', () => {
  it('commits versions put-if-absent and reads them back: protocol 1/2, the one schema, partitions replaced', async () => {
    const store = freshStore();
    const t = table(store);
    expect(await t.commit(replace([], [add('a', '2025-08-11', 'p1')], 'a', '2025-08-11'), -1, metadata)).toBe(0);
    const v0 = await t.snapshot();
    expect(
      await t.commit(
        replace(partitionFiles(v0, 'a', '2025-08-11'), [add('a', '2025-08-11', 'p2')], 'a', '2025-08-11'),
        0,
        metadata,
      ),
    ).toBe(1);
    const v1 = await table(store).snapshot();
    expect(v1.version).toBe(1);
    expect(v1.protocol).toStrictEqual({ minReaderVersion: 1, minWriterVersion: 2 });
    expect(v1.metadata?.partitionColumns).toStrictEqual(['tenant_id', 'dt']);
    expect(
      JSON.parse(v1.metadata?.schemaString ?? '{}').fields.map((f: { name: string; type: string }) => `${f.name}:${f.type}`),
    ).toStrictEqual([
      'message_id:string',
      'conversation_id:string',
      'sender_id:string',
      'role:string',
      'content:string',
      'created_at:timestamp',
      'updated_at:timestamp',
      'attributes:string',
      'source:string',
      'source_seq:string',
      'ingested_at:timestamp',
      'tenant_id:string',
      'dt:string',
    ]);
    expect(paths([...v1.files.values()])).toStrictEqual(['tenant_id=a/dt=2025-08-11/p2.parquet']);
    expect([...v1.removed.keys()]).toStrictEqual(['tenant_id=a/dt=2025-08-11/p1.parquet']);
    // time travel: version 0 still names the first file
    expect(paths([...(await t.snapshot({ version: 0 })).files.values()])).toStrictEqual(['tenant_id=a/dt=2025-08-11/p1.parquet']);
    expect((await listAll(store, 'analytics/messages/_delta_log/')).map((o) => o.key)).toStrictEqual([
      'analytics/messages/_delta_log/00000000000000000000.json',
      'analytics/messages/_delta_log/00000000000000000001.json',
    ]);
  });

  it('a commit that meets a newer version: retried there on other partitions, a conflict on the same one', async () => {
    const store = freshStore();
    const t = table(store);
    await t.commit(
      replace([], [add('a', '2025-08-11', 'a1'), add('b', '2025-08-11', 'b1')].slice(0, 1), 'a', '2025-08-11'),
      -1,
      metadata,
    );
    const read = await t.snapshot(); // version 0, read by three writers
    expect(
      await table(store).commit(replace([], [add('b', '2025-08-11', 'b1')], 'b', '2025-08-11'), read.version, metadata),
    ).toBe(1);
    // disjoint: lands at version 2
    expect(
      await table(store).commit(replace([], [add('c', '2025-08-11', 'c1')], 'c', '2025-08-11'), read.version, metadata),
    ).toBe(2);
    expect(
      await table(store).commit(
        replace(partitionFiles(read, 'a', '2025-08-11'), [add('a', '2025-08-11', 'a2')], 'a', '2025-08-11'),
        read.version,
        metadata,
      ),
    ).toBe(3);
    // the same partition, planned at version 0 too: a conflict, nothing written
    await expect(
      table(store).commit(
        replace(partitionFiles(read, 'a', '2025-08-11'), [add('a', '2025-08-11', 'a3')], 'a', '2025-08-11'),
        read.version,
        metadata,
      ),
    ).rejects.toSatisfy(
      (e: unknown) =>
        e instanceof CommitConflictError &&
        e.message === 'table version 3 changed partition tenant_id=a/dt=2025-08-11 since this run read it',
    );
    const now = await table(store).snapshot();
    expect(now.version).toBe(3);
    expect(paths([...now.files.values()]).sort()).toStrictEqual([
      'tenant_id=a/dt=2025-08-11/a2.parquet',
      'tenant_id=b/dt=2025-08-11/b1.parquet',
      'tenant_id=c/dt=2025-08-11/c1.parquet',
    ]);
  });

  it('group commit: changes handed over while a version is written share the next one; a conflict rejects only its own', async () => {
    const store = freshStore();
    const counting = new CountingStore(store);
    const t = new DeltaTable(counting, { db: fixture.db, workDirectory: fixture.path, now: () => T0 });
    expect(await t.commit(replace([], [add('a', '2025-08-11', 'a1')], 'a', '2025-08-11'), -1, metadata)).toBe(0);
    const read = await t.snapshot();
    // another writer replaces partition a at version 1, unseen by t
    const other = table(store);
    expect(
      await other.commit(
        replace(partitionFiles(read, 'a', '2025-08-11'), [add('a', '2025-08-11', 'a2')], 'a', '2025-08-11'),
        0,
        metadata,
      ),
    ).toBe(1);
    // four changes, all planned at version 0, handed over at once: the first is written alone (after the
    // unseen version 1), the other three wait and share the next version, except the stale one of partition a
    const settled = await Promise.allSettled([
      t.commit(replace([], [add('b', '2025-08-11', 'b1')], 'b', '2025-08-11'), 0, metadata),
      t.commit(replace([], [add('c', '2025-08-11', 'c1')], 'c', '2025-08-11'), 0, metadata),
      t.commit(replace(partitionFiles(read, 'a', '2025-08-11'), [add('a', '2025-08-11', 'a3')], 'a', '2025-08-11'), 0, metadata),
      t.commit(replace([], [add('d', '2025-08-11', 'd1')], 'd', '2025-08-11'), 0, metadata),
    ]);
    expect(settled.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toStrictEqual([
      2,
      3,
      'table version 1 changed partition tenant_id=a/dt=2025-08-11 since this run read it',
      3,
    ]);
    const log = (await listAll(store, 'analytics/messages/_delta_log/')).map((o) => o.key);
    expect(log.length).toBe(4);
    const v3 = (await readFile(join(store.root, log[3] as string), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(v3.map((a) => Object.keys(a)[0])).toStrictEqual(['commitInfo', 'add', 'add']);
    expect(v3[0].commitInfo.operationParameters).toStrictEqual({
      mode: 'ReplacePartitions',
      partitions: ['tenant_id=c/dt=2025-08-11', 'tenant_id=d/dt=2025-08-11'],
    });
    // bringing t's snapshot forward reads only the version it did not write (1), never its own (2, 3)
    counting.reset();
    const now = await t.snapshot();
    expect([now.version, paths([...now.files.values()]).sort()]).toStrictEqual([
      3,
      [
        'tenant_id=a/dt=2025-08-11/a2.parquet',
        'tenant_id=b/dt=2025-08-11/b1.parquet',
        'tenant_id=c/dt=2025-08-11/c1.parquet',
        'tenant_id=d/dt=2025-08-11/d1.parquet',
      ],
    ]);
    expect(counting.counts().operations).toStrictEqual({ LIST: 1, HEAD: 0, GET: 1, PUT: 0, DELETE: 0 });
    // a fresh reader sees the same version, and a job whose work folder does not exist yet reads a partition
    // from a checkpoint (a fan-out invocation's first snapshot)
    await t.checkpoint(3);
    const job = new DeltaTable(store, { db: fixture.db, workDirectory: join(fixture.path, `fresh-${n}`, 'partitions') });
    const one = await job.partitionSnapshot({ tenant_id: 'c', dt: '2025-08-11' });
    expect([one.version, paths(partitionFiles(one, 'c', '2025-08-11'))]).toStrictEqual([
      3,
      ['tenant_id=c/dt=2025-08-11/c1.parquet'],
    ]);
  });

  it('a listing of the log that raced with commits (a later version seen, an earlier one missed) is listed again, not a broken log', async () => {
    const store = freshStore();
    const t = table(store);
    let files: AddAction[] = [];
    for (let v = 0; v < 4; v++) {
      const next = [add('a', '2025-08-11', `p${v}`)];
      await t.commit(replace(files, next, 'a', '2025-08-11'), v - 1, metadata);
      files = next;
    }
    // a folder read while commits were added returns its entries in hash order: version 2 missed, 3 seen
    const missed = 'analytics/messages/_delta_log/00000000000000000002.json';
    let racing = 1;
    const racingStore: ObjectStore = Object.assign(Object.create(store) as ObjectStore, {
      async *list(prefix: string) {
        const hide = prefix.startsWith('analytics/messages/_delta_log/') && racing-- > 0;
        for await (const o of store.list(prefix)) if (!(hide && o.key === missed)) yield o;
      },
    });
    const read = await table(racingStore).snapshot();
    expect([read.version, paths([...read.files.values()]), racing]).toStrictEqual([
      3,
      ['tenant_id=a/dt=2025-08-11/p3.parquet'],
      -1,
    ]);

    // a version really missing (a broken log) is still reported, after the listings
    await store.delete(missed);
    await expect(table(store).snapshot()).rejects.toThrow('the Delta log jumps from version 1 to 3');
  });

  it('a lost reply on the log write is settled by reading the version back: committed once, reported committed', async () => {
    const store = freshStore();
    let dropped = 0;
    // the write happens, then the reply is lost (the wrapper throws a transient error after it)
    const lossy: ObjectStore = Object.assign(Object.create(store), {
      putBytes: async (key: string, body: Uint8Array | string, options?: PutOptions) => {
        const info = await store.putBytes(key, body, options);
        if (key.endsWith('.json') && key.includes('_delta_log/') && dropped++ < 2)
          throw new TransientStoreError(`connection reset after writing ${key}`);
        return info;
      },
    });
    const t = table(lossy);
    expect(await t.commit(replace([], [add('a', '2025-08-11', 'p1')], 'a', '2025-08-11'), -1, metadata)).toBe(0);
    expect(await t.commit(replace([], [add('b', '2025-08-11', 'p1')], 'b', '2025-08-11'), 0, metadata)).toBe(1);
    expect(dropped).toBe(2);
    const snapshot = await table(store).snapshot();
    expect(snapshot.version).toBe(1);
    expect(paths([...snapshot.files.values()]).sort()).toStrictEqual([
      'tenant_id=a/dt=2025-08-11/p1.parquet',
      'tenant_id=b/dt=2025-08-11/p1.parquet',
    ]);
    expect((await listAll(store, 'analytics/messages/_delta_log/')).length).toBe(2);
  });

  it('writes a checkpoint every 10 commits, and 1,000 commits load from the latest checkpoint plus the commits after it', async () => {
    const store = freshStore();
    const t = table(store);
    let snapshot = await t.snapshot();
    for (let i = 0; i < 1_000; i++) {
      const tenant = `t${i % 50}`;
      const date = '2025-08-11';
      await t.commit(
        replace(partitionFiles(snapshot, tenant, date), [add(tenant, date, `p${i}`)], tenant, date),
        snapshot.version,
        metadata,
      );
      snapshot = await t.snapshot();
    }
    expect(snapshot.version).toBe(999);
    const hint = JSON.parse(await readFile(join(store.root, 'analytics/messages/_delta_log/_last_checkpoint'), 'utf8'));
    // protocol, metaData, the 50 live files and the 941 files removed within the retention
    expect(hint).toStrictEqual({ version: 990, size: 2 + 50 + 941 });
    const log = (await listAll(store, 'analytics/messages/_delta_log/')).map((o) => o.key);
    expect(log.filter((k) => k.endsWith('.checkpoint.parquet')).length).toBe(99);

    const counting = new CountingStore(store);
    const fresh = await table(counting).snapshot();
    expect(fresh.version).toBe(999);
    expect(paths([...fresh.files.values()]).sort()).toStrictEqual(paths([...snapshot.files.values()]).sort());
    expect(fresh.files.size).toBe(50);
    // the hint, the checkpoint, and the 9 commits after it: never the 1,000 commit files
    expect(counting.counts().operations).toStrictEqual({ LIST: 2, HEAD: 0, GET: 1 + 1 + 9, PUT: 0, DELETE: 0 });

    // one partition's view (a fan-out job): the same version and the same files of that partition, from only
    // its rows of the checkpoint
    const one = await table(new CountingStore(store)).partitionSnapshot({ tenant_id: 't7', dt: '2025-08-11' });
    expect([one.version, paths(partitionFiles(one, 't7', '2025-08-11'))]).toStrictEqual([
      999,
      paths(partitionFiles(snapshot, 't7', '2025-08-11')),
    ]);
    expect([...one.files.values()].filter((f) => f.partitionValues.tenant_id !== 't7').length).toBeLessThanOrEqual(9);

    // a cleanup in progress (an erase deleting the versions below its checkpoint) seen without the hint: the
    // first commits listed are not version 0, so the newest checkpoint is found by a listing, not a "jump"
    await store.delete('analytics/messages/_delta_log/_last_checkpoint');
    for (const key of log) {
      const version = Number(/(\d{20})\.json$/.exec(key)?.[1] ?? Number.NaN);
      if (version < 5) await store.delete(key);
    }
    const midway = await table(store).snapshot();
    expect([midway.version, paths([...midway.files.values()]).sort()]).toStrictEqual([
      999,
      paths([...snapshot.files.values()]).sort(),
    ]);

    // the log cleaned up to the checkpoint and its hint lost: the newest checkpoint is found by a listing
    for (const key of log) {
      const version = Number(/(\d{20})\.json$/.exec(key)?.[1] ?? Number.NaN);
      if (version < 990) await store.delete(key);
    }
    await store.delete('analytics/messages/_delta_log/_last_checkpoint');
    const recovered = await table(store).snapshot();
    expect([recovered.version, paths([...recovered.files.values()]).sort()]).toStrictEqual([
      999,
      paths([...snapshot.files.values()]).sort(),
    ]);
  }, 120_000);

  it('vacuum deletes exactly the files no retained version references, older than the retention: a replaced part, a foreign file, a stale remembered-deletes file, abandoned split work', async () => {
    const store = freshStore();
    const t = table(store);
    const write = async (key: string) => store.putBytes(key, 'x');
    for (const name of ['p1', 'p2', 'p3']) await write(`analytics/messages/tenant_id=a/dt=2025-08-11/${name}.parquet`);
    await write('analytics/messages/tenant_id=a/dt=2025-08-11/foreign.parquet');
    await write('analytics/messages/tenant_id=z/dt=2025-08-11/never-committed.parquet');
    await write('tombstones/messages/tenant_id=a/dt=2025-08-11/stale.parquet');
    await write('compaction-work/messages/tenant_id=a/dt=2025-08-11/split-1/range=0/bucket=0/part.parquet');
    await t.commit(replace([], [add('a', '2025-08-11', 'p1')], 'a', '2025-08-11'), -1, metadata);
    await t.commit(
      replace(partitionFiles(await t.snapshot(), 'a', '2025-08-11'), [add('a', '2025-08-11', 'p2')], 'a', '2025-08-11'),
      0,
      metadata,
    );
    const side = { sideRoots: ['tombstones/messages/', 'compaction-work/messages/'] };
    // within the retention nothing goes: the files are younger than 7 days
    expect((await vacuum(store, t, { ...side, dryRun: true })).deleted).toStrictEqual([]);
    const later = Date.now() + 8 * 86_400_000;
    const dry = await vacuum(store, t, { ...side, dryRun: true, now: later });
    expect(dry.deleted).toStrictEqual([
      'analytics/messages/tenant_id=a/dt=2025-08-11/foreign.parquet',
      'analytics/messages/tenant_id=a/dt=2025-08-11/p1.parquet',
      'analytics/messages/tenant_id=a/dt=2025-08-11/p3.parquet',
      'analytics/messages/tenant_id=z/dt=2025-08-11/never-committed.parquet',
      'tombstones/messages/tenant_id=a/dt=2025-08-11/stale.parquet',
      'compaction-work/messages/tenant_id=a/dt=2025-08-11/split-1/range=0/bucket=0/part.parquet',
    ]);
    expect((await listAll(store, 'analytics/messages/tenant_id=a/')).length).toBe(4); // a dry run deletes nothing
    // p1 was removed at T0 (long before `later`): no retained version references it any more
    const done = await vacuum(store, t, { ...side, now: later });
    expect(done.deleted).toStrictEqual(dry.deleted);
    expect((await listAll(store, 'analytics/messages/tenant_id=')).map((o) => o.key)).toStrictEqual([
      'analytics/messages/tenant_id=a/dt=2025-08-11/p2.parquet',
    ]);
    expect(await listAll(store, 'tombstones/')).toStrictEqual([]);
    expect(await listAll(store, 'compaction-work/')).toStrictEqual([]);
  });
});

interface Expected {
  version: number;
  files: string[];
  versions?: Record<string, { files: string[] }>;
}

describe('reading public Delta tables (delta-rs reference tables, test/fixtures/delta)', async () => {
  const root = join(import.meta.dirname, '../fixtures/delta');
  const expected = JSON.parse(await readFile(join(root, 'expected.json'), 'utf8')) as Record<string, Expected>;
  for (const [name, want] of Object.entries(expected)) {
    it(`${name}: version ${want.version} and its files`, async () => {
      const reference = new DeltaTable(new LocalStore(root), { db: fixture.db, workDirectory: fixture.path, root: `${name}/` });
      const snapshot = await reference.snapshot();
      expect(snapshot.version).toBe(want.version);
      expect([...snapshot.files.values()].map((f) => decodeURIComponent(f.path)).sort()).toStrictEqual([...want.files].sort());
      for (const [version, old] of Object.entries(want.versions ?? {})) {
        const past = await reference.snapshot({ version: Number(version) });
        expect([...past.files.values()].map((f) => decodeURIComponent(f.path)).sort()).toStrictEqual([...old.files].sort());
      }
    });
  }
});
