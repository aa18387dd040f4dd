import type { Readable } from 'node:stream';
import type { DeleteOptions, ObjectInfo, ObjectStore, PutOptions } from '../src/ports/store/ObjectStore.js';

/** Store operations by the billing class they fall in (S3 and Blob both price LIST and PUT alike). */
export type RequestKind = 'LIST' | 'HEAD' | 'GET' | 'PUT' | 'DELETE';
export const REQUEST_KINDS: readonly RequestKind[] = ['LIST', 'HEAD', 'GET', 'PUT', 'DELETE'];

/** How the wrapped store turns one operation into HTTP requests (S3Store / BlobStore defaults). */
export interface RequestModel {
  /** Keys per listing page: S3 1000, Blob 5000. A listing is one request per page, at least one. */
  readonly listPageSize: number;
  /** Uploads of at least this many bytes go in parts (S3 multipart: create + parts + complete; Blob: blocks + block list). */
  readonly multipartThresholdBytes: number;
  readonly partSizeBytes: number;
  /** Extra requests of a multipart upload besides its parts (S3: 2, Blob: 1). */
  readonly multipartOverhead: number;
}

const MIB = 1024 * 1024;
/** stores/s3/S3Store.ts defaults. */
export const S3_REQUEST_MODEL: RequestModel = {
  listPageSize: 1000,
  multipartThresholdBytes: 16 * MIB,
  partSizeBytes: 8 * MIB,
  multipartOverhead: 2,
};
/** stores/blob/BlobStore.ts defaults. */
export const BLOB_REQUEST_MODEL: RequestModel = {
  listPageSize: 5000,
  multipartThresholdBytes: 32 * MIB + 1,
  partSizeBytes: 8 * MIB,
  multipartOverhead: 1,
};

export interface OperationCounts {
  /** Calls of each operation, by kind (listFolders counts as LIST, getStream/getToFile as GET). */
  readonly operations: Record<RequestKind, number>;
  /** Keys returned by listings. */
  readonly listed: number;
  readonly bytesRead: number;
  readonly bytesWritten: number;
}

/**
 * The area of the store a key (or listing prefix) belongs to, for counts by area: the table's log
 * (`analytics/messages/_delta_log`), or the first two segments (`staging/messages`, `locks/messages`, ...).
 */
export function storeArea(key: string): string {
  if (key.includes('/_delta_log/')) return `${key.slice(0, key.indexOf('/_delta_log/'))}/_delta_log`;
  const parts = key.split('/');
  return parts.length > 2 ? parts.slice(0, 2).join('/') : parts.slice(0, -1).join('/') || key;
}

/**
 * Counts every operation that goes through it, then forwards it unchanged. `requests()` turns the counts
 * into HTTP requests with the wrapped store's paging and multipart rules (a decorator sees one `list()`
 * call, the service sees one request per page).
 */
export class CountingStore implements ObjectStore {
  readonly location: string;
  private readonly ops: Record<RequestKind, number> = { LIST: 0, HEAD: 0, GET: 0, PUT: 0, DELETE: 0 };
  /** Keys seen per listing call, for the page arithmetic. */
  private readonly listings: number[] = [];
  private readonly putSizes: number[] = [];
  private bytesRead = 0;
  /** Operations by store area (storeArea) and kind. */
  private readonly areas = new Map<string, Record<RequestKind, number>>();

  constructor(private readonly inner: ObjectStore) {
    this.location = inner.location;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    this.count('LIST', prefix);
    const at = this.listings.push(0) - 1;
    for await (const info of this.inner.list(prefix)) {
      this.listings[at] = (this.listings[at] ?? 0) + 1;
      yield info;
    }
  }

  async *listFolders(prefix: string): AsyncIterable<string> {
    this.count('LIST', prefix);
    const at = this.listings.push(0) - 1;
    for await (const name of this.inner.listFolders(prefix)) {
      this.listings[at] = (this.listings[at] ?? 0) + 1;
      yield name;
    }
  }

  head(key: string): Promise<ObjectInfo | undefined> {
    this.count('HEAD', key);
    return this.inner.head(key);
  }

  async getStream(key: string): Promise<Readable> {
    this.count('GET', key);
    const stream = await this.inner.getStream(key);
    stream.on('data', (chunk: Uint8Array) => {
      this.bytesRead += chunk.byteLength;
    });
    return stream;
  }

  async getToFile(key: string, path: string): Promise<ObjectInfo> {
    this.count('GET', key);
    const info = await this.inner.getToFile(key, path);
    this.bytesRead += info.size;
    return info;
  }

  async putBytes(key: string, body: Uint8Array | string, options?: PutOptions): Promise<ObjectInfo> {
    this.count('PUT', key);
    const info = await this.inner.putBytes(key, body, options);
    this.putSizes.push(info.size);
    return info;
  }

  async putFile(key: string, path: string, options?: PutOptions): Promise<ObjectInfo> {
    this.count('PUT', key);
    const info = await this.inner.putFile(key, path, options);
    this.putSizes.push(info.size);
    return info;
  }

  delete(key: string, options?: DeleteOptions): Promise<void> {
    this.count('DELETE', key);
    return this.inner.delete(key, options);
  }

  private count(kind: RequestKind, key: string): void {
    this.ops[kind]++;
    const area = storeArea(key);
    const counts = this.areas.get(area) ?? { LIST: 0, HEAD: 0, GET: 0, PUT: 0, DELETE: 0 };
    counts[kind]++;
    this.areas.set(area, counts);
  }

  /** Operations by store area, areas in key order. */
  byArea(): Record<string, Record<RequestKind, number>> {
    return Object.fromEntries([...this.areas].sort(([a], [b]) => (a < b ? -1 : 1)).map(([area, c]) => [area, { ...c }]));
  }

  counts(): OperationCounts {
    return {
      operations: { ...this.ops },
      listed: this.listings.reduce((n, k) => n + k, 0),
      bytesRead: this.bytesRead,
      bytesWritten: this.putSizes.reduce((n, s) => n + s, 0),
    };
  }

  /** HTTP requests by kind under `model` (HEAD is billed like GET on S3 and like a read on Blob). */
  requests(model: RequestModel): Record<RequestKind, number> {
    const pages = this.listings.reduce((n, keys) => n + Math.max(1, Math.ceil(keys / model.listPageSize)), 0);
    const puts = this.putSizes.reduce(
      (n, size) =>
        n + (size < model.multipartThresholdBytes ? 1 : Math.ceil(size / model.partSizeBytes) + model.multipartOverhead),
      0,
    );
    return { LIST: pages, HEAD: this.ops.HEAD, GET: this.ops.GET, PUT: puts, DELETE: this.ops.DELETE };
  }

  reset(): void {
    for (const kind of REQUEST_KINDS) this.ops[kind] = 0;
    this.listings.length = 0;
    this.putSizes.length = 0;
    this.bytesRead = 0;
    this.areas.clear();
  }
}
