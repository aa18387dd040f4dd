import { MakotoLakeError } from '../errors.js';

/** A redrive could not complete (a malformed on-failure message, the stream unreadable, staging not written). */
export class RedriveError extends MakotoLakeError {}

/** An on-failure message that is not a DynamoDB Streams batch description. */
export class FailureMessageError extends RedriveError {}

/** The batch's records are no longer in the stream (kept 24 hours): only a backfill can bring them back. */
export class RecordsAgedOutError extends RedriveError {}
