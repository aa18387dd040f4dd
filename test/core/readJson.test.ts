/**
 * The one way a small JSON object is read from the store (src/ports/store/readJson.ts): missing, torn and changed
 * each mean one thing, whoever reads.
 */
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ObjectNotFoundError, PreconditionFailedError, UnreadableJsonError } from '../../src/ports/store/errors.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { parseJsonBody, readJson, readJsonVersion, requireJson } from '../../src/ports/store/readJson.js';
import { tempDir } from '../kit/tempDir.js';

describe('reading a small JSON object from the store', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let store: LocalStore;
  beforeEach(async () => {
    dir = await tempDir();
    store = new LocalStore(join(dir.path, 'lake'));
  });
  afterEach(async () => {
    await dir.cleanup();
  });

  it('reads the value; missing is undefined (readJson, readJsonVersion) or the store’s ObjectNotFoundError (requireJson)', async () => {
    await store.putBytes('runs/a.json', JSON.stringify({ by: 'map-1', n: 2 }));
    expect(await readJson(store, 'runs/a.json')).toStrictEqual({ by: 'map-1', n: 2 });
    expect(await requireJson(store, 'runs/a.json')).toStrictEqual({ by: 'map-1', n: 2 });
    expect(await readJson(store, 'runs/none.json')).toBeUndefined();
    expect(await readJsonVersion(store, 'runs/none.json')).toBeUndefined();
    await expect(requireJson(store, 'runs/none.json')).rejects.toBeInstanceOf(ObjectNotFoundError);
  });

  it('a torn body is an UnreadableJsonError (a SyntaxError) naming what and the key, never "missing"', async () => {
    await store.putBytes('runs/torn.json', '{"by": "map');
    const error = await readJson(store, 'runs/torn.json', 'stage marker').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnreadableJsonError);
    expect(error).toBeInstanceOf(SyntaxError);
    expect((error as Error).message).toMatch(/^unreadable stage marker runs\/torn\.json: /);
    expect(() => parseJsonBody('k.json', Buffer.from('nope'), 'manifest')).toThrow(/^unreadable manifest k\.json: /);
    await expect(readJsonVersion(store, 'runs/torn.json')).rejects.toBeInstanceOf(UnreadableJsonError);
  });

  it('readJsonVersion’s ETag is of the version read or an older one: a write conditional on it fails once the object changed', async () => {
    const first = await store.putBytes('locks/a.lock', JSON.stringify({ run_id: 'r1' }));
    const read = await readJsonVersion<{ run_id: string }>(store, 'locks/a.lock');
    expect(read).toStrictEqual({ value: { run_id: 'r1' }, etag: first.etag });
    await store.putBytes('locks/a.lock', JSON.stringify({ run_id: 'r2' }));
    await expect(
      store.putBytes('locks/a.lock', JSON.stringify({ run_id: 'r3' }), { ifMatch: read?.etag as string }),
    ).rejects.toBeInstanceOf(PreconditionFailedError);
  });
});
