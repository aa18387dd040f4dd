/** The storage layout contract (docs/ARCHITECTURE.md). Every key the project writes is built here. */
import { UsageError } from '../errors.js';
import { assertTenantId } from '../tenant.js';
import { parseDate } from '../time/jst.js';

export const STAGING_ROOT = 'staging/messages/';
export const ANALYTICS_ROOT = 'analytics/messages/';
export const MANIFEST_ROOT = 'manifests/messages/';
export const QUARANTINE_ROOT = 'quarantine/';
export const LOCK_ROOT = 'locks/messages/';
/** Remembered user deletes, outside analytics/ so readers never see them (docs/ARCHITECTURE.md). */
export const TOMBSTONE_ROOT = 'tombstones/messages/';
export const CHECKPOINT_ROOT = 'checkpoints/';
/** Intermediates of a tenant-day split across tasks (plan, per-range and per-bucket outputs and reports). */
export const COMPACTION_WORK_ROOT = 'compaction-work/messages/';
export const RUNS_ROOT = 'runs/';
/** Erase and offboard receipts, the refused tenants, retention drops (docs/PRIVACY.md). */
export const ERASURE_ROOT = 'erasures/';

const partition = (tenant: string, date: string) => `tenant_id=${assertTenantId(tenant)}/dt=${parseDate(date)}/`;

export const stagingPrefix = (tenant: string, date: string) => `${STAGING_ROOT}${partition(tenant, date)}`;
export const stagingKey = (tenant: string, date: string, name: string) =>
  `${stagingPrefix(tenant, date)}${safeName(name)}.ndjson.gz`;
export const analyticsPrefix = (tenant: string, date: string) => `${ANALYTICS_ROOT}${partition(tenant, date)}`;
/**
 * A data part of one compaction attempt: `part-<n>-<attempt id>.parquet`. Unique to the attempt and created
 * put-if-absent, so no published file is ever written twice; the table's log says which parts are current.
 */
export const analyticsKey = (tenant: string, date: string, attemptId: string, part: number) => {
  if (!RUN_ID_PATTERN.test(attemptId)) throw new UsageError(`invalid run id ${JSON.stringify(attemptId)}`);
  return `${analyticsPrefix(tenant, date)}part-${part}-${attemptId}.parquet`;
};
/** The previous release's per-partition manifest (mutable); read only to convert a lake to the table. */
export const manifestKey = (tenant: string, date: string) =>
  `${MANIFEST_ROOT}tenant_id=${assertTenantId(tenant)}/dt=${parseDate(date)}.json`;
/** One compaction attempt's manifest (counts, staging inputs folded in): immutable, named by the table's log. */
export const runManifestKey = (tenant: string, date: string, attemptId: string) => {
  if (!RUN_ID_PATTERN.test(attemptId)) throw new UsageError(`invalid run id ${JSON.stringify(attemptId)}`);
  return `${MANIFEST_ROOT}${partition(tenant, date)}${attemptId}.json`;
};
/** Every staging object of one tenant, all days (one flat listing). */
export const stagingTenantPrefix = (tenant: string) => `${STAGING_ROOT}tenant_id=${assertTenantId(tenant)}/`;
export const analyticsTenantPrefix = (tenant: string) => `${ANALYTICS_ROOT}tenant_id=${assertTenantId(tenant)}/`;
export const manifestTenantPrefix = (tenant: string) => `${MANIFEST_ROOT}tenant_id=${assertTenantId(tenant)}/`;
/** The planner's cache of one tenant's manifests (only a cache: a wrong or missing entry costs a GET). */
export const manifestIndexKey = (tenant: string) => `${manifestTenantPrefix(tenant)}_index.json`;
/** The deletes remembered by one run of a partition; the manifest names the current one. */
export const tombstonePrefix = (tenant: string, date: string) => `${TOMBSTONE_ROOT}${partition(tenant, date)}`;
export const tombstoneKey = (tenant: string, date: string, runId: string) =>
  `${tombstonePrefix(tenant, date)}${safeName(runId)}.parquet`;
