import { MakotoLakeError } from '../src/core/errors.js';

/** Some staging objects of a change-feed batch could not be written; the batch is retried as a whole. */
export class StagingWriteError extends MakotoLakeError {}

/** One queued compaction job failed; thrown so the host retries the message (then moves it to the poison queue). */
export class CompactionJobError extends MakotoLakeError {}
