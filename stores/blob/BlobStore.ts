import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { TokenCredential } from '@azure/identity';
import {
  type BlobRequestConditions,
  BlobServiceClient,
  type ContainerClient,
  type StoragePipelineOptions,
  StorageRetryPolicyType,
} from '@azure/storage-blob';
import { ObjectNotFoundError, PreconditionFailedError, StoreError, TransientStoreError } from '../../src/ports/store/errors.js';
import type { DeleteOptions, ObjectInfo, ObjectStore, PutOptions } from '../../src/ports/store/ObjectStore.js';

/** Tuning knobs; the defaults suit Parquet files of a few hundred MB. Tests make them small. */
export interface BlobStoreOptions {
  /** Blobs per listing page (the service caps it at 5000). */
  readonly pageSize?: number;
  /** Files larger than this are uploaded as parallel blocks. Default 32 MiB. */
  readonly maxSingleShotSize?: number;
  /** Block size for parallel uploads. Default 8 MiB. */
  readonly blockSize?: number;
  /** Blocks in flight per upload. Default 4. */
  readonly concurrency?: number;
  /** Retries of a broken download stream (the SDK resumes from the last byte). Default 5. */
  readonly downloadRetries?: number;
}

/** Where the container is: an existing client, or what to build one from. */
export type BlobStoreTarget =
  | { readonly containerClient: ContainerClient }
  | { readonly serviceClient: BlobServiceClient; readonly containerName: string }
  | { readonly connectionString: string; readonly containerName: string }
  | { readonly accountUrl: string; readonly credential: TokenCredential; readonly containerName: string };

/**
 * Retries live in the SDK's pipeline only (exponential, 5 tries, on 5xx, 408/429-style throttling and
 * connection errors), so the store never stacks a second retry loop on top. Applied to the clients this
 * module builds; a client passed in keeps the caller's policy.
 */
export const BLOB_PIPELINE_OPTIONS: StoragePipelineOptions = {
  retryOptions: {
    retryPolicyType: StorageRetryPolicyType.EXPONENTIAL,
    maxTries: 5,
    retryDelayInMs: 500,
    maxRetryDelayInMs: 30_000,
    tryTimeoutInMs: 10 * 60_000,
  },
};

const DEFAULTS = {
  pageSize: 5000,
  maxSingleShotSize: 32 * 1024 * 1024,
  blockSize: 8 * 1024 * 1024,
  concurrency: 4,
  downloadRetries: 5,
} as const;

/**
 * Azure Blob Storage as the object store: one container is the root; keys are blob names.
 *
 * @example
 * const store = new BlobStore({ connectionString: env.AZURE_STORAGE_CONNECTION_STRING, containerName: 'makoto' });
 * for await (const info of store.list('staging/messages/')) console.log(info.key);
 */
export class BlobStore implements ObjectStore {
  readonly location: string;
  readonly container: ContainerClient;
  private readonly options: Required<BlobStoreOptions>;
  /** The one creation of a missing container that concurrent first writes wait for (reset if it failed). */
  private containerCreated: Promise<void> | undefined;

  constructor(target: BlobStoreTarget, options: BlobStoreOptions = {}) {
    this.container = containerOf(target);
    this.options = { ...DEFAULTS, ...options };
    // The URL without its query: a SAS token never reaches a log line.
    const url = new URL(this.container.url);
    this.location = `${url.protocol}//${url.host}${url.pathname}`;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const pages = this.container.listBlobsFlat({ prefix }).byPage({ maxPageSize: this.options.pageSize });
    try {
      for await (const page of pages) {
        for (const blob of page.segment.blobItems) {
          yield {
            key: blob.name,
            size: blob.properties.contentLength ?? 0,
            etag: quoted(blob.properties.etag),
            lastModified: blob.properties.lastModified,
          };
        }
      }
    } catch (error) {
      if (isContainerMissing(error)) return;
      throw this.wrap(error, `cannot list ${prefix}`, prefix);
    }
  }

  async *listFolders(prefix: string): AsyncIterable<string> {
    const pages = this.container.listBlobsByHierarchy('/', { prefix }).byPage({ maxPageSize: this.options.pageSize });
    try {
      for await (const page of pages) {
        for (const folder of page.segment.blobPrefixes ?? []) yield folder.name.slice(prefix.length).replace(/\/$/, '');
      }
    } catch (error) {
      if (isContainerMissing(error)) return;
      throw this.wrap(error, `cannot list folders of ${prefix}`, prefix);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const p = await this.container.getBlobClient(key).getProperties();
      return { key, size: p.contentLength ?? 0, etag: quoted(p.etag), lastModified: p.lastModified ?? new Date(0) };
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw this.wrap(error, `cannot read properties of ${key}`, key);
    }
  }

  async getStream(key: string): Promise<Readable> {
    try {
      const response = await this.container
        .getBlobClient(key)
        .download(0, undefined, { maxRetryRequests: this.options.downloadRetries });
      const body = response.readableStreamBody;
      if (!body) throw new StoreError(`download of ${key} returned no body`, { context: { key } });
      return body as Readable;
    } catch (error) {
      throw this.wrap(error, `cannot read ${key}`, key);
    }
  }

