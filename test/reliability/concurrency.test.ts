import { hostname } from 'node:os';
import { join } from 'node:path';
import type { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestBatch } from '../../src/capture/ingest/ingestBatch.js';
import { dynamodbEventChanges } from '../../src/capture/ingest/sources.js';
import { analyticsPrefix, lockKey } from '../../src/core/staging/layout.js';
import { compactPartition } from '../../src/engine/compactPartition.js';
import { vacuumLake } from '../../src/lake/lakeTable.js';
import { acquireLease, DEFAULT_LEASE_MS } from '../../src/lake/partitionLease.js';
import { openDuckDb } from '../../src/ports/duckdb/openDuckDb.js';
import { TransientStoreError } from '../../src/ports/store/errors.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { listAll, type ObjectInfo, type ObjectStore, type PutOptions } from '../../src/ports/store/ObjectStore.js';
import { BlobStore } from '../../stores/blob/BlobStore.js';
import { startAzurite } from '../../tools/azureServers.js';
import type { RunningServer } from '../../tools/servers.js';
import { runConcurrentCompactions, runStalledCommit, type StalledCommitOutcome } from '../kit/concurrentRuns.js';
import { chatItem, dynamodbRecord } from '../kit/factories.js';
import { plantLease } from '../kit/leases.js';
import { readPartition } from '../kit/pipeline.js';
import { RetryingStore } from '../kit/RetryingStore.js';
import { tempDir } from '../kit/tempDir.js';

const DATE = '2025-08-11';
const NOW = Date.parse('2025-08-11T17:00:00Z');

let dir: Awaited<ReturnType<typeof tempDir>>;
let db: DuckDBInstance;
let azurite: RunningServer & { connectionString: string };

beforeAll(async () => {
  dir = await tempDir('makoto-lake-concurrency-');
  db = await openDuckDb({ memoryLimit: '1GB', threads: 2, workDirectory: join(dir.path, 'duckdb') });
  azurite = await startAzurite();
});
afterAll(async () => {
  db?.closeSync();
  await azurite?.stop();
  await dir?.cleanup();
});

let n = 0;
const stores: Record<string, () => ObjectStore> = {
  LocalStore: () => new LocalStore(join(dir.path, `data-${++n}`)),
  'BlobStore on Azurite': () => new BlobStore({ connectionString: azurite.connectionString, containerName: `lease${++n}` }),
};

async function stage(store: ObjectStore, tenant: string): Promise<void> {
  const { changes, batchId } = dynamodbEventChanges({
    Records: [
      dynamodbRecord({ seq: 1, item: chatItem({ tenantId: tenant, messageId: 'm1', content: 'one' }) }),
      dynamodbRecord({ seq: 2, item: chatItem({ tenantId: tenant, messageId: 'm2', content: 'two' }) }),
      dynamodbRecord({ seq: 3, item: chatItem({ tenantId: tenant, messageId: 'm1', content: 'one, edited' }) }),
    ],
  });
  const result = await ingestBatch(store, changes, { source: 'dynamodb', batchId, now: NOW - 3_600_000 });
  expect(result.failed).toStrictEqual([]);
}

const contents = async (store: ObjectStore, tenant: string) =>
  (await readPartition(store, tenant, DATE, join(dir.path, `read-${++n}`))).map((r) => [r.message_id, r.content]);

