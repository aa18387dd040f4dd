import { MakotoLakeError } from '../../core/errors.js';

/** Base of the table's errors; `context.version` names the log version where it applies. */
export class TableError extends MakotoLakeError {}

/**
 * A newer commit changed a partition this commit replaces: nothing of this commit was written; the caller
 * re-plans from the new snapshot.
 */
export class CommitConflictError extends TableError {}

/** The log cannot be read as a Delta table (a torn commit, a gap in versions, an unsupported protocol). */
export class TableReadError extends TableError {}
