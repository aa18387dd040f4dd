import type { PartitionResult } from '../compaction/compactPartition.js';
import { errorMessage } from '../errors.js';
import type { FailedGroup, WrittenGroup } from '../ingest/ingestBatch.js';
import { parseStagingKey } from '../staging/layout.js';

/*
 * The fields of structured log lines, the same keys on every platform (Lambda JSON logs through Powertools,
 * Application Insights customDimensions through the Functions context), so one query finds a tenant-day
 * anywhere: tenant_id, dt, run_id. `run_id` names one invocation (every line of it carries it);
 * `partition_run_id` is the id the compaction wrote into that partition's manifest and part-file names.
 */

/**
 * The structured fields of the one log line per partition, the same on every platform (Lambda JSON
 * logs, Application Insights customDimensions): status, rows read/written/rejected, duplicates, deletes,
 * duration.
 */
export function partitionLogFields(r: PartitionResult) {
  return {
    tenant_id: r.tenant,
    dt: r.date,
    partition_run_id: r.runId || null,
    status: r.status,
    staging_objects: r.inputs,
    rows_read: r.rowsRead,
    rows_written: r.rowsWritten,
    rows_rejected: r.rowsRejected,
    objects_rejected: r.objectsRejected,
    duplicates_removed: r.duplicatesRemoved,
    versions_superseded: r.versionsSuperseded,
    deletes_applied: r.deletesApplied,
    duration_ms: r.durationMs,
    ...(r.reason === undefined ? {} : { late_reason: r.reason }),
    ...(r.error === undefined ? {} : { error: r.error }),
  };
}

/**
 * A compaction engine event (`manifest.unreadable`, `partition.compacted`: fields tenant, date, runId, …)
 * as log fields with the same keys as the partition line.
 */
export function engineLogFields(fields: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const { tenant, date, runId, ...rest } = fields;
  return { tenant_id: tenant, dt: date, partition_run_id: runId, ...rest };
}

/**
 * The line for one object an ingest batch wrote or failed to write: a staging object with its tenant-day,
 * or the batch's quarantine object (the batch id is the run_id of every line).
 */
export function ingestGroupLogLine(group: WrittenGroup | FailedGroup): [message: string, fields: Record<string, unknown>] {
  const partition = parseStagingKey(group.key);
  const failed = 'error' in group;
  const message = partition
    ? `staging object ${failed ? 'not ' : ''}written`
    : `quarantine object ${failed ? 'not ' : ''}written`;
  return [
    message,
    {
      ...(partition ? { tenant_id: partition.tenant, dt: partition.date } : {}),
      key: group.key,
      records: group.records,
      ...(failed ? { error: errorMessage(group.error) } : {}),
    },
  ];
}
