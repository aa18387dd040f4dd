import { describe, expect, it } from 'vitest';
import { emptyResult, type PartitionResult } from '../../src/engine/compactPartition.js';
import { summarise } from '../../src/engine/compactTenants.js';
import { compactionMetrics, ingestMetrics, METRIC_UNITS, METRICS_BY_SOURCE, metricValues } from '../../src/ops/metrics.js';

const result = (tenant: string, date: string, fields: Partial<PartitionResult>): PartitionResult => ({
  ...emptyResult({ tenant, date, runId: 'r' }, 'compacted', 0, {}),
  ...fields,
});

describe('run metrics', () => {
  it('counts partitions by status, late partitions and quarantined lines and objects of a run', () => {
    const summary = summarise('2025-08-11', [
      result('a', '2025-08-11', { inputs: 3, rowsWritten: 10, rowsRejected: 2, objectsRejected: 1 }),
      result('a', '2025-08-09', { inputs: 1, rowsWritten: 4, reason: '1 staging object newer than run r' }),
      result('b', '2025-08-11', { status: 'failed', error: 'x' }),
      result('c', '2025-08-11', { status: 'locked', error: 'y' }),
      result('d', '2025-08-11', { status: 'no-input' }),
    ]);
    const points = compactionMetrics(summary, 1234);
    expect(points.map((p) => p.name)).toStrictEqual(METRICS_BY_SOURCE.compaction);
    expect(metricValues(points)).toStrictEqual({
      RunsCompleted: 1,
      RunDuration: 1234,
      PartitionsCompacted: 2,
      PartitionsFailed: 1,
      PartitionsLocked: 1,
      PartitionsWithoutStaging: 1,
      LatePartitionsFound: 1,
      StagingObjectsRead: 4,
      RowsWritten: 14,
      RecordsQuarantined: 2,
      StagingObjectsQuarantined: 1,
    });
    expect(points.filter((p) => p.unit !== 'Count').map((p) => [p.name, p.unit])).toStrictEqual([
      ['RunDuration', 'Milliseconds'],
    ]);
  });

  it('counts an ingest batch: quarantine objects are not staging objects', () => {
    const points = ingestMetrics({
      received: 5,
      staged: 3,
      quarantined: 1,
      quarantine: [],
      written: [
        { key: 'staging/messages/tenant_id=a/dt=2025-08-11/b_1_2.ndjson.gz', records: 2, firstIndex: 0 },
        { key: 'staging/messages/tenant_id=b/dt=2025-08-11/b_3_3.ndjson.gz', records: 1, firstIndex: 2 },
        { key: 'quarantine/ingest/source=dynamodb/dt=2025-08-11/b_4_4.ndjson.gz', records: 1, firstIndex: 3 },
      ],
      failed: [{ key: 'staging/messages/tenant_id=c/dt=2025-08-11/b_5_5.ndjson.gz', records: 1, firstIndex: 4, error: 'x' }],
      firstFailedIndex: 4,
    });
    expect(points.map((p) => p.name)).toStrictEqual(METRICS_BY_SOURCE.dynamodb);
    expect(metricValues(points)).toStrictEqual({
      RecordsReceived: 5,
      RowsWritten: 3,
      RecordsQuarantined: 1,
      StagingObjectsWritten: 2,
      StagingWritesFailed: 1,
    });
  });

  it('gives every metric a unit and the cosmos source the same names as the stream', () => {
    expect(Object.keys(METRIC_UNITS).sort()).toStrictEqual([...new Set(Object.values(METRICS_BY_SOURCE).flat())].sort());
    expect(METRICS_BY_SOURCE.cosmos).toStrictEqual(METRICS_BY_SOURCE.dynamodb);
  });
});
