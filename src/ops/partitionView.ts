import type { PartitionResult } from '../engine/compactPartition.js';

/*
 * One projection of a partition result, for everything that shows it outside the engine: the run summary
 * (CLI --json, the Lambda's result, the HTTP body, `runs/<date>/<run>.json`), the `partition finished` log
 * line and the run's metrics. The log line and the metrics are read off this projection; only the log line
 * renames three keys, because on a log line `run_id` names the invocation (the partition's run is
 * `partition_run_id`), `staging_objects` says what `inputs` counts, and `late_reason` says why a day other
 * than the target was compacted.
 */

/** A partition result as the run summary shows it (snake_case; `run_id` null when no run began). */
export function partitionJson(r: PartitionResult) {
  return {
    tenant_id: r.tenant,
    dt: r.date,
    status: r.status,
    run_id: r.runId || null,
    inputs: r.inputs,
    rows_read: r.rowsRead,
    /** Rows of the published partition read back by the merge (issue 15). */
    rows_carried: r.rowsCarried,
    /** User deletes remembered from earlier runs (tombstones) that took part. */
    deletes_remembered: r.deletesRemembered,
    rows_rejected: r.rowsRejected,
    objects_rejected: r.objectsRejected,
    duplicates_removed: r.duplicatesRemoved,
    versions_superseded: r.versionsSuperseded,
    deletes_applied: r.deletesApplied,
    rows_written: r.rowsWritten,
    output_files: r.outputFiles,
    bytes_written: r.bytesWritten,
    duration_ms: r.durationMs,
    ...(r.error === undefined ? {} : { error: r.error }),
    ...(r.reason === undefined ? {} : { reason: r.reason }),
  };
}

export type PartitionJson = ReturnType<typeof partitionJson>;

/**
 * The structured fields of the one log line per partition, the same on every platform (Lambda JSON logs,
 * Application Insights customDimensions): the projection's counts under the log's key names.
 */
export function partitionLogFields(r: PartitionResult) {
  const v = partitionJson(r);
  return {
    tenant_id: v.tenant_id,
    dt: v.dt,
    partition_run_id: v.run_id,
    status: v.status,
    staging_objects: v.inputs,
    rows_read: v.rows_read,
    rows_written: v.rows_written,
    rows_rejected: v.rows_rejected,
    objects_rejected: v.objects_rejected,
    duplicates_removed: v.duplicates_removed,
    versions_superseded: v.versions_superseded,
    deletes_applied: v.deletes_applied,
    duration_ms: v.duration_ms,
    ...(v.reason === undefined ? {} : { late_reason: v.reason }),
    ...(v.error === undefined ? {} : { error: v.error }),
  };
}

export type LogLevel = 'info' | 'warn' | 'error';

/** The `partition finished` line: an error when the partition failed, a warning when another run held it. */
export function partitionLine(
  r: PartitionResult,
): [level: LogLevel, message: string, fields: ReturnType<typeof partitionLogFields>] {
  const level = r.status === 'failed' ? 'error' : r.status === 'locked' ? 'warn' : 'info';
  return [level, 'partition finished', partitionLogFields(r)];
}
