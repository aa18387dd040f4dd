/**
 * The project's error family. Every error we throw sets `name`, keeps the `cause`, and carries the
 * context a reader of the log needs (tenant, date, object key) in `context`.
 */
export class MakotoLakeError extends Error {
  readonly context: Readonly<Record<string, unknown>>;

  constructor(message: string, options: { cause?: unknown; context?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.context = options.context ?? {};
  }
}

/** A malformed or missing setting (environment variable, CLI flag, payload field). */
export class ConfigError extends MakotoLakeError {}

/** Input a caller gave us that can never succeed as given (bad date, bad tenant id). Maps to exit 2 / HTTP 400. */
export class UsageError extends MakotoLakeError {}

/** A tenant id that may not become part of a path or a statement. */
export class InvalidTenantError extends UsageError {}

/** A record that can never be accepted; it is quarantined with this message as the reason. */
export class RejectedRecordError extends MakotoLakeError {}

/** Compaction of one tenant-day failed. */
export class CompactionError extends MakotoLakeError {}

/** Another compaction of the same tenant-day holds the lease. */
export class PartitionLockedError extends CompactionError {}

/** A run's partition lease was taken over by another run, or could not be renewed before it lapsed: the run stops without writing. */
export class LeaseLostError extends CompactionError {}

/** The run was stopped (SIGINT/SIGTERM) before this work started or while it ran. */
export class RunAbortedError extends CompactionError {}

/** The message of an unknown thrown value, for logs and summaries. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
    return `${error.message}${cause && !error.message.includes(cause.slice(2)) ? cause : ''}`;
  }
  return String(error);
}
