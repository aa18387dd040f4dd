import { MakotoLakeError } from '../errors.js';

/** Base of every storage error; `context.key` names the object. */
export class StoreError extends MakotoLakeError {
  /** True when the same call may succeed if tried again (throttling, 5xx, connection reset). */
  readonly transient: boolean = false;
}

export class ObjectNotFoundError extends StoreError {}

/** A conditional write lost: the object exists (ifNoneMatch) or changed (ifMatch). */
export class PreconditionFailedError extends StoreError {}

/** The service asked us to slow down, or failed in a way that is worth retrying. */
export class TransientStoreError extends StoreError {
  override readonly transient = true;
}
