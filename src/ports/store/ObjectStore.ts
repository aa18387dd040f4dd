import type { Readable } from 'node:stream';
import { gzipNdjson } from '../../core/staging/ndjson.js';
import { DEFAULT_RETRY, type RetryPolicy, withRetry } from '../../core/util/retry.js';
import { PreconditionFailedError, StoreError } from './errors.js';

/** What a listing or a write tells about one object. */
export interface ObjectInfo {
  /** Key relative to the store's root, '/'-separated, e.g. `staging/messages/tenant_id=a/dt=2025-08-11/x.ndjson.gz`. */
  readonly key: string;
  readonly size: number;
  /** Opaque version tag; changes whenever the object's content is replaced. */
  readonly etag: string;
  readonly lastModified: Date;
}

/** Conditions for a write. `ifNoneMatch: '*'` creates only; `ifMatch` replaces only that version. */
export interface PutOptions {
  readonly ifNoneMatch?: '*';
  readonly ifMatch?: string;
  readonly contentType?: string;
  /**
   * Stops the transfer when it aborts (a lost lease, a stopped run): the object is then not written, or — if
   * the store had already taken it — written whole; never half. The put rejects with the signal's reason.
   */
  readonly signal?: AbortSignal;
}

/** Condition for a delete: `ifMatch` deletes only that version (a lease's own release). */
export interface DeleteOptions {
  readonly ifMatch?: string;
}

/**
 * The one interface through which everything touches storage. The local directory, S3 and Azure Blob
 * are three implementations; the core never knows which one it has.
 */
export interface ObjectStore {
  /** Human-readable location for logs, e.g. `file:///data` or `s3://bucket`. Never contains credentials. */
  readonly location: string;
  /** Every object whose key starts with `prefix`, in key order, paging as needed. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** The names of the immediate "folders" below `prefix` (which ends in '/'), without the trailing '/'. */
  listFolders(prefix: string): AsyncIterable<string>;
  /** The object's info, or undefined if it does not exist. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Streams the object's content. Throws ObjectNotFoundError. */
  getStream(key: string): Promise<Readable>;
  /** Downloads the object to a local file (created or replaced). Throws ObjectNotFoundError. */
  getToFile(key: string, path: string): Promise<ObjectInfo>;
  /** Writes a small object from memory. Throws PreconditionFailedError when a condition does not hold. */
  putBytes(key: string, body: Uint8Array | string, options?: PutOptions): Promise<ObjectInfo>;
  /** Uploads a local file (multipart/block upload for large files). */
  putFile(key: string, path: string, options?: PutOptions): Promise<ObjectInfo>;
  /**
   * Deletes the object; deleting a missing object is not an error. With `ifMatch`, throws
   * PreconditionFailedError when the object is another version (stores that ignore conditions: s3rver).
   */
  delete(key: string, options?: DeleteOptions): Promise<void>;
}

/** Reads a whole (small) object into memory. */
export async function getBytes(store: ObjectStore, key: string, retry: RetryPolicy = DEFAULT_RETRY): Promise<Buffer> {
  // a transient failure while the body streams (a dropped connection) is retried like a throttled call
  return withRetry(
    async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of await store.getStream(key)) chunks.push(Buffer.from(chunk as Uint8Array));
      return Buffer.concat(chunks);
    },
    (error) => error instanceof StoreError && error.transient,
    retry,
  );
}

/** Collects a listing into an array. */
/** Writes `lines` as one gzip NDJSON object (staging, quarantine, pending deletes: the lake's one line format). */
export function putNdjson(
  store: ObjectStore,
  key: string,
  lines: readonly unknown[],
  options: Omit<PutOptions, 'contentType'> = {},
): Promise<ObjectInfo> {
  return store.putBytes(key, gzipNdjson(lines), { ...options, contentType: 'application/x-ndjson' });
}

export async function listAll(store: ObjectStore, prefix: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const info of store.list(prefix)) out.push(info);
  return out;
}

/**
 * Creates an object under a key unique to its writer's attempt, put-if-absent (`put` gets the options to
 * use); the transfer stops when `signal` aborts, and then fails with the signal's reason. A "precondition
 * failed" can only be this attempt's own earlier write whose reply was lost (the SDK retried it): it counts
 * as written.
 */
export async function createOnce(
  store: ObjectStore,
  key: string,
  signal: AbortSignal,
  put: (options: PutOptions) => Promise<ObjectInfo>,
): Promise<ObjectInfo> {
  try {
    return await put({ ifNoneMatch: '*', signal });
  } catch (error) {
    signal.throwIfAborted();
    if (!(error instanceof PreconditionFailedError)) throw error;
    const info = await store.head(key);
    if (!info) throw new StoreError(`${key} was refused as existing but is not there`, { cause: error, context: { key } });
    return info;
  }
}
