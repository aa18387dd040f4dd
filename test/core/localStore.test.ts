import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ObjectNotFoundError, PreconditionFailedError, StoreError } from '../../src/store/errors.js';
import { LocalStore } from '../../src/store/LocalStore.js';
import { getBytes, listAll } from '../../src/store/ObjectStore.js';
import { tempDir } from '../kit/tempDir.js';

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
});
