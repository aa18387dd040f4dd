import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseLostError, PartitionLockedError, RunAbortedError } from '../../src/core/errors.js';
import { lockKey } from '../../src/core/staging/layout.js';
import { acquireLease, adoptLease, readLease } from '../../src/lake/partitionLease.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import type { ObjectStore } from '../../src/ports/store/ObjectStore.js';
import { BlobStore } from '../../stores/blob/BlobStore.js';
import { S3Store } from '../../stores/s3/S3Store.js';
import { startAzurite } from '../../tools/azureServers.js';
import { CountingStore } from '../../tools/CountingStore.js';
import type { RunningServer } from '../../tools/servers.js';
import { type S3rver, startS3rver } from '../aws/support/localAws.js';
import { GONE_PID, plantLease } from '../kit/leases.js';
import { tempDir } from '../kit/tempDir.js';

const DATE = '2025-08-11';
const KEY = lockKey('acme', DATE);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: Awaited<ReturnType<typeof tempDir>>;
let azurite: RunningServer & { connectionString: string };
beforeAll(async () => {
  dir = await tempDir('makoto-lake-lease-');
  azurite = await startAzurite();
});
afterAll(async () => {
  await azurite?.stop();
  await dir?.cleanup();
});

let n = 0;
const stores: Record<string, () => ObjectStore> = {
  LocalStore: () => new LocalStore(join(dir.path, `data-${++n}`)),
  'BlobStore on Azurite': () => new BlobStore({ connectionString: azurite.connectionString, containerName: `fence${++n}` }),
};
const holderOf = async (store: ObjectStore) => (await readLease(store, KEY))?.body.run_id;

