import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ObjectNotFoundError, PreconditionFailedError, StoreError, TransientStoreError } from '../../src/ports/store/errors.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { getBytes, listAll } from '../../src/ports/store/ObjectStore.js';
import { SlowCheckStore } from '../kit/casChild.js';
import { GONE_PID } from '../kit/leases.js';
import { tempDir } from '../kit/tempDir.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const FAST_RETRY = { attempts: 3, baseDelayMs: 1, maxDelayMs: 5, deadlineMs: 1_000 };

describe('LocalStore', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let store: LocalStore;
  beforeEach(async () => {
    dir = await tempDir();
    store = new LocalStore(join(dir.path, 'root'));
  });
  afterEach(() => dir.cleanup());

  it('lists by prefix in key order, and folders one level down', async () => {
    for (const key of ['a/x=2/f', 'a/x=1/g', 'a/x=1/f', 'b/h', 'a2/i']) await store.putBytes(key, key);
    expect((await listAll(store, 'a/')).map((o) => o.key)).toStrictEqual(['a/x=1/f', 'a/x=1/g', 'a/x=2/f']);
    expect((await listAll(store, 'a')).map((o) => o.key)).toStrictEqual(['a/x=1/f', 'a/x=1/g', 'a/x=2/f', 'a2/i']);
    const folders: string[] = [];
    for await (const f of store.listFolders('a/')) folders.push(f);
    expect(folders).toStrictEqual(['x=1', 'x=2']);
    expect(await listAll(store, 'missing/')).toStrictEqual([]);
  });

  it('round-trips bytes and files, and deletes idempotently', async () => {
    const info = await store.putBytes('k/one', 'hello');
    expect([info.key, info.size]).toStrictEqual(['k/one', 5]);
    expect((await getBytes(store, 'k/one')).toString()).toBe('hello');
    const src = join(dir.path, 'src');
    await writeFile(src, 'file body');
    await store.putFile('k/two', src);
    await store.getToFile('k/two', join(dir.path, 'copy'));
    expect(await readFile(join(dir.path, 'copy'), 'utf8')).toBe('file body');
    await store.delete('k/one');
    await store.delete('k/one');
    expect(await store.head('k/one')).toBe(undefined);
    await expect(getBytes(store, 'k/one')).rejects.toBeInstanceOf(ObjectNotFoundError);
  });

  it('getBytes reads again after a transient failure mid-body, and gives up at once on any other', async () => {
    await store.putBytes('a/flaky.json', '{"ok":true}');
    let reads = 0;
    const flaky = Object.assign(Object.create(store) as LocalStore, {
      getStream: async (key: string) => {
        reads++;
        if (reads > 1) return store.getStream(key);
        // a dropped connection while the body streams, as S3Store reports it
        return Readable.from(
          (async function* () {
            yield Buffer.from('{"ok"');
            throw new TransientStoreError('s3://lake/a/flaky.json: Error (ECONNRESET)');
          })(),
        );
      },
    });
    expect((await getBytes(flaky, 'a/flaky.json', FAST_RETRY)).toString()).toBe('{"ok":true}');
    expect(reads).toBe(2);

    reads = 0;
    const denied = Object.assign(Object.create(store) as LocalStore, {
      getStream: async () => {
        reads++;
        throw new StoreError('access denied: a/flaky.json');
      },
    });
    await expect(getBytes(denied, 'a/flaky.json', FAST_RETRY)).rejects.toThrow('access denied: a/flaky.json');
    expect(reads).toBe(1);
  });

  it("a put whose signal aborted writes nothing and rejects with the signal's reason", async () => {
    const stop = new AbortController();
    stop.abort(new Error('lease lost'));
    const file = join(dir.path, 'part.parquet');
    await writeFile(file, 'rows');
    await expect(store.putFile('a/part.parquet', file, { ifNoneMatch: '*', signal: stop.signal })).rejects.toThrow('lease lost');
    await expect(store.putBytes('a/b.json', '{}', { signal: stop.signal })).rejects.toThrow('lease lost');
    expect(await listAll(store, 'a/')).toStrictEqual([]);
  });

  it('enforces ifNoneMatch and ifMatch', async () => {
    const first = await store.putBytes('lock', 'a', { ifNoneMatch: '*' });
    await expect(store.putBytes('lock', 'b', { ifNoneMatch: '*' })).rejects.toBeInstanceOf(PreconditionFailedError);
    await store.putBytes('lock', 'c', { ifMatch: first.etag });
    await expect(store.putBytes('lock', 'd', { ifMatch: first.etag })).rejects.toBeInstanceOf(PreconditionFailedError);
    expect((await getBytes(store, 'lock')).toString()).toBe('c');
  });

  it('refuses keys that would leave the root', async () => {
    await expect(store.putBytes('../escape', 'x')).rejects.toThrow(StoreError);
    await expect(store.putBytes('a/../../escape', 'x')).rejects.toThrow('invalid object key "a/../../escape"');
    await expect(store.putBytes('/abs', 'x')).rejects.toThrow('invalid object key "/abs"');
  });

  it('ifMatch is exact under concurrency: of 20 writers holding one version exactly one replaces it', async () => {
    const slow = new SlowCheckStore(store.root);
    const first = await slow.putBytes('k/lease', 'v0');
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => slow.putBytes('k/lease', `v${i + 1}`, { ifMatch: first.etag })),
    );
    const won = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [`v${i + 1}`] : []));
    expect(won).toHaveLength(1);
    expect(outcomes.filter((o) => o.status === 'rejected').map((o) => (o as PromiseRejectedResult).reason.name)).toStrictEqual(
      Array(19).fill('PreconditionFailedError'),
    );
    expect((await getBytes(store, 'k/lease')).toString()).toBe(won[0]);
  });

  it('conditions are exact across processes: 3 processes × 20 compare-and-swap increments lose none', async () => {
    const go = join(dir.path, 'go');
    let ready = 0;
    const run = () =>
      new Promise<number>((resolve, reject) => {
        const args = [join(REPO, 'bin/run-ts.mjs'), join(REPO, 'test/kit/casChild.ts'), store.root, '20', go];
        const child = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
        let output = '';
        child.stdout.on('data', (d) => {
          output += d;
          if (String(d).includes('ready') && ++ready === 3) void writeFile(go, '');
        });
        child.once('error', reject);
        child.once('exit', (code) =>
          code === 0 ? resolve(Number(/conflicts (\d+)/.exec(output)?.[1])) : reject(new Error(`casChild exited ${code}`)),
        );
      });
    const conflicts = await Promise.all([run(), run(), run()]);
    expect((await getBytes(store, 'k/counter')).toString()).toBe('60');
    // the processes did run at the same time (else the test proves nothing)
    expect(conflicts.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });

  it('every write gives a new ETag, even the same size in the same millisecond', async () => {
    let previous = await store.putBytes('k/x', 'a');
    for (let i = 0; i < 20; i++) {
      const next = await store.putBytes('k/x', i % 2 ? 'a' : 'b');
      expect(next.etag).not.toBe(previous.etag);
      await expect(store.putBytes('k/x', 'c', { ifMatch: previous.etag })).rejects.toBeInstanceOf(PreconditionFailedError);
      previous = next;
    }
  });

  it('deletes conditionally: another version is refused, its own version and a missing object are fine', async () => {
    const v1 = await store.putBytes('k/lease', 'one');
    const v2 = await store.putBytes('k/lease', 'two');
    await expect(store.delete('k/lease', { ifMatch: v1.etag })).rejects.toThrow(`k/lease changed (ifMatch ${v1.etag})`);
    expect((await getBytes(store, 'k/lease')).toString()).toBe('two');
    await store.delete('k/lease', { ifMatch: v2.etag });
    expect(await store.head('k/lease')).toBe(undefined);
    await store.delete('k/lease', { ifMatch: v2.etag });
  });

  it('keeps temporary files outside every key folder, never lists them, and removes those of killed runs', async () => {
    await store.putBytes('analytics/dt=1/part-0.parquet', 'x');
    const tmp = join(store.root, '.tmp');
    // a killed run's temp file (its pid is gone), a live run's, and an old version's beside the object
    await writeFile(join(tmp, `${GONE_PID}-dead`), 'half a file');
    await writeFile(join(tmp, `${process.pid}-live`), 'being written');
    const legacy = join(store.root, 'analytics/dt=1/.tmp-0123');
    await writeFile(legacy, 'old half file');
    const old = new Date(Date.now() - 11 * 60 * 1000);
    await utimes(legacy, old, old);
    await writeFile(join(store.root, 'analytics/dt=1/.tmp-fresh'), 'an old version writing now');
    expect((await listAll(store, '')).map((o) => o.key)).toStrictEqual(['analytics/dt=1/part-0.parquet']);
    const folders: string[] = [];
    for await (const f of store.listFolders('')) folders.push(f);
    expect(folders).toStrictEqual(['analytics']);
    expect((await readdir(join(store.root, 'analytics/dt=1'))).sort()).toStrictEqual(['.tmp-fresh', 'part-0.parquet']);
    await new LocalStore(store.root).putBytes('analytics/dt=1/part-1.parquet', 'y');
    expect((await readdir(tmp)).sort()).toStrictEqual([`${process.pid}-live`, 'locks']);
    expect(await readdir(join(tmp, 'locks'))).toStrictEqual([]);
    await expect(store.putBytes('.tmp/x', 'x')).rejects.toThrow('invalid object key ".tmp/x" (.tmp/ is the store\'s own)');
  });

  it('a key lock left by a killed process is broken, not waited on', async () => {
    const locks = join(store.root, '.tmp', 'locks');
    await mkdir(locks, { recursive: true });
    const { createHash } = await import('node:crypto');
    await writeFile(join(locks, createHash('sha1').update('k/held').digest('hex')), `${GONE_PID}\n`);
    await store.putBytes('k/held', 'written');
    expect((await getBytes(store, 'k/held')).toString()).toBe('written');
  });
});
