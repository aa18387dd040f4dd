import { truncate } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { randomSource } from '../../src/jobs/demo/chatDay.js';
import { StoreError, TransientStoreError } from '../../src/ports/store/errors.js';
import type { DeleteOptions, ObjectInfo, ObjectStore, PutOptions } from '../../src/ports/store/ObjectStore.js';

export type StoreOperation = 'list' | 'listFolders' | 'head' | 'getStream' | 'getToFile' | 'putBytes' | 'putFile' | 'delete';

export interface FaultPlan {
  /** Probability that a call fails with a transient error (half "throttled", half "503"). */
  readonly transientRate?: number;
  /** Probability that a download succeeds but leaves a truncated file (a stream that ended early). */
  readonly truncatedReadRate?: number;
  /** Extra latency per call, milliseconds. */
  readonly latencyMs?: number;
  /** Calls that always fail with a permanent error: operation plus a key substring. */
  readonly permanent?: readonly { readonly operation: StoreOperation; readonly keyContains: string }[];
  readonly seed?: number;
}

/** What the wrapper did, by kind, for the reliability report. */
export interface FaultCounts {
  calls: number;
  throttled: number;
  unavailable: number;
  truncatedReads: number;
  permanent: number;
}

/**
 * Wraps a store and injects faults: transient errors (throttling, 503), latency, truncated downloads and
 * permanent failures of chosen calls. Deterministic for a seed. Used by the reliability suite
 * (`npm run reliability`) and usable against any real store to rehearse failures.
 */
export class FaultInjectingStore implements ObjectStore {
  readonly location: string;
  readonly counts: FaultCounts = { calls: 0, throttled: 0, unavailable: 0, truncatedReads: 0, permanent: 0 };
  private readonly random: () => number;

  constructor(
    private readonly inner: ObjectStore,
    private readonly plan: FaultPlan,
  ) {
    this.location = inner.location;
    this.random = randomSource(plan.seed ?? 1);
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    await this.before('list', prefix);
    yield* this.inner.list(prefix);
  }

  async *listFolders(prefix: string): AsyncIterable<string> {
    await this.before('listFolders', prefix);
    yield* this.inner.listFolders(prefix);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    await this.before('head', key);
    return this.inner.head(key);
  }

  async getStream(key: string): Promise<Readable> {
    await this.before('getStream', key);
    return this.inner.getStream(key);
  }

  async getToFile(key: string, path: string): Promise<ObjectInfo> {
    await this.before('getToFile', key);
    const info = await this.inner.getToFile(key, path);
    if (info.size > 1 && this.random() < (this.plan.truncatedReadRate ?? 0)) {
      this.counts.truncatedReads++;
      await truncate(path, Math.floor(info.size / 2));
    }
    return info;
  }

  async putBytes(key: string, body: Uint8Array | string, options?: PutOptions): Promise<ObjectInfo> {
    await this.before('putBytes', key);
    return this.inner.putBytes(key, body, options);
  }

  async putFile(key: string, path: string, options?: PutOptions): Promise<ObjectInfo> {
    await this.before('putFile', key);
    return this.inner.putFile(key, path, options);
  }

  async delete(key: string, options?: DeleteOptions): Promise<void> {
    await this.before('delete', key);
    return this.inner.delete(key, options);
  }

  private async before(operation: StoreOperation, key: string): Promise<void> {
    this.counts.calls++;
    if (this.plan.latencyMs) await new Promise((r) => setTimeout(r, this.plan.latencyMs));
    if (this.plan.permanent?.some((p) => p.operation === operation && key.includes(p.keyContains))) {
      this.counts.permanent++;
      throw new StoreError(`injected permanent failure: ${operation} ${key}`, { context: { key, operation } });
    }
    if (this.random() < (this.plan.transientRate ?? 0)) {
      const throttled = this.random() < 0.5;
      if (throttled) this.counts.throttled++;
      else this.counts.unavailable++;
      const what = throttled ? 'SlowDown: please reduce your request rate' : '503 Service Unavailable';
      throw new TransientStoreError(`injected ${what}: ${operation} ${key}`, { context: { key, operation } });
    }
  }
}