export const lockKey = (tenant: string, date: string) =>
  `${LOCK_ROOT}tenant_id=${assertTenantId(tenant)}/dt=${parseDate(date)}.lock`;
/**
 * One split compaction's work folder, `compaction-work/messages/tenant_id=<t>/dt=<d>/<splitId>/`: everything
 * its tasks hand to each other (docs/SCALING.md); removed by the commit or the abandon.
 */
export const splitWorkPrefix = (tenant: string, date: string, splitId: string) => {
  if (!RUN_ID_PATTERN.test(splitId)) throw new UsageError(`invalid split id ${JSON.stringify(splitId)}`);
  return `${COMPACTION_WORK_ROOT}${partition(tenant, date)}${splitId}/`;
};
/** The split's plan: the inputs, each assigned to a range, and the partition as it was when the split started. */
export const splitPlanKey = (tenant: string, date: string, splitId: string) =>
  `${splitWorkPrefix(tenant, date, splitId)}plan.json`;
/**
 * One map task's folder: `report.json` (the current attempt's report, the one the reduces read) and each
 * attempt's own outputs under `attempt=<attempt id>/` (see splitRangeAttemptPrefix).
 */
export const splitRangePrefix = (tenant: string, date: string, splitId: string, range: number) =>
  `${splitWorkPrefix(tenant, date, splitId)}range=${range}/`;
/**
 * One map attempt's outputs (`bucket=<b>/…parquet`, `rejected.ndjson.gz`), created put-if-absent: a twin or a
 * retry of the task writes beside them, never over them.
 */
export const splitRangeAttemptPrefix = (tenant: string, date: string, splitId: string, range: number, attemptId: string) =>
  `${splitRangePrefix(tenant, date, splitId, range)}${attemptFolder(attemptId)}`;
/** One reduce task's folder: `report.json` (the current attempt's report) and each attempt's `attempt=<id>/`. */
export const splitBucketPrefix = (tenant: string, date: string, splitId: string, bucket: number) =>
  `${splitWorkPrefix(tenant, date, splitId)}bucket=${bucket}/`;
/** One reduce attempt's parts (`part-<j>.parquet`), created put-if-absent beside any other attempt's. */
export const splitBucketAttemptPrefix = (tenant: string, date: string, splitId: string, bucket: number, attemptId: string) =>
  `${splitBucketPrefix(tenant, date, splitId, bucket)}${attemptFolder(attemptId)}`;
const attemptFolder = (attemptId: string) => {
  if (!RUN_ID_PATTERN.test(attemptId)) throw new UsageError(`invalid attempt id ${JSON.stringify(attemptId)}`);
  return `attempt=${attemptId}/`;
};
export const splitWorkTenantPrefix = (tenant: string) => `${COMPACTION_WORK_ROOT}tenant_id=${assertTenantId(tenant)}/`;
/** Where an interrupted backfill of one tenant-day resumes (deleted when the backfill completes). */
export const backfillCheckpointKey = (source: string, tenant: string, date: string) =>
  `${CHECKPOINT_ROOT}backfill/source=${safeName(source)}/${partition(tenant, date)}checkpoint.json`;
/**
 * User deletes that name no day (a Cosmos metadata-only delete), by tenant, one object per ingest batch: the
 * nightly planner moves each into staging of the day the table holds the message in (pendingDeletes.ts).
 */
export const PENDING_DELETES_ROOT = 'pending/deletes/messages/';
export const pendingDeleteTenantPrefix = (tenant: string) => `${PENDING_DELETES_ROOT}tenant_id=${assertTenantId(tenant)}/`;
export const pendingDeleteKey = (tenant: string, name: string) =>
  `${pendingDeleteTenantPrefix(tenant)}${safeName(name)}.ndjson.gz`;
/** Records rejected at capture: the tenant may be unknown or invalid, so these are filed by source and day. */
export const ingestQuarantineKey = (source: string, date: string, name: string) =>
  `${QUARANTINE_ROOT}ingest/source=${safeName(source)}/dt=${parseDate(date)}/${safeName(name)}.ndjson.gz`;
