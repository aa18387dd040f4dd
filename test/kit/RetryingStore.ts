import type { Readable } from 'node:stream';
import { DEFAULT_RETRY, type RetryPolicy, withRetry } from '../../src/core/util/retry.js';
import { StoreError } from '../../src/ports/store/errors.js';
import type { DeleteOptions, ObjectInfo, ObjectStore, PutOptions } from '../../src/ports/store/ObjectStore.js';

/**
 * Retries every operation of another store on transient errors (StoreError.transient: throttling, 5xx,
 * short reads) with capped exponential backoff, jitter and a total deadline. Listings restart from the
 * beginning. Other errors – not found, precondition failed, permanent failures – pass through at once.
 */
export class RetryingStore implements ObjectStore {
  readonly location: string;

  constructor(
    private readonly inner: ObjectStore,
    private readonly policy: RetryPolicy = DEFAULT_RETRY,
  ) {
    this.location = inner.location;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    yield* await this.retry(async () => {
      const all: ObjectInfo[] = [];
      for await (const info of this.inner.list(prefix)) all.push(info);
      return all;
    });
  }

  async *listFolders(prefix: string): AsyncIterable<string> {
    yield* await this.retry(async () => {
      const all: string[] = [];
      for await (const name of this.inner.listFolders(prefix)) all.push(name);
      return all;
    });
  }

  head(key: string): Promise<ObjectInfo | undefined> {
    return this.retry(() => this.inner.head(key));
  }

  getStream(key: string): Promise<Readable> {
    return this.retry(() => this.inner.getStream(key));
  }

  getToFile(key: string, path: string): Promise<ObjectInfo> {
    return this.retry(() => this.inner.getToFile(key, path));
  }

  putBytes(key: string, body: Uint8Array | string, options?: PutOptions): Promise<ObjectInfo> {
    return this.retry(() => this.inner.putBytes(key, body, options));
  }

  putFile(key: string, path: string, options?: PutOptions): Promise<ObjectInfo> {
    return this.retry(() => this.inner.putFile(key, path, options));
  }

  delete(key: string, options?: DeleteOptions): Promise<void> {
    return this.retry(() => this.inner.delete(key, options));
  }

  private retry<T>(operation: () => Promise<T>): Promise<T> {
    return withRetry(operation, (error) => error instanceof StoreError && error.transient, this.policy);
  }
}
