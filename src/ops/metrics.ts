import type { IngestResult } from '../capture/ingest/ingestBatch.js';
import { parseStagingKey } from '../core/staging/layout.js';
import type { RunSummary } from '../engine/compactTenants.js';
import { type PartitionJson, partitionJson } from './partitionView.js';
import type { LakeStatus } from './status.js';

/**
 * The operational metrics, named once. The Lambda handlers publish them as CloudWatch EMF (namespace
 * METRIC_NAMESPACE, dimensions `service` and `Source`), the Azure functions as custom metrics with the same
 * names, and template.yaml's alarms and dashboard are checked against this list (test/aws/template.test.ts).
 *
 * There is deliberately no tenant dimension: 1,000 tenants would cost 1,000 times the metrics. Per-tenant
 * figures are in the log lines (src/ops/logFields.ts).
 */
export const METRIC_NAMESPACE = 'MakotoLake';
/** The `service` dimension Powertools adds to every metric (and the Logger's `service` key). */
export const METRIC_SERVICE = 'makoto-lake';
/** The one other dimension: which job emitted the figures. */
export const SOURCE_DIMENSION = 'Source';
/** `status`: the lake check (src/ops/status.ts) the nightly run ends with, over the partitions it ran. */
export type MetricSource = 'compaction' | 'dynamodb' | 'cosmos' | 'status';

export const METRIC = {
  /** Compaction: 1 per finished run (the "nightly run missing" alarm watches it). */
  runsCompleted: 'RunsCompleted',
  runDuration: 'RunDuration',
  partitionsCompacted: 'PartitionsCompacted',
  partitionsFailed: 'PartitionsFailed',
  partitionsLocked: 'PartitionsLocked',
  /** Partitions asked for that had no staging objects (left as they were). */
  partitionsWithoutStaging: 'PartitionsWithoutStaging',
  /** Earlier days re-compacted because their staging changed after their last run. */
  latePartitionsFound: 'LatePartitionsFound',
  stagingObjectsRead: 'StagingObjectsRead',
  /** Compaction: Parquet rows written. Ingest: records written to staging. */
  rowsWritten: 'RowsWritten',
  /** Compaction: staging lines rejected. Ingest: source records that could never be accepted. */
  recordsQuarantined: 'RecordsQuarantined',
  /** Compaction: whole staging objects (or their unreadable tails) quarantined. */
  stagingObjectsQuarantined: 'StagingObjectsQuarantined',
  /** Ingest: source records in the batch. */
  recordsReceived: 'RecordsReceived',
  /** Ingest: staging objects written (quarantine objects not counted). */
  stagingObjectsWritten: 'StagingObjectsWritten',
  /** Ingest: (tenant, day) groups whose staging object could not be written (the batch is retried). */
  stagingWritesFailed: 'StagingWritesFailed',
  /** Status: partitions with a reason to look (overdue staging, folder ≠ manifest, unreviewed quarantine). */
  partitionsNeedingAttention: 'PartitionsNeedingAttention',
  /** Status: stale, missing or changed part files (folder vs manifest), summed over the partitions. */
  staleParts: 'StaleParts',
  /** Status: partitions whose staging is still not covered by their manifest past its run plus the grace. */
  uncompactedStagingDays: 'UncompactedStagingDays',
  /**
   * Status: tenants whose user deletes that name no day need attention (an unreadable pending-deletes object,
   * a delete not searched after its run was due, or one still waiting after three nightly runs).
   */
  pendingDeletesNeedingAttention: 'PendingDeletesNeedingAttention',
} as const;

export type MetricName = (typeof METRIC)[keyof typeof METRIC];
export type MetricUnitName = 'Count' | 'Milliseconds';

export const METRIC_UNITS: Readonly<Record<MetricName, MetricUnitName>> = Object.fromEntries(
  Object.values(METRIC).map((name) => [name, name === METRIC.runDuration ? 'Milliseconds' : 'Count']),
) as Record<MetricName, MetricUnitName>;

