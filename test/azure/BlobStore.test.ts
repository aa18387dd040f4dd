import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObjectNotFoundError, PreconditionFailedError } from '../../src/ports/store/errors.js';
import { getBytes, listAll } from '../../src/ports/store/ObjectStore.js';
import { BlobStore } from '../../stores/blob/BlobStore.js';
import { AZURITE_KEY, startAzurite } from '../../tools/azureServers.js';
import type { RunningServer } from '../../tools/servers.js';
import { tempDir } from '../kit/tempDir.js';

let azurite: RunningServer & { connectionString: string };
let store: BlobStore;
let dir: { path: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  azurite = await startAzurite();
  dir = await tempDir();
  // A small page size and block size make pagination and parallel block upload visible with small data.
  store = new BlobStore(
    { connectionString: azurite.connectionString, containerName: 'contract' },
    { pageSize: 2, maxSingleShotSize: 1024 * 1024, blockSize: 256 * 1024, concurrency: 3 },
  );
});

afterAll(async () => {
  await dir?.cleanup();
  await azurite?.stop();
});

describe('BlobStore against Azurite', () => {
  it('creates the container on the first write and says where it is without the key', async () => {
    const info = await store.putBytes('a/first.txt', 'hello', { contentType: 'text/plain' });
    expect(info.size).toBe(5);
    expect(store.location).toBe(`http://127.0.0.1:${azurite.port}/devstoreaccount1/contract`);
    expect(store.location).not.toContain(AZURITE_KEY);
    expect((await getBytes(store, 'a/first.txt')).toString()).toBe('hello');
  });

  it('a put whose signal aborted sends nothing: the object is not written', async () => {
    const stop = new AbortController();
    stop.abort(new Error('lease lost'));
    const file = join(dir.path, 'aborted.parquet');
    await writeFile(file, 'rows');
    await expect(store.putFile('aborted/part.parquet', file, { signal: stop.signal })).rejects.toThrow();
    await expect(store.putBytes('aborted/b.json', '{}', { signal: stop.signal })).rejects.toThrow();
    expect(await listAll(store, 'aborted/')).toStrictEqual([]);
  });

  it('creates a missing container once when the first writes run in parallel', async () => {
    const fresh = new BlobStore({ connectionString: azurite.connectionString, containerName: 'parallel-first' });
    const keys = Array.from({ length: 8 }, (_, i) => `k/${i}.txt`);
    await Promise.all(keys.map((key) => fresh.putBytes(key, key)));
    expect((await listAll(fresh, 'k/')).map((o) => o.key)).toStrictEqual(keys);
  });

  it('lists by prefix across pages, in key order, with sizes and etags', async () => {
    const keys = ['p/x/3.bin', 'p/x/1.bin', 'p/y/2.bin', 'p/x/2.bin', 'p/z.bin', 'q/outside.bin'];
    const written = new Map<string, string>();
    for (const [i, key] of keys.entries()) written.set(key, (await store.putBytes(key, 'x'.repeat(i + 1))).etag);
    const listed = await listAll(store, 'p/');
    expect(listed.map((o) => [o.key, o.size, o.etag])).toStrictEqual([
      ['p/x/1.bin', 2, written.get('p/x/1.bin')],
      ['p/x/2.bin', 4, written.get('p/x/2.bin')],
      ['p/x/3.bin', 1, written.get('p/x/3.bin')],
      ['p/y/2.bin', 3, written.get('p/y/2.bin')],
      ['p/z.bin', 5, written.get('p/z.bin')],
    ]);
    expect((await listAll(store, 'p/x/')).map((o) => o.key)).toStrictEqual(['p/x/1.bin', 'p/x/2.bin', 'p/x/3.bin']);
    expect(await listAll(store, 'nothing/')).toStrictEqual([]);
  });

  it('lists immediate folders with the hierarchy delimiter', async () => {
    for (const t of ['t1', 't2', 't3']) await store.putBytes(`f/tenant_id=${t}/dt=2025-08-11/a.gz`, 'x');
    await store.putBytes('f/loose-file.gz', 'x');
    const folders: string[] = [];
    for await (const name of store.listFolders('f/')) folders.push(name);
    expect(folders).toStrictEqual(['tenant_id=t1', 'tenant_id=t2', 'tenant_id=t3']);
    const none: string[] = [];
    for await (const name of store.listFolders('missing/')) none.push(name);
    expect(none).toStrictEqual([]);
  });

  it('heads, streams and downloads to a file; missing objects are ObjectNotFoundError', async () => {
    const body = randomBytes(70_000);
    const put = await store.putBytes('d/blob.bin', body);
    expect(await store.head('d/blob.bin')).toStrictEqual({
      key: 'd/blob.bin',
      size: 70_000,
      etag: put.etag,
      lastModified: expect.any(Date),
    });
    expect(await store.head('d/missing.bin')).toBeUndefined();
    const file = join(dir.path, 'down.bin');
    const info = await store.getToFile('d/blob.bin', file);
    expect([info.key, info.size, info.etag]).toStrictEqual(['d/blob.bin', 70_000, put.etag]);
    expect(Buffer.compare(await readFile(file), body)).toBe(0);
    await expect(store.getStream('d/missing.bin')).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(store.getToFile('d/missing.bin', join(dir.path, 'x'))).rejects.toBeInstanceOf(ObjectNotFoundError);
  });

  it('enforces ifNoneMatch * and ifMatch (Azurite checks the conditions)', async () => {
    const first = await store.putBytes('c/manifest.json', '{"v":1}', { ifNoneMatch: '*' });
    const lost = store.putBytes('c/manifest.json', '{"v":"other"}', { ifNoneMatch: '*' });
    await expect(lost).rejects.toBeInstanceOf(PreconditionFailedError);
    await expect(lost).rejects.toMatchObject({ context: { key: 'c/manifest.json', status: 409 } });
    const second = await store.putBytes('c/manifest.json', '{"v":2}', { ifMatch: first.etag });
    expect(second.etag).not.toBe(first.etag);
    const stale = store.putBytes('c/manifest.json', '{"v":"stale"}', { ifMatch: first.etag });
    await expect(stale).rejects.toBeInstanceOf(PreconditionFailedError);
    await expect(stale).rejects.toMatchObject({ context: { status: 412 } });
    // as LocalStore: ifMatch on a missing object is a lost condition, not "not found"
    await expect(store.putBytes('c/none.json', 'x', { ifMatch: first.etag })).rejects.toBeInstanceOf(PreconditionFailedError);
    expect((await getBytes(store, 'c/manifest.json')).toString()).toBe('{"v":2}');
  });

  it('uploads a large file as parallel blocks, conditionally', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 12_345);
    const file = join(dir.path, 'big.parquet');
    await writeFile(file, body);
    const info = await store.putFile('big/part-0.parquet', file, { ifNoneMatch: '*' });
    expect(info.size).toBe(body.length);
    const blocks = await store.container.getBlockBlobClient('big/part-0.parquet').getBlockList('committed');
    expect(blocks.committedBlocks?.length).toBe(13); // 12 full blocks of 256 KiB + the tail
    expect(Buffer.compare(await getBytes(store, 'big/part-0.parquet'), body)).toBe(0);
    await expect(store.putFile('big/part-0.parquet', file, { ifNoneMatch: '*' })).rejects.toBeInstanceOf(PreconditionFailedError);
    const small = join(dir.path, 'small.txt');
    await writeFile(small, 'small');
    const replaced = await store.putFile('big/part-0.parquet', small, { ifMatch: info.etag });
    expect(replaced.size).toBe(5);
  });

  it('deletes, and deleting a missing object is not an error', async () => {
    await store.putBytes('del/x', 'x');
    await store.delete('del/x');
    await store.delete('del/x');
    expect(await store.head('del/x')).toBeUndefined();
  });

  it('takes an existing service client, and treats a missing container as empty when reading', async () => {
    const service = BlobServiceClient.fromConnectionString(azurite.connectionString);
    const other = new BlobStore({ serviceClient: service, containerName: 'not-created-yet' });
    expect(await listAll(other, '')).toStrictEqual([]);
    expect(await other.head('x')).toBeUndefined();
    await other.delete('x');
    await expect(other.getStream('x')).rejects.toBeInstanceOf(ObjectNotFoundError);
  });
});
