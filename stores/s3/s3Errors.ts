import { ObjectNotFoundError, PreconditionFailedError, StoreError, TransientStoreError } from '../../src/ports/store/errors.js';

/** What the SDK's service exceptions and network errors carry that we look at. */
interface AwsErrorLike {
  name?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

const NOT_FOUND = new Set(['NoSuchKey', 'NotFound']);
const THROTTLED = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'ServiceUnavailable',
  'InternalError',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  // Two conditional writes raced for one key; S3 asks the loser to retry.
  'ConditionalRequestConflict',
]);
const NETWORK = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/**
 * Maps what the S3 SDK threw to our store errors: not found (404) and precondition failed (412) the
 * caller acts on; throttling, 5xx and dropped connections are transient (worth another try); anything
 * else (access denied, no such bucket) is a plain StoreError. The cause is always kept; messages name the
 * bucket and key, never an endpoint or a credential.
 */
export function s3Error(error: unknown, bucket: string, key: string): Error {
  if (error instanceof StoreError) return error;
  const e = (error ?? {}) as AwsErrorLike;
  const status = e.$metadata?.httpStatusCode;
  const name = e.name ?? 'Error';
  const context = { bucket, key, status };
  const what = `s3://${bucket}/${key}`;
  if (name === 'NoSuchBucket') return new StoreError(`bucket ${bucket} does not exist`, { cause: error, context });
  if (NOT_FOUND.has(name) || status === 404) {
    return new ObjectNotFoundError(`object not found: ${key}`, { cause: error, context });
  }
  if (name === 'PreconditionFailed' || status === 412) {
    return new PreconditionFailedError(`${what}: precondition failed`, { cause: error, context });
  }
  if (
    THROTTLED.has(name) ||
    (status !== undefined && (status === 429 || status >= 500)) ||
    NETWORK.has(e.code ?? '') ||
    NETWORK.has(name) ||
    e.$retryable !== undefined
  ) {
    return new TransientStoreError(`${what}: ${name}${status ? ` (HTTP ${status})` : ''}`, { cause: error, context });
  }
  return new StoreError(`${what}: ${name}${status ? ` (HTTP ${status})` : ''}: ${(error as Error)?.message ?? ''}`, {
    cause: error,
    context,
  });
}