/** The metrics each source emits (always all of them, zeros included, so a quiet night is a 0, not a gap). */
export const METRICS_BY_SOURCE: Readonly<Record<MetricSource, readonly MetricName[]>> = {
  compaction: [
    METRIC.runsCompleted,
    METRIC.runDuration,
    METRIC.partitionsCompacted,
    METRIC.partitionsFailed,
    METRIC.partitionsLocked,
    METRIC.partitionsWithoutStaging,
    METRIC.latePartitionsFound,
    METRIC.stagingObjectsRead,
    METRIC.rowsWritten,
    METRIC.recordsQuarantined,
    METRIC.stagingObjectsQuarantined,
  ],
  dynamodb: [
    METRIC.recordsReceived,
    METRIC.rowsWritten,
    METRIC.recordsQuarantined,
    METRIC.stagingObjectsWritten,
    METRIC.stagingWritesFailed,
  ],
  cosmos: [
    METRIC.recordsReceived,
    METRIC.rowsWritten,
    METRIC.recordsQuarantined,
    METRIC.stagingObjectsWritten,
    METRIC.stagingWritesFailed,
  ],
  status: [
    METRIC.partitionsNeedingAttention,
    METRIC.staleParts,
    METRIC.uncompactedStagingDays,
    METRIC.pendingDeletesNeedingAttention,
  ],
};

export interface MetricPoint {
  readonly name: MetricName;
  readonly unit: MetricUnitName;
  readonly value: number;
}

const point = (name: MetricName, value: number): MetricPoint => ({ name, unit: METRIC_UNITS[name], value });

/** The figures of one compaction run, in METRICS_BY_SOURCE.compaction order, read off the results' projection. */
export function compactionMetrics(summary: Pick<RunSummary, 'results'>, durationMs: number): MetricPoint[] {
  const views = summary.results.map(partitionJson);
  const count = (keep: (v: PartitionJson) => boolean) => views.filter(keep).length;
  const sum = (of: (v: PartitionJson) => number) => views.reduce((n, v) => n + of(v), 0);
  return [
    point(METRIC.runsCompleted, 1),
    point(METRIC.runDuration, durationMs),
    point(
      METRIC.partitionsCompacted,
      count((v) => v.status === 'compacted'),
    ),
    point(
      METRIC.partitionsFailed,
      count((v) => v.status === 'failed'),
    ),
    point(
      METRIC.partitionsLocked,
      count((v) => v.status === 'locked'),
    ),
    point(
      METRIC.partitionsWithoutStaging,
      count((v) => v.status === 'no-input'),
    ),
    point(
      METRIC.latePartitionsFound,
      count((v) => v.reason !== undefined),
    ),
    point(
      METRIC.stagingObjectsRead,
      sum((v) => v.inputs),
    ),
    point(
      METRIC.rowsWritten,
      sum((v) => v.rows_written),
    ),
    point(
      METRIC.recordsQuarantined,
      sum((v) => v.rows_rejected),
    ),
    point(
      METRIC.stagingObjectsQuarantined,
      sum((v) => v.objects_rejected),
    ),
  ];
}

/** The figures of one ingested batch (stream or change feed), in METRICS_BY_SOURCE order. */
export function ingestMetrics(result: IngestResult): MetricPoint[] {
  return [
    point(METRIC.recordsReceived, result.received),
    point(METRIC.rowsWritten, result.staged),
    point(METRIC.recordsQuarantined, result.quarantined),
    point(METRIC.stagingObjectsWritten, result.written.filter((w) => parseStagingKey(w.key) !== undefined).length),
    point(METRIC.stagingWritesFailed, result.failed.length),
  ];
}

/** The figures of a status check, in METRICS_BY_SOURCE.status order (ingest quarantine has its own metric). */
export function statusMetrics(status: LakeStatus): MetricPoint[] {
  const p = status.partitions;
  return [
    point(METRIC.partitionsNeedingAttention, p.filter((x) => x.attention.length > 0).length),
    // files awaiting vacuum (stale_parts) are normal: only files the current version names and cannot read count
    point(
      METRIC.staleParts,
      p.reduce((n, x) => n + x.missing_parts + x.changed_parts, 0),
    ),
    point(METRIC.uncompactedStagingDays, p.filter((x) => x.staging_overdue > 0).length),
    point(METRIC.pendingDeletesNeedingAttention, (status.pending_deletes ?? []).filter((x) => x.attention.length > 0).length),
  ];
}

/** `{ RowsWritten: 12, ... }`: the points as one object (Azure custom-metric properties, test assertions). */
export function metricValues(points: readonly MetricPoint[]): Record<string, number> {
  return Object.fromEntries(points.map((p) => [p.name, p.value]));
}