describe.each(Object.keys(stores))('two compactions of one tenant-day on %s', (kind) => {
  const make = stores[kind] as () => ObjectStore;

  it('exactly one compacts; the other gets status locked naming the run that holds the partition', async () => {
    const store = make();
    await stage(store, 'acme');
    const { first, second, leaseSeen } = await runConcurrentCompactions(store, db, join(dir.path, `w-${++n}`), 'acme', DATE, NOW);
    expect(leaseSeen).toBe(true);
    expect([first.status, first.rowsWritten]).toStrictEqual(['compacted', 2]);
    expect({ ...second, runId: '' }).toStrictEqual({
      tenant: 'acme',
      date: DATE,
      runId: '',
      status: 'locked',
      inputs: 0,
      rowsRead: 0,
      rowsRejected: 0,
      objectsRejected: 0,
      duplicatesRemoved: 0,
      versionsSuperseded: 0,
      deletesApplied: 0,
      deletesRemembered: 0,
      rowsCarried: 0,
      rowsWritten: 0,
      outputFiles: [],
      bytesWritten: 0,
      durationMs: 0,
      timingsMs: {},
      error: `tenant acme for ${DATE} is already being compacted by run ${first.runId} on ${hostname()}:${process.pid} (lease until ${new Date(NOW + DEFAULT_LEASE_MS).toISOString()})`,
    });
    expect(await store.head(lockKey('acme', DATE))).toBeUndefined();
    expect(await contents(store, 'acme')).toStrictEqual([
      ['m1', 'one, edited'],
      ['m2', 'two'],
    ]);
  });

  it("a stale lease (a crashed run's) is taken over once it expires, and released after the run", async () => {
    const store = make();
    await stage(store, 'acme');
    await plantLease(store, 'acme', DATE, { run_id: 'crashed-run', expires_at: new Date(NOW - 1).toISOString() });
    const result = await compactPartition({ store, db, workDirectory: join(dir.path, `w-${++n}`), now: () => NOW }, 'acme', DATE);
    expect([result.status, result.rowsWritten]).toStrictEqual(['compacted', 2]);
    expect(await store.head(lockKey('acme', DATE))).toBeUndefined();
  });

  it('a lease that has not expired blocks: the run fails as locked and writes nothing', async () => {
    const store = make();
    await stage(store, 'acme');
    const other = await acquireLease(store, 'acme', DATE, 'other-run', { now: () => NOW - 1000 });
    await expect(
      compactPartition({ store, db, workDirectory: join(dir.path, `w-${++n}`), now: () => NOW }, 'acme', DATE),
    ).rejects.toThrow(`tenant acme for ${DATE} is already being compacted by run other-run on ${hostname()}:${process.pid}`);
    expect(await contents(store, 'acme')).toStrictEqual([]);
    await other.release();
  });
});

/** Every key a run of the partition writes when it commits: its own part, run manifest and table version, nothing else. */
const commitWrites = (runId: string, version: number) =>
  [
    `analytics/messages/_delta_log/${String(version).padStart(20, '0')}.json`,
    `analytics/messages/tenant_id=acme/dt=${DATE}/part-0-${runId}.parquet`,
    `manifests/messages/tenant_id=acme/dt=${DATE}/${runId}.json`,
    // no rejected lines: no quarantine file, and nothing of another run's is touched
  ].sort();

/** The stalled run's id, from its LeaseLostError. */
const stalledRunOf = (outcome: StalledCommitOutcome) => /of run (\S+):/.exec(outcome.stalled.error ?? '')?.[1] as string;

/** What every stalled-commit outcome shares: the taker's version is exact and nothing it names ever changes. */
async function expectTakerPublishedExactly(store: ObjectStore, outcome: StalledCommitOutcome): Promise<void> {
  const taker = outcome.other.runId;
  const stalledRun = stalledRunOf(outcome);
  expect(outcome.other.status).toBe('compacted');
  expect([...outcome.otherWrote].sort()).toStrictEqual(commitWrites(taker, 0));
  expect([outcome.stalled.status, outcome.stalled.error]).toStrictEqual([
    'failed',
    `compaction of tenant acme for ${DATE} failed: lost the lease locks/messages/tenant_id=acme/dt=${DATE}.lock of run ${stalledRun}: it could not be renewed before it lapsed: injected: locks/messages/tenant_id=acme/dt=${DATE}.lock unreachable`,
  ]);
  expect(stalledRun).toMatch(/^\d{8}T\d{9}Z-[0-9a-f]{8}$/);
  expect(stalledRun).not.toBe(taker);
  // the taker's snapshot: version 0, exactly its one part, in the store as committed
  const [file] = outcome.afterTaker.files;
  expect(outcome.afterTaker).toStrictEqual({
    version: 0,
    files: [
      {
        key: `analytics/messages/tenant_id=acme/dt=${DATE}/part-0-${taker}.parquet`,
        size: file?.size,
        run: taker,
        storedSize: file?.size,
        sha256: file?.sha256,
      },
    ],
  });
  expect(file?.size).toBeGreaterThan(0);
  expect(file?.sha256).toMatch(/^[0-9a-f]{64}$/);
  // after the stalled run resumed and failed: no new version, and no file the version names was changed
  expect(outcome.atEnd).toStrictEqual(outcome.afterTaker);
  expect(outcome.atEnd.files.filter((f) => f.key.includes(stalledRun))).toStrictEqual([]);
  expect(await contents(store, 'acme')).toStrictEqual([
    ['m1', 'one, edited'],
    ['m2', 'two'],
  ]);
  expect(await store.head(lockKey('acme', DATE))).toBeUndefined();

  // the vacuum eight days later (past the 7-day retention) leaves the folder equal to the version
  await vacuumLake({ store, db, workDirectory: join(dir.path, `v-${++n}`) }, { now: Date.now() + 8 * 24 * 3_600_000 });
  expect((await listAll(store, analyticsPrefix('acme', DATE))).map((o) => o.key)).toStrictEqual(
    outcome.atEnd.files.map((f) => f.key),
  );
  expect((await listAll(store, `manifests/messages/tenant_id=acme/dt=${DATE}/`)).map((o) => o.key)).toStrictEqual([
    `manifests/messages/tenant_id=acme/dt=${DATE}/${taker}.json`,
  ]);
  expect(await contents(store, 'acme')).toStrictEqual([
    ['m1', 'one, edited'],
    ['m2', 'two'],
  ]);
}

