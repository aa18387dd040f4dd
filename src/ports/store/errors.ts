import { MakotoLakeError } from '../../core/errors.js';

/** Base of every storage error; `context.key` names the object. */
export class StoreError extends MakotoLakeError {
  /** True when the same call may succeed if tried again (throttling, 5xx, connection reset). */
  readonly transient: boolean = false;
}

export class ObjectNotFoundError extends StoreError {}

/** A conditional write lost: the object exists (ifNoneMatch) or changed (ifMatch). */
export class PreconditionFailedError extends StoreError {}

/**
 * A small JSON object whose body is not JSON (a torn or foreign write; readJson.ts); the message names the key.
 * A SyntaxError rather than a StoreError: the store answered, the content is what is wrong.
 */
export class UnreadableJsonError extends SyntaxError {
  override readonly name = 'UnreadableJsonError';
}

/** The service asked us to slow down, or failed in a way that is worth retrying. */
export class TransientStoreError extends StoreError {
  override readonly transient = true;
}