/**
 * Lines and objects one compaction attempt rejected (created once, put-if-absent): the table's current version
 * names the partition's current one in its tags; vacuum removes the ones no retained version names.
 */
export const compactionQuarantineKey = (tenant: string, date: string, attemptId: string) => {
  if (!RUN_ID_PATTERN.test(attemptId)) throw new UsageError(`invalid run id ${JSON.stringify(attemptId)}`);
  return `${COMPACTION_QUARANTINE_ROOT}${partition(tenant, date)}${attemptId}.ndjson.gz`;
};
export const COMPACTION_QUARANTINE_ROOT = `${QUARANTINE_ROOT}compaction/`;

/** A fan-out run's id (`20250811T170000123Z-1a2b3c4d`): safe as one path segment. */
export const RUN_ID_PATTERN = /^[A-Za-z0-9-]{1,64}$/;
const runFolder = (date: string, runId: string) => {
  if (!RUN_ID_PATTERN.test(runId)) throw new UsageError(`invalid run id ${JSON.stringify(runId)}`);
  return `${RUNS_ROOT}${parseDate(date)}/${runId}`;
};
/** The summary of one nightly fan-out run: `runs/<target date>/<run id>.json`, written once by the last step. */
export const runSummaryKey = (date: string, runId: string) => `${runFolder(date, runId)}.json`;
/** The run's job list (a JSON array: the Distributed Map's ItemReader reads it). */
export const runJobsKey = (date: string, runId: string) => `${runFolder(date, runId)}/jobs.json`;
/** Where each job of the run reports its result. */
export const runResultsPrefix = (date: string, runId: string) => `${runFolder(date, runId)}/results/`;
export const runResultKey = (date: string, runId: string, tenant: string, jobDate: string) =>
  `${runResultsPrefix(date, runId)}${partition(tenant, jobDate).slice(0, -1)}.json`;
/** The progress of one split job of the run, where the queue stages report (task reports, stage markers). */
export const runSplitPrefix = (date: string, runId: string, tenant: string, jobDate: string, splitId: string) =>
  `${runFolder(date, runId)}/splits/${partition(tenant, jobDate)}${safeName(splitId)}/`;

/** Object-name characters we allow in names derived from feed positions (shard ids, lease tokens). */
export function safeName(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9._=-]/g, '_').replace(/^[._]+/, '');
  return cleaned.slice(0, 200) || 'batch';
}

/**
 * Whether a staging object holds data. Staging folders may hold objects written by Firehose (any name);
 * names starting with '_' or '.' (`_SUCCESS` markers, hidden temp files) are not data, for compaction and
 * for the late-data check alike.
 */
export function isStagingDataKey(key: string): boolean {
  const name = key.slice(key.lastIndexOf('/') + 1);
  return name !== '' && !name.startsWith('_') && !name.startsWith('.');
}

/** The (tenant, date) of a staging key, or undefined if the key is not a staging object. */
export function parseStagingKey(key: string): { tenant: string; date: string } | undefined {
  const m = /^staging\/messages\/tenant_id=([^/]+)\/dt=(\d{4}-\d{2}-\d{2})\/[^/]+$/.exec(key);
  return m ? { tenant: m[1] as string, date: m[2] as string } : undefined;
}

/** The date of `<root>tenant_id=<t>/dt=<d>/...` or `<root>tenant_id=<t>/dt=<d>.json` keys, or undefined. */
export function partitionDateOf(key: string): string | undefined {
  return /\/dt=(\d{4}-\d{2}-\d{2})(?:\/|\.json$)/.exec(key)?.[1];
}

/** Whether a file in a partition folder is visible to readers (Athena and Synapse skip '_' and '.' names). */
export function isVisibleKey(key: string): boolean {
  return isStagingDataKey(key);
}

/**
 * The position every backfilled version carries (src/capture/backfill/backfillChange.ts): a version read from the
 * source (a table read or an export) instead of captured from its feed. Captured positions never are `0`
 * (DynamoDB sequence numbers and Cosmos LSNs start above it; leading zeros are removed when staging).
 */
export const BACKFILL_SEQ = '0';