  async getToFile(key: string, path: string): Promise<ObjectInfo> {
    try {
      // Streams to the file (never buffers the blob), resuming broken streams from the last byte.
      const r = await this.container
        .getBlobClient(key)
        .downloadToFile(path, 0, undefined, { maxRetryRequests: this.options.downloadRetries });
      return { key, size: r.contentLength ?? 0, etag: quoted(r.etag), lastModified: r.lastModified ?? new Date(0) };
    } catch (error) {
      throw this.wrap(error, `cannot download ${key}`, key);
    }
  }

  async putBytes(key: string, body: Uint8Array | string, options: PutOptions = {}): Promise<ObjectInfo> {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    return this.write(key, options, async () => {
      const r = await this.container.getBlockBlobClient(key).upload(bytes, bytes.byteLength, {
        abortSignal: options.signal,
        conditions: conditionsOf(options),
        blobHTTPHeaders: options.contentType ? { blobContentType: options.contentType } : undefined,
      });
      return { key, size: bytes.byteLength, etag: quoted(r.etag), lastModified: r.lastModified ?? new Date() };
    });
  }

  async putFile(key: string, path: string, options: PutOptions = {}): Promise<ObjectInfo> {
    const { size } = await stat(path);
    return this.write(key, options, async () => {
      // Above maxSingleShotSize the SDK stages blocks in parallel and commits the block list; the
      // condition applies to the commit, so a lost race never replaces the object.
      const r = await this.container.getBlockBlobClient(key).uploadFile(path, {
        blockSize: this.options.blockSize,
        maxSingleShotSize: this.options.maxSingleShotSize,
        concurrency: this.options.concurrency,
        abortSignal: options.signal,
        conditions: conditionsOf(options),
        blobHTTPHeaders: options.contentType ? { blobContentType: options.contentType } : undefined,
      });
      return { key, size, etag: quoted(r.etag), lastModified: r.lastModified ?? new Date() };
    });
  }

  async delete(key: string, options: DeleteOptions = {}): Promise<void> {
    try {
      await this.container.getBlobClient(key).deleteIfExists({ deleteSnapshots: 'include', conditions: conditionsOf(options) });
    } catch (error) {
      if (isContainerMissing(error)) return;
      throw this.wrap(error, `cannot delete ${key}`, key, options);
    }
  }

  /**
   * Runs a write; a missing container is created (first run against a fresh account) and the write
   * repeated. Parallel first writes all wait for the same creation instead of racing it.
   */
  private async write(key: string, options: PutOptions, put: () => Promise<ObjectInfo>): Promise<ObjectInfo> {
    try {
      return await put();
    } catch (error) {
      if (isContainerMissing(error)) {
        try {
          this.containerCreated ??= this.container.createIfNotExists().then(
            () => undefined,
            (createError: unknown) => {
              this.containerCreated = undefined;
              throw createError;
            },
          );
          await this.containerCreated;
          return await put();
        } catch (retryError) {
          throw this.wrap(retryError, `cannot write ${key}`, key, options);
        }
      }
      throw this.wrap(error, `cannot write ${key}`, key, options);
    }
  }

  /** Vendor errors the caller can act on become ours; the SDK error stays as the cause. */
  private wrap(error: unknown, message: string, key: string, put?: PutOptions): Error {
    if (error instanceof StoreError) return error;
    const status = statusOf(error);
    const code = (error as { code?: string })?.code;
    const context = { key, location: this.location, status, code };
    if (put && (put.ifNoneMatch || put.ifMatch) && (status === 409 || status === 412)) {
      const why = put.ifNoneMatch ? 'already exists' : `changed (ifMatch ${put.ifMatch})`;
      return new PreconditionFailedError(`${key} ${why}`, { cause: error, context });
    }
    if (status === 404) return new ObjectNotFoundError(`object not found: ${key}`, { cause: error, context });
    if (status === undefined || status === 408 || status === 429 || status >= 500) {
      return new TransientStoreError(`${message} (${code ?? status ?? 'no response'})`, { cause: error, context });
    }
    return new StoreError(`${message} (${code ?? status})`, { cause: error, context });
  }
}

function containerOf(target: BlobStoreTarget): ContainerClient {
  if ('containerClient' in target) return target.containerClient;
  if ('serviceClient' in target) return target.serviceClient.getContainerClient(target.containerName);
  if ('connectionString' in target) {
    return BlobServiceClient.fromConnectionString(target.connectionString, BLOB_PIPELINE_OPTIONS).getContainerClient(
      target.containerName,
    );
  }
  return new BlobServiceClient(target.accountUrl, target.credential, BLOB_PIPELINE_OPTIONS).getContainerClient(
    target.containerName,
  );
}

function conditionsOf(options: PutOptions): BlobRequestConditions | undefined {
  if (options.ifNoneMatch === '*') return { ifNoneMatch: '*' };
  if (options.ifMatch !== undefined) return { ifMatch: options.ifMatch };
  return undefined;
}

/** Listings return ETags bare, responses quoted; one form (quoted, as in HTTP headers) for ifMatch. */
function quoted(etag: string | undefined): string {
  if (!etag) return '';
  return etag.startsWith('"') ? etag : `"${etag}"`;
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown })?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

function isContainerMissing(error: unknown): boolean {
  return statusOf(error) === 404 && (error as { code?: string })?.code === 'ContainerNotFound';
}
