import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObjectNotFoundError, PreconditionFailedError, TransientStoreError } from '../../src/ports/store/errors.js';
import { getBytes, listAll } from '../../src/ports/store/ObjectStore.js';
import { S3_RETRY, S3Store } from '../../stores/s3/S3Store.js';
import { tempDir } from '../kit/tempDir.js';
import { REGION, S3RVER_CREDENTIALS, type S3rver, startFaultProxy, startS3rver } from './support/localAws.js';

describe('S3Store against s3rver', () => {
  let s3: S3rver;
  let proxy: Awaited<ReturnType<typeof startFaultProxy>>;
  let work: Awaited<ReturnType<typeof tempDir>>;

  beforeAll(async () => {
    s3 = await startS3rver();
    await s3.createBucket('contract');
    proxy = await startFaultProxy(s3.port);
    work = await tempDir();
  });
  afterAll(async () => {
    await proxy?.stop();
    await s3?.stop();
    await work?.cleanup();
  });

  const store = (options: Partial<ConstructorParameters<typeof S3Store>[0]> = {}) =>
    new S3Store({ bucket: 'contract', client: s3.client(proxy.endpoint), ...options });
  /** A store whose client the store builds itself (S3_RETRY), through the fault proxy. */
  const retryingStore = (clientConfig: { maxAttempts?: number } = {}) =>
    new S3Store({
      bucket: 'contract',
      clientConfig: {
        endpoint: proxy.endpoint,
        region: REGION,
        forcePathStyle: true,
        credentials: S3RVER_CREDENTIALS,
        ...clientConfig,
      },
    });

  it('puts, heads, gets and deletes objects; location names only the bucket', async () => {
    const s = store();
    expect(s.location).toBe('s3://contract');
    const put = await s.putBytes('basic/a.txt', 'こんにちは🌸', { contentType: 'text/plain' });
    expect(put).toMatchObject({ key: 'basic/a.txt', size: Buffer.byteLength('こんにちは🌸') });
    expect(put.etag).toMatch(/^[0-9a-f]{32}$/);

    const head = await s.head('basic/a.txt');
    expect(head).toStrictEqual({ key: 'basic/a.txt', size: put.size, etag: put.etag, lastModified: expect.any(Date) });
    expect((await getBytes(s, 'basic/a.txt')).toString('utf8')).toBe('こんにちは🌸');

    const file = join(work.path, 'a.txt');
    const got = await s.getToFile('basic/a.txt', file);
    expect(await readFile(file, 'utf8')).toBe('こんにちは🌸');
    expect(got).toStrictEqual({ key: 'basic/a.txt', size: put.size, etag: put.etag, lastModified: expect.any(Date) });

    await s.delete('basic/a.txt');
    await s.delete('basic/a.txt'); // deleting a missing object is not an error
    expect(await s.head('basic/a.txt')).toBeUndefined();
  });

  it('a put whose signal aborted sends nothing: the object is not written', async () => {
    const s = store();
    const stop = new AbortController();
    stop.abort(new Error('lease lost'));
    const file = join(work.path, 'aborted.parquet');
    await writeFile(file, 'rows');
    await expect(s.putFile('aborted/part.parquet', file, { signal: stop.signal })).rejects.toThrow();
    await expect(s.putBytes('aborted/b.json', '{}', { signal: stop.signal })).rejects.toThrow();
    expect(await listAll(s, 'aborted/')).toStrictEqual([]);
  });

  it('reports a missing object as ObjectNotFoundError (stream and file) and undefined from head', async () => {
    const s = store();
    await expect(s.getStream('missing/x')).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(s.getToFile('missing/x', join(work.path, 'x'))).rejects.toBeInstanceOf(ObjectNotFoundError);
    expect(await s.head('missing/x')).toBeUndefined();
  });

  it('lists every key in order across pages, and only below the prefix', async () => {
    const s = store({ pageSize: 7 });
    const keys = Array.from({ length: 25 }, (_, i) => `paged/k-${String(i).padStart(3, '0')}`);
    await Promise.all(keys.map((k) => s.putBytes(k, k)));
    await s.putBytes('pagedx/outside', 'x');
    const before = proxy.requests.length;

    const listed = await listAll(s, 'paged/');

    expect(listed.map((o) => o.key)).toStrictEqual(keys);
    expect(listed.every((o) => o.size === 11)).toBe(true);
    const pages = proxy.requests.slice(before).filter((r) => r.method === 'GET' && r.url.includes('list-type=2'));
    expect(pages.length).toBe(4); // 7 + 7 + 7 + 4
    expect(await listAll(s, 'paged/nothing-here')).toStrictEqual([]);
  });

  it('lists the immediate folders below a prefix (Delimiter /), not the objects beside them', async () => {
    // s3rver only reports a common prefix when an object sits directly below it (it does not descend
    // further with a delimiter); real S3 has no such limit. The keys here stay within what s3rver can show.
    const s = store({ pageSize: 2 });
    for (const key of [
      'folders/tenant_id=acme/a',
      'folders/tenant_id=acme/b',
      'folders/tenant_id=beta/c',
      'folders/tenant_id=gamma/d',
      'folders/README',
    ]) {
      await s.putBytes(key, 'x');
    }
    const folders: string[] = [];
    for await (const f of s.listFolders('folders/')) folders.push(f);
    expect(folders).toStrictEqual(['tenant_id=acme', 'tenant_id=beta', 'tenant_id=gamma']);
    const none: string[] = [];
    for await (const f of s.listFolders('folders/tenant_id=acme/')) none.push(f);
    expect(none).toStrictEqual([]);
  });

  it('uploads a large file as a multipart upload and a small one in a single PUT', async () => {
    const s = store({ multipartThresholdBytes: 5 * 1024 * 1024, partSizeBytes: 5 * 1024 * 1024, partConcurrency: 2 });
    const big = join(work.path, 'big.parquet');
    const content = randomBytes(11 * 1024 * 1024 + 123);
    await writeFile(big, content);
    const before = proxy.requests.length;

    const info = await s.putFile('analytics/big.parquet', big, { contentType: 'application/vnd.apache.parquet' });

    const calls = proxy.requests.slice(before);
    expect(calls.filter((r) => r.method === 'PUT' && r.url.includes('partNumber=')).length).toBe(3);
    expect(calls.some((r) => r.method === 'POST' && r.url.includes('uploadId='))).toBe(true);
    expect(info).toMatchObject({ key: 'analytics/big.parquet', size: content.byteLength });
    const back = join(work.path, 'big.back');
    await s.getToFile('analytics/big.parquet', back);
    expect((await readFile(back)).equals(content)).toBe(true);

    const small = join(work.path, 'small.bin');
    await writeFile(small, 'small');
    const beforeSmall = proxy.requests.length;
    expect(await s.putFile('analytics/small.bin', small)).toMatchObject({ key: 'analytics/small.bin', size: 5 });
    expect(proxy.requests.slice(beforeSmall).map((r) => r.method)).toStrictEqual(['PUT']);
    expect((await getBytes(s, 'analytics/small.bin')).toString()).toBe('small');
  });

  it('retries throttling (503 SlowDown) in the SDK and succeeds', async () => {
    const s = retryingStore();
    proxy.inject({ method: 'PUT', status: 503, code: 'SlowDown', times: 2 });
    const before = proxy.requests.length;
    await s.putBytes('retry/ok.txt', 'ok');
    expect(proxy.requests.slice(before).map((r) => r.method)).toStrictEqual(['PUT', 'PUT', 'PUT']);
    expect((await getBytes(s, 'retry/ok.txt')).toString()).toBe('ok');
  });

  it('attempts one call at most S3_RETRY.maxAttempts times, then gives up with a TransientStoreError naming the key', async () => {
    expect(S3_RETRY).toStrictEqual({ maxAttempts: 5, retryMode: 'adaptive' });
    const s = retryingStore();
    proxy.inject({ method: 'GET', status: 500, code: 'InternalError', times: 6 });
    const before = proxy.requests.length;
    const error = await s.getStream('retry/ok.txt').catch((e: unknown) => e);
    expect(proxy.requests.slice(before).map((r) => r.method)).toStrictEqual(['GET', 'GET', 'GET', 'GET', 'GET']);
    expect(error).toBeInstanceOf(TransientStoreError);
    expect((error as Error).message).toBe('s3://contract/retry/ok.txt: InternalError (HTTP 500)');
    expect(JSON.stringify((error as TransientStoreError).context)).not.toContain('S3RVER');
    // the sixth fault answers the next call: exactly five were used, none by a second retry loop
    const again = await s.getStream('retry/ok.txt').catch((e: unknown) => e);
    expect(again).toBeInstanceOf(Readable);
    (again as Readable).destroy();
    expect(proxy.requests.length - before).toBe(7);
  });

  it('takes a smaller maxAttempts from clientConfig, and a client passed in keeps its own (here: 1 attempt)', async () => {
    proxy.inject({ method: 'PUT', status: 503, code: 'SlowDown', times: 3 });
    const before = proxy.requests.length;
    await expect(retryingStore({ maxAttempts: 2 }).putBytes('retry/two.txt', 'x')).rejects.toBeInstanceOf(TransientStoreError);
    expect(proxy.requests.length - before).toBe(2);
    await expect(store().putBytes('retry/one.txt', 'x')).rejects.toBeInstanceOf(TransientStoreError);
    expect(proxy.requests.length - before).toBe(3);
  });

  it('maps 412 PreconditionFailed to PreconditionFailedError without retrying', async () => {
    const s = store();
    proxy.inject({ method: 'PUT', status: 412, code: 'PreconditionFailed', times: 1 });
    const before = proxy.requests.length;
    await expect(s.putBytes('cond/x', 'x', { ifNoneMatch: '*' })).rejects.toBeInstanceOf(PreconditionFailedError);
    expect(proxy.requests.length - before).toBe(1);
  });
});
