import { MakotoLakeError } from '../../core/errors.js';

/** Backfilling one tenant-day failed (reading the source or writing staging). */
export class BackfillError extends MakotoLakeError {}
