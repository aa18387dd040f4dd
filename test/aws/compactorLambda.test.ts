import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CompactionRunFailedError, compactionRequest, lambdaConfig, runCompactorEvent } from '../../compactor/lambda.js';
import { runSummaryEvent } from '../../compactor/summaryLambda.js';
import { ingestBatch } from '../../src/capture/ingest/ingestBatch.js';
import { dynamodbEventChanges } from '../../src/capture/ingest/sources.js';
import { loadConfig } from '../../src/core/config.js';
import { UsageError } from '../../src/core/errors.js';
import { runManifestKey, stagingKey } from '../../src/core/staging/layout.js';
import { planRun, recordJobResult, runJob } from '../../src/jobs/fanOut.js';
import { withCompactionDeps } from '../../src/jobs/workspace.js';
import { METRIC_NAMESPACE, METRIC_SERVICE, METRICS_BY_SOURCE } from '../../src/ops/metrics.js';
import { StoreError } from '../../src/ports/store/errors.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { getBytes, listAll } from '../../src/ports/store/ObjectStore.js';
import { quietTelemetry } from '../../tools/quietTelemetry.js';
import { chatItem, dynamodbRecord } from '../kit/factories.js';
import { captureJsonLines, lambdaContext } from '../kit/lambdaTelemetry.js';
import { readParquetRows } from '../kit/readParquet.js';
import { tempDir } from '../kit/tempDir.js';

const config = loadConfig({ TENANT_ID: 'acme,beta', TARGET_DATE_OFFSET: '-1' });
const NOW = Date.parse('2025-08-12T03:00:00Z'); // 12:00 JST on 2025-08-12

describe('compactor Lambda: what an invocation asks for', () => {
  it('compacts the day before the schedule’s own time for TENANT_ID on an EventBridge event', () => {
    const scheduled = {
      version: '0',
      id: 'e',
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      time: '2025-08-11T17:00:00Z', // 02:00 JST on 2025-08-12
      region: 'ap-northeast-1',
      resources: ['arn:aws:events:ap-northeast-1:000000000000:rule/nightly'],
      detail: {},
    };
    expect(compactionRequest(scheduled, config, Date.parse('2025-08-13T10:00:00Z'))).toStrictEqual({
      date: '2025-08-11',
      tenants: ['acme', 'beta'],
      late: true,
    });
  });

  it('takes the seed’s manual payload, tenants as a list or "*", and defaults for what is missing', () => {
    expect(compactionRequest({ target_date: '2025-08-01' }, config, NOW)).toStrictEqual({
      date: '2025-08-01',
      tenants: ['acme', 'beta'],
      late: false,
    });
    expect(compactionRequest({ target_date: '2025-08-01', tenants: ['zeta'], late: true }, config, NOW)).toStrictEqual({
      date: '2025-08-01',
      tenants: ['zeta'],
      late: true,
    });
    expect(compactionRequest({ tenants: '*' }, config, NOW)).toStrictEqual({ date: '2025-08-11', tenants: 'all', late: false });
    expect(compactionRequest({}, config, NOW)).toStrictEqual({ date: '2025-08-11', tenants: ['acme', 'beta'], late: false });
    expect(compactionRequest(undefined, config, NOW)).toStrictEqual({
      date: '2025-08-11',
      tenants: ['acme', 'beta'],
      late: false,
    });
  });

  it('refuses payloads it cannot honour, saying why', () => {
    expect(() => compactionRequest({ target_date: '2025-02-30' }, config, NOW)).toThrow(UsageError);
    expect(() => compactionRequest({ targetDate: '2025-08-01' }, config, NOW)).toThrow(
      'unknown field(s) targetDate; expected target_date, tenants, late, intraday',
    );
    expect(() => compactionRequest({ tenants: [] }, config, NOW)).toThrow(
      'tenants must be a non-empty array of tenant ids or "*", got []',
    );
    expect(() => compactionRequest({ tenants: ['../etc'] }, config, NOW)).toThrow(/may contain only letters/);
    expect(() => compactionRequest('2025-08-11', config, NOW)).toThrow(UsageError);
  });
});

