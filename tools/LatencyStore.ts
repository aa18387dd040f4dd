import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DeleteOptions, ObjectInfo, ObjectStore, PutOptions } from '../src/ports/store/ObjectStore.js';

/**
 * Adds a fixed delay to every request before forwarding it unchanged, so a run on the local store behaves
 * as it would against a bucket in the same region (S3 from Lambda: ~10–30 ms per small request). A listing
 * pays the delay once per page of `listPageSize` keys (S3 1000), as the service would; a transfer pays it
 * once (the bench's objects are small: bandwidth is not modelled).
 *
 * @example
 * const store = new CountingStore(new LatencyStore(new LocalStore(root), 20));
 */
export class LatencyStore implements ObjectStore {
  readonly location: string;

  constructor(
    private readonly inner: ObjectStore,
    readonly delayMs: number,
    private readonly listPageSize = 1000,
  ) {
    this.location = inner.location;
  }

  private wait(): Promise<void> {
    return this.delayMs > 0 ? sleep(this.delayMs) : Promise.resolve();
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    await this.wait();
    let n = 0;
    for await (const info of this.inner.list(prefix)) {
      if (n > 0 && n % this.listPageSize === 0) await this.wait();
      n++;
      yield info;
    }
  }

  async *listFolders(prefix: string): AsyncIterable<string> {
    await this.wait();
    yield* this.inner.listFolders(prefix);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    await this.wait();
    return this.inner.head(key);
  }

  async getStream(key: string): Promise<Readable> {
    await this.wait();
    return this.inner.getStream(key);
  }

  async getToFile(key: string, path: string): Promise<ObjectInfo> {
    await this.wait();
    return this.inner.getToFile(key, path);
  }

  async putBytes(key: string, body: Uint8Array | string, options?: PutOptions): Promise<ObjectInfo> {
    await this.wait();
    return this.inner.putBytes(key, body, options);
  }

  async putFile(key: string, path: string, options?: PutOptions): Promise<ObjectInfo> {
    await this.wait();
    return this.inner.putFile(key, path, options);
  }

  async delete(key: string, options?: DeleteOptions): Promise<void> {
    await this.wait();
    return this.inner.delete(key, options);
  }
}
