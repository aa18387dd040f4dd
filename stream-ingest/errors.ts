import { MakotoLakeError } from '../src/core/errors.js';
import { TransientStoreError } from '../src/ports/store/errors.js';

/** No record of a stream batch could be stored: the invocation fails as a whole so Lambda retries it. */
export class StreamBatchFailedError extends MakotoLakeError {}

/** Firehose kept refusing some records after every retry (throttled, service errors). */
export class FirehoseDeliveryError extends TransientStoreError {}
