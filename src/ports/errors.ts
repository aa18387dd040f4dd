import { MakotoLakeError } from '../core/errors.js';

/** A redrive could not complete (a malformed on-failure message, the stream unreadable, staging not written). */
export class RedriveError extends MakotoLakeError {}

/** The batch's records are no longer in the stream (kept 24 hours): only a backfill can bring them back. */
export class RecordsAgedOutError extends RedriveError {}
