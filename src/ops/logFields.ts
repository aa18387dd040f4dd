import type { FailedGroup, WrittenGroup } from '../capture/ingest/ingestBatch.js';
import { errorMessage } from '../core/errors.js';
import { parseStagingKey } from '../core/staging/layout.js';

/*
 * The fields of structured log lines, the same keys on every platform (Lambda JSON logs through Powertools,
 * Application Insights customDimensions through the Functions context), so one query finds a tenant-day
 * anywhere: tenant_id, dt, run_id. `run_id` names one invocation (every line of it carries it);
 * `partition_run_id` is the id the compaction wrote into that partition's manifest and part-file names.
 * The one line per partition is src/ops/partitionView.ts's (the projection the run summary uses too).
 */

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