describe.each(Object.keys(stores))('the partition lease on %s', (kind) => {
  const make = stores[kind] as () => ObjectStore;

  it('is renewed by its heartbeat: after three lease lengths another run is still locked out; release removes it', async () => {
    const store = make();
    const lease = await acquireLease(store, 'acme', DATE, 'run-a', { leaseMs: 800, heartbeatMs: 100 });
    await sleep(2400);
    const error = await acquireLease(store, 'acme', DATE, 'run-b', { leaseMs: 800 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PartitionLockedError);
    expect((error as Error).message).toMatch(
      new RegExp(
        `^tenant acme for ${DATE} is already being compacted by run run-a on ${hostname()}:${process.pid} \\(lease until `,
      ),
    );
    expect(lease.signal.aborted).toBe(false);
    await lease.confirm();
    await lease.release();
    expect(await store.head(KEY)).toBeUndefined();
  });

  it('confirm only reads a lease written in the last quarter of its duration (one HEAD); an older one it renews', async () => {
    let clock = Date.now();
    const store = new CountingStore(make());
    // no heartbeat within the test: every request below is confirm's or release's
    const lease = await acquireLease(store, 'acme', DATE, 'run-a', { leaseMs: 60_000, heartbeatMs: 3_600_000, now: () => clock });
    const created = await readLease(store, KEY);
    store.reset();

    clock += 15_000; // three quarters left: fresh
    await lease.confirm();
    expect(store.counts().operations).toStrictEqual({ LIST: 0, HEAD: 1, GET: 0, PUT: 0, DELETE: 0 });
    expect((await readLease(store, KEY))?.etag).toBe(created?.etag);

    store.reset();
    clock += 1; // less than three quarters left: renewed, to a full lease from now
    await lease.confirm();
    expect(store.counts().operations).toStrictEqual({ LIST: 0, HEAD: 1, GET: 0, PUT: 1, DELETE: 0 });
    const renewed = await readLease(store, KEY);
    expect(renewed?.etag).not.toBe(created?.etag);
    expect(renewed?.body.expires_at).toBe(new Date(clock + 60_000).toISOString());

    store.reset();
    await lease.confirm(); // fresh again
    await lease.release();
    expect(store.counts().operations).toStrictEqual({ LIST: 0, HEAD: 2, GET: 0, PUT: 0, DELETE: 1 });
    expect(await store.head(KEY)).toBeUndefined();
  });

  it('a lease whose holder process on this host is gone is taken over at once, though it runs for another hour', async () => {
    const store = make();
    await plantLease(store, 'acme', DATE, { run_id: 'killed-run', pid: GONE_PID });
    const lease = await acquireLease(store, 'acme', DATE, 'run-b');
    expect(await holderOf(store)).toBe('run-b');
    await lease.release();
  });

  it("a split's lease outlives the process that handed it over: only its own run adopts it, only expiry frees it", async () => {
    const store = make();
    // a task of split-run on this host handed the lease over and exited
    await plantLease(store, 'acme', DATE, { run_id: 'split-run', pid: GONE_PID, across_processes: true });
    await expect(acquireLease(store, 'acme', DATE, 'run-b')).rejects.toBeInstanceOf(PartitionLockedError);
    await expect(adoptLease(store, 'acme', DATE, 'run-b')).rejects.toThrow(
      `lost the lease ${KEY} of run run-b: run split-run on ${hostname()}:${GONE_PID} holds it`,
    );

    const task = await adoptLease(store, 'acme', DATE, 'split-run', { leaseMs: 60_000, acrossProcesses: true });
    await task.handOver();
    const handedOver = await readLease(store, KEY);
    expect([handedOver?.body.run_id, handedOver?.body.pid, handedOver?.body.across_processes]).toStrictEqual([
      'split-run',
      process.pid,
      true,
    ]);

    const commit = await adoptLease(store, 'acme', DATE, 'split-run', { leaseMs: 60_000, acrossProcesses: true });
    await commit.release();
    expect(await store.head(KEY)).toBeUndefined();
    await expect(adoptLease(store, 'acme', DATE, 'split-run')).rejects.toThrow(
      `lost the lease ${KEY} of run split-run: the lease object is gone`,
    );
    expect(await store.head(KEY)).toBeUndefined();
  });

  it('six tasks of one split renew its lease side by side: none loses it, and another run stays locked out', async () => {
    const store = make();
    await plantLease(store, 'acme', DATE, { run_id: 'split-run', pid: GONE_PID, across_processes: true });
    const tasks = await Promise.all(
      Array.from({ length: 6 }, () => adoptLease(store, 'acme', DATE, 'split-run', { leaseMs: 60_000, acrossProcesses: true })),
    );
    const renewals = tasks.flatMap((task) => Array.from({ length: 4 }, () => task.confirm()));
    expect((await Promise.allSettled(renewals)).filter((r) => r.status === 'rejected')).toStrictEqual([]);
    expect(tasks.map((task) => task.signal.aborted)).toStrictEqual([false, false, false, false, false, false]);
    await expect(acquireLease(store, 'acme', DATE, 'run-b')).rejects.toBeInstanceOf(PartitionLockedError);
    await Promise.all(tasks.map((task) => task.handOver()));
    expect(await holderOf(store)).toBe('split-run');
  });

  it("another host's lease blocks until it lapses, then is taken over", async () => {
    const store = make();
    const planted = await plantLease(store, 'acme', DATE, {
      run_id: 'far-run',
      host: 'other-host',
      pid: process.pid,
      expires_at: new Date(Date.now() + 1500).toISOString(),
    });
    await expect(acquireLease(store, 'acme', DATE, 'run-b')).rejects.toThrow(
      `tenant acme for ${DATE} is already being compacted by run far-run on other-host:${process.pid} (lease until ${planted.expires_at})`,
    );
    await sleep(Date.parse(planted.expires_at) - Date.now() + 20);
    const lease = await acquireLease(store, 'acme', DATE, 'run-b');
    expect(await holderOf(store)).toBe('run-b');
    await lease.release();
  });

  it('a lease taken over while its run paused: confirm throws LeaseLostError, the signal aborts, release leaves the new lease', async () => {
    const store = make();
    const lease = await acquireLease(store, 'acme', DATE, 'run-a', { leaseMs: 60_000 });
    await plantLease(store, 'acme', DATE, { run_id: 'run-b', pid: process.pid });
    const error = await lease.confirm().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LeaseLostError);
    expect((error as Error).message).toBe(
      `lost the lease ${KEY} of run run-a: run run-b on ${hostname()}:${process.pid} took it over`,
    );
    expect([lease.signal.aborted, lease.signal.reason]).toStrictEqual([true, error]);
    await lease.release();
    expect(await holderOf(store)).toBe('run-b');
  });

  it('the heartbeat finds a takeover by itself and aborts the signal', async () => {
    const store = make();
    const lease = await acquireLease(store, 'acme', DATE, 'run-a', { leaseMs: 60_000, heartbeatMs: 30 });
    await plantLease(store, 'acme', DATE, { run_id: 'run-b', pid: process.pid });
    const reason = await new Promise((resolve) => lease.signal.addEventListener('abort', () => resolve(lease.signal.reason)));
    expect(reason).toBeInstanceOf(LeaseLostError);
    await lease.release();
    expect(await holderOf(store)).toBe('run-b');
  });

  it("the run's abort (SIGTERM) aborts the lease signal; confirm throws it; release still removes the lease", async () => {
    const store = make();
    const run = new AbortController();
    const lease = await acquireLease(store, 'acme', DATE, 'run-a', { signal: run.signal });
    const stopped = new RunAbortedError('the run was stopped by SIGTERM');
    run.abort(stopped);
    expect([lease.signal.aborted, lease.signal.reason]).toStrictEqual([true, stopped]);
    await expect(lease.confirm()).rejects.toBe(stopped);
    await lease.release();
    expect(await store.head(KEY)).toBeUndefined();
    await expect(acquireLease(store, 'acme', DATE, 'run-c', { signal: run.signal })).rejects.toBe(stopped);
    expect(await store.head(KEY)).toBeUndefined();
  });

  it('of five runs taking over one lapsed lease at once exactly one wins', async () => {
    const store = make();
    await plantLease(store, 'acme', DATE, { run_id: 'crashed', host: 'other-host', expires_at: new Date(0).toISOString() });
    const outcomes = await Promise.allSettled(['r1', 'r2', 'r3', 'r4', 'r5'].map((id) => acquireLease(store, 'acme', DATE, id)));
    const won = outcomes.filter((o) => o.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const o of won) await (o as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireLease>>>).value.release();
    expect(await store.head(KEY)).toBeUndefined();
  });
});

