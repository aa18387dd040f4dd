import { MakotoLakeError } from '../src/errors.js';

/** Some staging objects of a change-feed batch could not be written; the batch is retried as a whole. */
export class StagingWriteError extends MakotoLakeError {}

/** A scheduled compaction finished with failed tenants; thrown so the host's retry policy runs it again. */
export class CompactionRunError extends MakotoLakeError {}
