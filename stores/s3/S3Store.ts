import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ObjectNotFoundError } from '../../src/ports/store/errors.js';
import type { DeleteOptions, ObjectInfo, ObjectStore, PutOptions } from '../../src/ports/store/ObjectStore.js';
import { s3Error } from './s3Errors.js';

export interface S3StoreOptions {
  readonly bucket: string;
  /** An existing client (tests, custom credentials). Built from `clientConfig` when absent. */
  readonly client?: S3Client;
  /**
   * Settings for the client built when none is given, over S3_RETRY; credentials come from the SDK's default
   * chain unless given.
   */
  readonly clientConfig?: Pick<
    S3ClientConfig,
    'region' | 'endpoint' | 'forcePathStyle' | 'credentials' | 'maxAttempts' | 'retryMode'
  >;
  /** MaxKeys per ListObjectsV2 page (S3 caps it at 1000). */
  readonly pageSize?: number;
  /** Files at least this big go up as a multipart upload. Default 16 MiB. */
  readonly multipartThresholdBytes?: number;
  /** Part size of multipart uploads (S3 minimum 5 MiB). Default 8 MiB. */
  readonly partSizeBytes?: number;
  /** Parts of one multipart upload in flight at once. Default 4. */
  readonly partConcurrency?: number;
}

const MIB = 1024 * 1024;

/**
 * The store's only retry layer is the SDK's: adaptive mode (the standard retry strategy – exponential
 * backoff with jitter on throttling such as SlowDown, 5xx, timeouts and dropped connections – plus client-side
 * rate limiting after throttling), at most 5 attempts per call, as BlobStore configures its pipeline. Applied
 * to the clients this module builds; a client passed in keeps the caller's policy. Not retried by anyone
 * here: a body stream that breaks after the answer arrived (compaction's verified download retries that).
 */
export const S3_RETRY = { maxAttempts: 5, retryMode: 'adaptive' } as const satisfies Pick<
  S3ClientConfig,
  'maxAttempts' | 'retryMode'
>;

/**
 * An S3 bucket (or any S3-compatible server) as the object store. Keys are the bucket's keys; listings
 * page through ListObjectsV2; large files go up with a multipart upload; downloads stream to disk.
 * The SDK retries throttling and 5xx answers (S3_RETRY); what persists surfaces as TransientStoreError;
 * 404 becomes ObjectNotFoundError and 412 PreconditionFailedError.
 *
 * @example
 * const store = new S3Store({ bucket: 'makoto-lake', clientConfig: { region: 'ap-northeast-1' } });
 * for await (const info of store.list('staging/messages/')) console.log(info.key);
 */
export class S3Store implements ObjectStore {
  /** `s3://bucket`: no endpoint, no credentials, so it is safe in any log line. */
  readonly location: string;
  readonly bucket: string;
  private readonly client: S3Client;
  private readonly pageSize: number;
  private readonly multipartThreshold: number;
  private readonly partSize: number;
  private readonly partConcurrency: number;

