import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stagingKey } from '../../src/core/staging/layout.js';
import { gzipNdjson } from '../../src/core/staging/ndjson.js';
import { compactPartition } from '../../src/engine/compactPartition.js';
import { openDuckDb } from '../../src/ports/duckdb/openDuckDb.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { getBytes, listAll } from '../../src/ports/store/ObjectStore.js';
import { BLOB_REQUEST_MODEL, CountingStore, S3_REQUEST_MODEL } from '../kit/CountingStore.js';
import { stagedRecord } from '../kit/factories.js';
import { tempDir } from '../kit/tempDir.js';

const MIB = 1024 * 1024;
let dir: Awaited<ReturnType<typeof tempDir>>;
let db: DuckDBInstance;

beforeAll(async () => {
  dir = await tempDir();
  db = await openDuckDb({ memoryLimit: '512MB', threads: 2, workDirectory: join(dir.path, 'duck') });
});
afterAll(async () => {
  db?.closeSync();
  await dir?.cleanup();
});

describe('CountingStore', () => {
  it('counts every operation and the bytes that pass through it', async () => {
    const inner = new LocalStore(join(dir.path, 'ops'));
    const store = new CountingStore(inner);
    const body = gzipNdjson([stagedRecord()]);
    await store.putBytes(stagingKey('acme', '2025-08-11', 'a.ndjson.gz'), body);
    await store.putBytes(stagingKey('acme', '2025-08-11', 'b.ndjson.gz'), body);
    await store.putFile('copies/c.ndjson.gz', join(inner.root, stagingKey('acme', '2025-08-11', 'a.ndjson.gz')));
    const listed = await listAll(store, 'staging/');
    const folders: string[] = [];
    for await (const name of store.listFolders('staging/messages/')) folders.push(name);
    await store.head('copies/c.ndjson.gz');
    await store.head('missing');
    await store.getToFile('copies/c.ndjson.gz', join(dir.path, 'c.ndjson.gz'));
    expect(await getBytes(store, listed[1]?.key as string)).toStrictEqual(body);
    await store.delete('copies/c.ndjson.gz');
    await store.delete('missing');

    expect({ listed: listed.length, folders }).toStrictEqual({ listed: 2, folders: ['tenant_id=acme'] });
    expect(store.counts()).toStrictEqual({
      operations: { LIST: 2, HEAD: 2, GET: 2, PUT: 3, DELETE: 2 },
      listed: 3,
      bytesRead: 2 * body.length,
      bytesWritten: 3 * body.length,
    });
    expect(store.requests(S3_REQUEST_MODEL)).toStrictEqual({ LIST: 2, HEAD: 2, GET: 2, PUT: 3, DELETE: 2 });
  });

  it('sees a whole compaction go through it', async () => {
    const inner = new LocalStore(join(dir.path, 'lake'));
    for (let i = 0; i < 3; i++) {
      await inner.putBytes(
        stagingKey('acme', '2025-08-11', `b${i}.ndjson.gz`),
        gzipNdjson([stagedRecord({ message_id: `m${i}` })]),
      );
    }
    const store = new CountingStore(inner);
    const result = await compactPartition({ store, db, workDirectory: join(dir.path, 'work') }, 'acme', '2025-08-11');
    const staging = (await listAll(inner, 'staging/')).reduce((n, o) => n + o.size, 0);
    const { operations, bytesRead, bytesWritten } = store.counts();
    // The engine's own bookkeeping (manifest, locks, quarantine marker) may change; the data path may not.
    expect({
      rows: result.rowsWritten,
      downloadsAtLeast: operations.GET >= 3,
      stagingBytesRead: bytesRead >= staging,
      partBytesWritten: bytesWritten >= result.bytesWritten,
    }).toStrictEqual({ rows: 3, downloadsAtLeast: true, stagingBytesRead: true, partBytesWritten: true });
  });

  it('turns uploads into multipart requests and listings into pages by the store model', async () => {
    const inner = new LocalStore(join(dir.path, 'model'));
    const store = new CountingStore(inner);
    const file = join(dir.path, 'big.bin');
    await writeFile(file, Buffer.alloc(40 * MIB));
    await store.putFile('big/a.bin', file);
    await writeFile(file, Buffer.alloc(17 * MIB));
    await store.putFile('big/b.bin', file);
    await store.putBytes('small/c.txt', 'c');
    for (let i = 0; i < 1_000; i++) await inner.putBytes(`many/${String(i).padStart(4, '0')}`, '');
    await listAll(store, 'many/');
    await listAll(store, 'none/');

    expect(store.counts().operations).toStrictEqual({ LIST: 2, HEAD: 0, GET: 0, PUT: 3, DELETE: 0 });
    // S3: 40 MiB = 5 parts + create + complete, 17 MiB = 3 parts + 2, 1 small put; 1000 keys = 1 page, empty = 1 page.
    expect(store.requests(S3_REQUEST_MODEL)).toStrictEqual({ LIST: 2, HEAD: 0, GET: 0, PUT: 7 + 5 + 1, DELETE: 0 });
    // Blob: 40 MiB = 5 blocks + block list, 17 MiB fits one Put Blob; 1000 keys fit one page of 5000.
    expect(store.requests(BLOB_REQUEST_MODEL)).toStrictEqual({ LIST: 2, HEAD: 0, GET: 0, PUT: 6 + 1 + 1, DELETE: 0 });
    await inner.putBytes('many/1000', '');
    store.reset();
    await listAll(store, 'many/');
    expect(store.requests(S3_REQUEST_MODEL).LIST).toBe(2);
  });
});