describe.each(Object.keys(stores))('a commit stalled past its lease on %s', (kind) => {
  it('stalled before its upload: the run that took the lease over publishes; the stalled run writes nothing and fails with LeaseLostError', async () => {
    const store = (stores[kind] as () => ObjectStore)();
    await stage(store, 'acme');
    const outcome = await runStalledCommit(store, db, join(dir.path, `w-${++n}`), 'acme', DATE, 300, 'before-upload');
    expect([outcome.stalledWrote, outcome.stalledRefused]).toStrictEqual([[], []]);
    expect(outcome.stalledEvents.filter((e) => e.error !== undefined)).toStrictEqual([]);
    await expectTakerPublishedExactly(store, outcome);
  });

  it("stalled with its table commit in flight: its uploads went to its own keys, the store refuses its commit (a conflict), it re-plans and fails with LeaseLostError; the taker's version is untouched", async () => {
    const store = (stores[kind] as () => ObjectStore)();
    await stage(store, 'acme');
    const outcome = await runStalledCommit(store, db, join(dir.path, `w-${++n}`), 'acme', DATE, 300, 'commit-in-flight');
    const stalledRun = stalledRunOf(outcome);
    // its part and run manifest are new keys of its own (they cannot overwrite the taker's files) ...
    const version0 = commitWrites(stalledRun, 0)[0] as string;
    expect([...outcome.stalledWrote].sort()).toStrictEqual(commitWrites(stalledRun, 0).filter((k) => k !== version0));
    // ... and its commit of version 0, which reached the store after the taker's, was refused (put-if-absent)
    expect(outcome.stalledRefused).toStrictEqual([version0]);
    expect(outcome.stalledEvents.filter((e) => e.error !== undefined)).toStrictEqual([
      {
        event: 'partition.commit_conflict',
        error: `table version 0 changed partition tenant_id=acme/dt=${DATE} since this run read it`,
      },
    ]);
    await expectTakerPublishedExactly(store, outcome);
  });
});

describe('two runs racing to take over the same expired lease', () => {
  const race = async (store: ObjectStore) => {
    await plantLease(store, 'acme', DATE, { run_id: 'crashed-run', expires_at: new Date(NOW - 1).toISOString() });
    const outcomes = await Promise.allSettled(
      ['run-a', 'run-b', 'run-c'].map((id) => acquireLease(store, 'acme', DATE, id, { now: () => NOW })),
    );
    for (const o of outcomes) if (o.status === 'fulfilled') await o.value.release();
    return outcomes.map((o) => o.status);
  };

  it('on Azurite exactly one wins (ifMatch on the stale lease version is atomic)', async () => {
    const outcomes = await race(stores['BlobStore on Azurite']?.() as ObjectStore);
    expect(outcomes.filter((s) => s === 'fulfilled')).toHaveLength(1);
  });

  it('on LocalStore exactly one wins', async () => {
    const outcomes = await race(stores.LocalStore?.() as ObjectStore);
    expect(outcomes.filter((s) => s === 'fulfilled')).toHaveLength(1);
  });
});

/** A store whose writes succeed but whose first reply to each lease write is lost (a 503 after the commit). */
class LostReplyStore extends LocalStore {
  private lost = new Set<string>();
  override async putBytes(key: string, body: Uint8Array | string, options?: PutOptions): Promise<ObjectInfo> {
    const info = await super.putBytes(key, body, options);
    if (key.startsWith('locks/') && !this.lost.has(key)) {
      this.lost.add(key);
      throw new TransientStoreError(`injected 503 after the write of ${key}`, { context: { key } });
    }
    return info;
  }
}

describe('a lease write whose reply is lost and is retried', () => {
  it('still compacts (the lease it finds is its own)', async () => {
    const local = new LostReplyStore(join(dir.path, `data-${++n}`));
    await stage(local, 'acme');
    const store = new RetryingStore(local, { attempts: 3, baseDelayMs: 1, maxDelayMs: 2, deadlineMs: 1000 });
    const result = await compactPartition({ store, db, workDirectory: join(dir.path, `w-${++n}`), now: () => NOW }, 'acme', DATE);
    expect(result.status).toBe('compacted');
  });
});