  constructor(options: S3StoreOptions) {
    this.bucket = options.bucket;
    this.location = `s3://${options.bucket}`;
    this.client = options.client ?? new S3Client({ ...S3_RETRY, ...options.clientConfig });
    this.pageSize = Math.min(1000, Math.max(1, options.pageSize ?? 1000));
    this.partSize = Math.max(5 * MIB, options.partSizeBytes ?? 8 * MIB);
    this.multipartThreshold = Math.max(this.partSize, options.multipartThresholdBytes ?? 16 * MIB);
    this.partConcurrency = Math.max(1, options.partConcurrency ?? 4);
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let token: string | undefined;
    do {
      const page = await this.call(prefix, () =>
        this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, MaxKeys: this.pageSize, ContinuationToken: token }),
        ),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined) continue;
        yield {
          key: object.Key,
          size: object.Size ?? 0,
          etag: bareEtag(object.ETag),
          lastModified: object.LastModified ?? new Date(0),
        };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async *listFolders(prefix: string): AsyncIterable<string> {
    let token: string | undefined;
    do {
      const page = await this.call(prefix, () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            Delimiter: '/',
            MaxKeys: this.pageSize,
            ContinuationToken: token,
          }),
        ),
      );
      for (const common of page.CommonPrefixes ?? []) {
        const name = common.Prefix?.slice(prefix.length, -1);
        if (name) yield name;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const out = await this.call(key, () => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key })));
      return { key, size: out.ContentLength ?? 0, etag: bareEtag(out.ETag), lastModified: out.LastModified ?? new Date(0) };
    } catch (error) {
      if (error instanceof ObjectNotFoundError) return undefined;
      throw error;
    }
  }

  async getStream(key: string): Promise<Readable> {
    const out = await this.call(key, () => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key })));
    // a connection dropped while the body streams fails after this call returned: the reader gets it as a
    // store error too (ECONNRESET → transient), not as a bare Node `aborted`
    const body = new PassThrough();
    (out.Body as Readable).once('error', (error) => body.destroy(s3Error(error, this.bucket, key))).pipe(body);
    return body;
  }

  /** Streams the object to `path`. */
  async getToFile(key: string, path: string): Promise<ObjectInfo> {
    return this.call(key, async () => {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      await pipeline(out.Body as Readable, createWriteStream(path));
      return { key, size: out.ContentLength ?? 0, etag: bareEtag(out.ETag), lastModified: out.LastModified ?? new Date(0) };
    });
  }

  /** `lastModified` of the result is this machine's clock (S3 does not return it on a write). */
  async putBytes(key: string, body: Uint8Array | string, options: PutOptions = {}): Promise<ObjectInfo> {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    const out = await this.call(key, () =>
      this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: bytes, ...conditions(options) }),
        aborting(options),
      ),
    );
    return { key, size: bytes.byteLength, etag: bareEtag(out.ETag), lastModified: new Date() };
  }

  /** Small files in one PUT; from `multipartThresholdBytes` on, a multipart upload with parallel parts. */
  async putFile(key: string, path: string, options: PutOptions = {}): Promise<ObjectInfo> {
    const { size } = await stat(path);
    const params = { Bucket: this.bucket, Key: key, ...conditions(options) };
    const out = await this.call(key, async () => {
      options.signal?.throwIfAborted();
      if (size < this.multipartThreshold) {
        // In memory (below the threshold): the SDK then sends the checksum as a header instead of an
        // aws-chunked stream with a trailer, which S3-compatible servers such as s3rver store verbatim.
        return this.client.send(new PutObjectCommand({ ...params, Body: await readFile(path) }), aborting(options));
      }
      const upload = new Upload({
        client: this.client,
        params: { ...params, Body: createReadStream(path) },
        partSize: this.partSize,
        queueSize: this.partConcurrency,
        leavePartsOnError: false,
      });
      // an aborted multipart upload is never completed: the object stays unwritten
      const abort = () => void upload.abort();
      options.signal?.addEventListener('abort', abort, { once: true });
      try {
        return await upload.done();
      } finally {
        options.signal?.removeEventListener('abort', abort);
      }
    });
    return { key, size, etag: bareEtag(out.ETag), lastModified: new Date() };
  }

  async delete(key: string, options: DeleteOptions = {}): Promise<void> {
    const condition = options.ifMatch === undefined ? {} : { IfMatch: `"${bareEtag(options.ifMatch)}"` };
    try {
      await this.call(key, () => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key, ...condition })));
    } catch (error) {
      if (!(error instanceof ObjectNotFoundError)) throw error;
    }
  }

  /** Runs one S3 call (the SDK retries it) and maps what it finally throws to our store errors. */
  private async call<T>(key: string, operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw s3Error(error, this.bucket, key);
    }
  }
}

/** The SDK's per-call options for a put: its abort signal, when it has one. */
const aborting = (options: PutOptions) => (options.signal ? { abortSignal: options.signal } : {});

function conditions(options: PutOptions) {
  return {
    ...(options.contentType === undefined ? {} : { ContentType: options.contentType }),
    ...(options.ifNoneMatch === undefined ? {} : { IfNoneMatch: options.ifNoneMatch }),
    ...(options.ifMatch === undefined ? {} : { IfMatch: `"${bareEtag(options.ifMatch)}"` }),
  };
}

/** S3 quotes ETags; ours are bare (and quoted again for If-Match). */
function bareEtag(etag: string | undefined): string {
  return (etag ?? '').replace(/^"|"$/g, '');
}