describe('the partition lease on S3Store over s3rver (which ignores If-Match / If-None-Match)', () => {
  let s3: S3rver;
  beforeAll(async () => {
    s3 = await startS3rver();
    for (const bucket of ['fence-1', 'fence-2']) await s3.createBucket(bucket);
  });
  afterAll(() => s3?.stop());
  let bucket = 0;
  // s3rver itself, not the conditional proxy the other s3rver suites go through (test/aws/support/conditionalProxy.ts)
  const make = () => new S3Store({ bucket: `fence-${++bucket}`, client: s3.client(s3.rawEndpoint) });

  it('gives no mutual exclusion: five runs racing for one lapsed lease all think they won', async () => {
    const store = make();
    await plantLease(store, 'acme', DATE, { run_id: 'crashed', host: 'other-host', expires_at: new Date(0).toISOString() });
    const outcomes = await Promise.allSettled(['r1', 'r2', 'r3', 'r4', 'r5'].map((id) => acquireLease(store, 'acme', DATE, id)));
    expect(outcomes.map((o) => o.status)).toStrictEqual(Array(5).fill('fulfilled'));
    for (const o of outcomes) if (o.status === 'fulfilled') await o.value.release();
  });

  it('still notices a takeover before it writes (confirm reads first) and never deletes the new holder', async () => {
    const store = make();
    const lease = await acquireLease(store, 'acme', DATE, 'run-a');
    await plantLease(store, 'acme', DATE, { run_id: 'run-b', pid: process.pid });
    await expect(lease.confirm()).rejects.toBeInstanceOf(LeaseLostError);
    await lease.release();
    expect(await holderOf(store)).toBe('run-b');
  });
});