describe('compactor Lambda: DuckDB sized from the function', () => {
  it('derives memory_limit, threads and /tmp from the function memory unless set explicitly', () => {
    const at = (env: Record<string, string>, cpus = 8) => {
      const c = lambdaConfig(env, cpus);
      return [c.duckdb.memoryLimit, c.duckdb.threads, c.tempDir];
    };
    expect(at({ AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '3008' })).toStrictEqual(['2256MB', 2, '/tmp']);
    expect(at({ AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '10240' })).toStrictEqual(['7680MB', 6, '/tmp']);
    expect(at({ AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512' })).toStrictEqual(['256MB', 1, '/tmp']);
    expect(at({ AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '128' })).toStrictEqual(['128MB', 1, '/tmp']);
    expect(at({ AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '10240' }, 2)).toStrictEqual(['7680MB', 2, '/tmp']);
    expect(
      at({ AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '3008', DUCKDB_MEMORY_LIMIT: '1GB', DUCKDB_THREADS: '3', TEMP_DIR: '/mnt/efs' }),
    ).toStrictEqual(['1GB', 3, '/mnt/efs']);
    expect(lambdaConfig({}).duckdb).toStrictEqual(loadConfig({}).duckdb);
  });
});

describe('compactor Lambda: a failing tenant', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    await dir.cleanup();
  });

  it('lets the others finish, logs one JSON line per partition and the run’s EMF metrics, then fails the invocation', async () => {
    const local = new LocalStore(join(dir.path, 'lake'));
    const event = {
      Records: [
        dynamodbRecord({ seq: 1, item: chatItem({ tenantId: 'acme', messageId: 'a1' }) }),
        dynamodbRecord({ seq: 2, item: chatItem({ tenantId: 'beta', messageId: 'b1' }) }),
      ],
    };
    const { changes, batchId } = dynamodbEventChanges(event);
    const staged = await ingestBatch(local, changes, { source: 'dynamodb', batchId });
    const betaKey = staged.written.find((w) => w.key.includes('tenant_id=beta/'))?.key;
    // beta's staging cannot be read (as if access were denied on its prefix)
    const store = Object.assign(Object.create(local) as LocalStore, {
      getToFile: (key: string, path: string) =>
        key.includes('tenant_id=beta/') ? Promise.reject(new StoreError(`access denied: ${key}`)) : local.getToFile(key, path),
    });
    const cfg = loadConfig({ TENANT_ID: 'acme,beta', TEMP_DIR: dir.path, DUCKDB_THREADS: '1' });
    vi.useFakeTimers({ toFake: ['Date'], now: Date.parse('2025-08-12T00:00:00Z') });
    const telemetry = {
      logger: new Logger({ serviceName: METRIC_SERVICE }),
      metrics: new Metrics({ namespace: METRIC_NAMESPACE, serviceName: METRIC_SERVICE }),
    };

    const { error, lines } = await captureJsonLines(() =>
      runCompactorEvent({ target_date: '2025-08-11' }, { config: cfg, store, ...telemetry }, lambdaContext('req-1')),
    );
    vi.useRealTimers();

    expect(error).toBeInstanceOf(CompactionRunFailedError);
    const message = (error as Error).message;
    expect(message.startsWith('compaction of 2025-08-11 failed for 1 of 2 tenants (beta): {')).toBe(true);
    const summary = JSON.parse(message.slice(message.indexOf('{')));
    expect(summary.tenants.map((t: { tenant_id: string; status: string }) => [t.tenant_id, t.status])).toStrictEqual([
      ['acme', 'compacted'],
      ['beta', 'failed'],
    ]);
    const runId = (lines[0] as { run_id: string }).run_id;
    expect(runId).toMatch(/^20250812T000000000Z-[0-9a-f]{8}$/);
    const line = (level: string, message: string, fields: Record<string, unknown>) => ({
      level,
      message,
      timestamp: '2025-08-12T00:00:00.000Z',
      service: 'makoto-lake',
      cold_start: false,
      function_arn: 'arn:aws:lambda:ap-northeast-1:123456789012:function:makoto-daily-batch-processor',
      function_memory_size: '3008',
      function_name: 'makoto-daily-batch-processor',
      function_request_id: 'req-1',
      sampling_rate: 0,
      run_id: runId,
      ...fields,
    });
    const counts = { rows_rejected: 0, objects_rejected: 0, duplicates_removed: 0, versions_superseded: 0, deletes_applied: 0 };
    expect(lines).toStrictEqual([
      line('INFO', 'compaction started', { dt: '2025-08-11', tenants: ['acme', 'beta'], late: false, store: store.location }),
      line('INFO', 'partition finished', {
        tenant_id: 'acme',
        dt: '2025-08-11',
        partition_run_id: summary.tenants[0].run_id,
        status: 'compacted',
        staging_objects: 1,
        rows_read: 1,
        rows_written: 1,
        ...counts,
        duration_ms: 0,
      }),
      line('ERROR', 'partition finished', {
        tenant_id: 'beta',
        dt: '2025-08-11',
        status: 'failed',
        staging_objects: 0,
        rows_read: 0,
        rows_written: 0,
        ...counts,
        duration_ms: 0,
        error: `compaction of tenant beta for 2025-08-11 failed: access denied: ${betaKey}`,
      }),
      {
        _aws: {
          Timestamp: Date.parse('2025-08-12T00:00:00Z'),
          CloudWatchMetrics: [
            {
              Namespace: 'MakotoLake',
              Dimensions: [['service', 'Source']],
              Metrics: METRICS_BY_SOURCE.compaction.map((name) => ({
                Name: name,
                Unit: name === 'RunDuration' ? 'Milliseconds' : 'Count',
              })),
            },
          ],
        },
        service: 'makoto-lake',
        Source: 'compaction',
        RunsCompleted: 1,
        RunDuration: 0,
        PartitionsCompacted: 1,
        PartitionsFailed: 1,
        PartitionsLocked: 0,
        PartitionsWithoutStaging: 0,
        LatePartitionsFound: 0,
        StagingObjectsRead: 1,
        RowsWritten: 1,
        RecordsQuarantined: 0,
        StagingObjectsQuarantined: 0,
      },
      {
        _aws: {
          Timestamp: Date.parse('2025-08-12T00:00:00Z'),
          CloudWatchMetrics: [
            {
              Namespace: 'MakotoLake',
              Dimensions: [['service', 'Source']],
              Metrics: METRICS_BY_SOURCE.status.map((name) => ({ Name: name, Unit: 'Count' })),
            },
          ],
        },
        service: 'makoto-lake',
        Source: 'status',
        PartitionsNeedingAttention: 0,
        StaleParts: 0,
        UncompactedStagingDays: 0,
        PendingDeletesNeedingAttention: 0,
      },
      line('INFO', 'status checked', { needs_attention: 0 }),
      line('ERROR', 'compaction finished', {
        dt: '2025-08-11',
        ok: false,
        totals: { tenants: 2, failed: 1, rows_read: 1, rows_written: 1, rows_rejected: 0 },
        failed: ['beta'],
      }),
    ]);
    const folder = join(dir.path, 'lake', 'analytics/messages/tenant_id=acme/dt=2025-08-11');
    const rows = await readParquetRows((await readdir(folder)).map((f) => join(folder, f)));
    expect(rows.map((r) => r.message_id)).toStrictEqual(['a1']);
  });

  it('logs an unreadable previous run manifest as a warning with the partition’s fields, and compacts over it', async () => {
    const local = new LocalStore(join(dir.path, 'lake-torn'));
    const capture = async (seq: number, id: string) => {
      const { changes, batchId } = dynamodbEventChanges({
        Records: [dynamodbRecord({ seq, item: chatItem({ tenantId: 'acme', messageId: id }) })],
      });
      await ingestBatch(local, changes, { source: 'dynamodb', batchId });
    };
    const cfg = loadConfig({ TENANT_ID: 'acme', TEMP_DIR: dir.path, DUCKDB_THREADS: '1' });
    await capture(1, 'a1');
    const first = await runCompactorEvent({ target_date: '2025-08-11' }, { config: cfg, store: local, ...quietTelemetry() });
    const torn = runManifestKey('acme', '2025-08-11', first?.tenants[0]?.run_id as string);
    await local.putBytes(torn, '{"version": 1, "run_id": ');
    await capture(2, 'a2');
    const telemetry = { ...quietTelemetry(), logger: new Logger({ serviceName: METRIC_SERVICE }) };

    const { result, lines } = await captureJsonLines(() =>
      runCompactorEvent({ target_date: '2025-08-11' }, { config: cfg, store: local, ...telemetry }),
    );

    const warnings = (lines as Record<string, unknown>[]).filter((l) => l.level === 'WARN');
    expect(warnings.map(({ timestamp, run_id, ...rest }) => rest)).toStrictEqual([
      {
        level: 'WARN',
        message: 'manifest.unreadable',
        service: 'makoto-lake',
        sampling_rate: 0,
        tenant_id: 'acme',
        dt: '2025-08-11',
        partition_run_id: result?.tenants[0]?.run_id,
        error: `unreadable manifest ${torn}: Unexpected end of JSON input`,
      },
    ]);
    expect(result?.tenants.map((t) => [t.tenant_id, t.status, t.rows_written])).toStrictEqual([['acme', 'compacted', 2]]);
  });

  it('the Step Functions summary step ends the nightly run with the same status check (PartitionsNeedingAttention)', async () => {
    const local = new LocalStore(join(dir.path, 'lake'));
    const { changes, batchId } = dynamodbEventChanges({
      Records: [
        dynamodbRecord({ seq: 1, item: chatItem({ tenantId: 'acme', messageId: 'a1' }) }),
        dynamodbRecord({ seq: 2, item: chatItem({ tenantId: 'beta', messageId: 'b1' }) }),
      ],
    });
    await ingestBatch(local, changes, { source: 'dynamodb', batchId });
    const cfg = loadConfig({ TENANT_ID: 'acme,beta', TEMP_DIR: dir.path, DUCKDB_THREADS: '1' });
    const plan = await planRun(local, { date: '2025-08-11', tenants: ['acme', 'beta'], lateLookbackDays: 0 }, Date.now());
    for (const job of plan.jobs) {
      await recordJobResult(local, plan.run, await withCompactionDeps(cfg, local, Date.now, (deps) => runJob(deps, job)));
    }
    // a staging object of acme's day arrives after its job ran: the status check must see it
    const [acme] = await listAll(local, 'staging/messages/tenant_id=acme/dt=2025-08-11/');
    await local.putBytes(stagingKey('acme', '2025-08-11', 'late'), await getBytes(local, acme?.key ?? ''));
    const telemetry = {
      logger: new Logger({ serviceName: METRIC_SERVICE }),
      metrics: new Metrics({ namespace: METRIC_NAMESPACE, serviceName: METRIC_SERVICE }),
    };

    const { result, error, lines } = await captureJsonLines(() =>
      runSummaryEvent(
        { run: { run_id: plan.run.runId, target_date: plan.run.date } },
        // two nights after the late object arrived, it is overdue
        { config: cfg, store: local, ...telemetry, now: () => Date.now() + 3 * 86_400_000 },
      ),
    );

    expect(error).toBeUndefined();
    expect(result?.totals).toStrictEqual({ tenants: 2, failed: 0, rows_read: 2, rows_written: 2, rows_rejected: 0 });
    const logged = lines as Record<string, unknown>[];
    expect(
      logged.filter((l) => l.Source === 'status').map((l) => [l.PartitionsNeedingAttention, l.UncompactedStagingDays]),
    ).toStrictEqual([[1, 1]]);
    expect(logged.filter((l) => l.message !== undefined).map((l) => [l.level, l.message, l.needs_attention])).toStrictEqual([
      ['WARN', 'status checked', 1],
      ['INFO', 'run finished', undefined],
    ]);
  });

  it('a status check the store refuses is logged as an error; the committed run still succeeds', async () => {
    const local = new LocalStore(join(dir.path, 'lake'));
    const { changes, batchId } = dynamodbEventChanges({
      Records: [dynamodbRecord({ seq: 1, item: chatItem({ tenantId: 'acme', messageId: 'a1' }) })],
    });
    await ingestBatch(local, changes, { source: 'dynamodb', batchId });
    // the run may read its partitions but not the ingest quarantine (a policy without that prefix)
    const store = Object.assign(Object.create(local) as LocalStore, {
      listFolders: (prefix: string) => {
        if (prefix.startsWith('quarantine/')) throw new StoreError(`access denied: ${prefix}`);
        return local.listFolders(prefix);
      },
      // status lists the whole capture quarantine (`quarantine/ingest/`, every day) in one listing
      list: (prefix: string) => {
        if (prefix.startsWith('quarantine/')) throw new StoreError(`access denied: ${prefix}`);
        return local.list(prefix);
      },
    });
    const cfg = loadConfig({ TENANT_ID: 'acme', TEMP_DIR: dir.path, DUCKDB_THREADS: '1' });
    const telemetry = { ...quietTelemetry(), logger: new Logger({ serviceName: METRIC_SERVICE }) };

    const { result, error, lines } = await captureJsonLines(() =>
      runCompactorEvent({ target_date: '2025-08-11' }, { config: cfg, store, ...telemetry }),
    );

    expect(error).toBeUndefined();
    expect(result?.tenants.map((t) => [t.tenant_id, t.status, t.rows_written])).toStrictEqual([['acme', 'compacted', 1]]);
    const logged = (lines as Record<string, unknown>[]).map((l) => [l.level, l.message, l.error ?? l.ok]);
    expect(logged).toStrictEqual([
      ['INFO', 'compaction started', undefined],
      ['INFO', 'partition finished', undefined],
      ['ERROR', 'status check failed', 'access denied: quarantine/ingest/'],
      ['INFO', 'compaction finished', true],
    ]);
  });
});
