import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import { METRIC_NAMESPACE, METRIC_SERVICE, METRICS_BY_SOURCE } from '../../src/ops/metrics.js';
import { StoreError } from '../../src/ports/store/errors.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { ingestStreamEvent } from '../../stream-ingest/handler.js';
import { chatItem, dynamodbRecord } from '../kit/factories.js';
import { captureJsonLines, lambdaContext } from '../kit/lambdaTelemetry.js';
import { tempDir } from '../kit/tempDir.js';

describe('stream ingest Lambda: logs and metrics', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    vi.useRealTimers();
    await dir.cleanup();
  });

  it('logs each staging object with its tenant-day, the batch as run_id, and publishes the batch figures as EMF', async () => {
    const local = new LocalStore(join(dir.path, 'lake'));
    // beta's staging cannot be written (as if access were denied on its prefix)
    const store = Object.assign(Object.create(local) as LocalStore, {
      putBytes: (key: string, body: Uint8Array | string) =>
        key.includes('tenant_id=beta/') ? Promise.reject(new StoreError(`access denied: ${key}`)) : local.putBytes(key, body),
    });
    const event = {
      Records: [
        dynamodbRecord({ seq: 1, item: chatItem({ tenantId: 'acme', messageId: 'a1' }) }),
        dynamodbRecord({ seq: 2, item: chatItem({ tenantId: 'acme', messageId: 'a2', createdAt: 'not a time' }) }),
        dynamodbRecord({ seq: 3, item: chatItem({ tenantId: 'beta', messageId: 'b1' }) }),
      ],
    } as unknown as DynamoDBStreamEvent;
    vi.useFakeTimers({ toFake: ['Date'], now: Date.parse('2025-08-11T03:00:00Z') });
    const telemetry = {
      logger: new Logger({ serviceName: METRIC_SERVICE }),
      metrics: new Metrics({ namespace: METRIC_NAMESPACE, serviceName: METRIC_SERVICE }),
    };

    const { result, error, lines } = await captureJsonLines(() =>
      ingestStreamEvent(event, { store, config: loadConfig({}), ...telemetry }, lambdaContext('req-9', 'makoto-stream-ingest')),
    );

    expect(error).toBeUndefined();
    expect(result).toStrictEqual({ batchItemFailures: [{ itemIdentifier: '3' }] });
    const batch = 'ddb-9eb1d3542306';
    const line = (level: string, message: string, fields: Record<string, unknown>) => ({
      level,
      message,
      timestamp: '2025-08-11T03:00:00.000Z',
      service: 'makoto-lake',
      cold_start: false,
      function_arn: 'arn:aws:lambda:ap-northeast-1:123456789012:function:makoto-stream-ingest',
      function_memory_size: '3008',
      function_name: 'makoto-stream-ingest',
      function_request_id: 'req-9',
      sampling_rate: 0,
      run_id: batch,
      ...fields,
    });
    const betaKey = `staging/messages/tenant_id=beta/dt=2025-08-11/${batch}_3_3.ndjson.gz`;
    expect(lines).toStrictEqual([
      {
        _aws: {
          Timestamp: Date.parse('2025-08-11T03:00:00Z'),
          CloudWatchMetrics: [
            {
              Namespace: 'MakotoLake',
              Dimensions: [['service', 'Source']],
              Metrics: METRICS_BY_SOURCE.dynamodb.map((name) => ({ Name: name, Unit: 'Count' })),
            },
          ],
        },
        service: 'makoto-lake',
        Source: 'dynamodb',
        RecordsReceived: 3,
        RowsWritten: 1,
        RecordsQuarantined: 1,
        StagingObjectsWritten: 1,
        StagingWritesFailed: 1,
      },
      line('INFO', 'staging object written', {
        tenant_id: 'acme',
        dt: '2025-08-11',
        key: `staging/messages/tenant_id=acme/dt=2025-08-11/${batch}_1_1.ndjson.gz`,
        records: 1,
      }),
      line('INFO', 'quarantine object written', {
        key: `quarantine/ingest/source=dynamodb/dt=2025-08-11/${batch}_2_2.ndjson.gz`,
        records: 1,
      }),
      line('ERROR', 'staging object not written', {
        tenant_id: 'beta',
        dt: '2025-08-11',
        key: betaKey,
        records: 1,
        error: `access denied: ${betaKey}`,
      }),
      line('WARN', 'stream batch partly ingested; retrying from the first failed record', {
        received: 3,
        staged: 1,
        quarantined: 1,
        objects: 2,
        retry_from: '3',
      }),
    ]);
  });

  it('each invocation logs with its own context and batch: nothing of the previous one is left on the logger', async () => {
    const store = new LocalStore(join(dir.path, 'lake'));
    const otherArn = 'arn:aws:dynamodb:ap-northeast-1:000000000000:table/messages/stream/2025-08-02T00:00:00.000';
    const first = {
      Records: [dynamodbRecord({ seq: 1, item: chatItem({ messageId: 'a1' }) })],
    } as unknown as DynamoDBStreamEvent;
    const second = {
      Records: [
        { ...dynamodbRecord({ seq: 7, item: chatItem({ tenantId: 'beta', messageId: 'b1' }) }), eventSourceARN: otherArn },
      ],
    } as unknown as DynamoDBStreamEvent;
    vi.useFakeTimers({ toFake: ['Date'], now: Date.parse('2025-08-11T03:00:00Z') });
    const deps = {
      store,
      config: loadConfig({}),
      logger: new Logger({ serviceName: METRIC_SERVICE }),
      metrics: new Metrics({ namespace: METRIC_NAMESPACE, serviceName: METRIC_SERVICE }),
    };

    const { error, lines } = await captureJsonLines(async () => {
      await ingestStreamEvent(first, deps, lambdaContext('req-1', 'makoto-stream-ingest'));
      await ingestStreamEvent({ Records: [] }, deps, lambdaContext('req-2', 'makoto-stream-ingest'));
      await ingestStreamEvent(second, deps, lambdaContext('req-3', 'makoto-stream-ingest'));
    });

    expect(error).toBeUndefined();
    const line = (requestId: string, batch: string, message: string, fields: Record<string, unknown>) => ({
      level: 'INFO',
      message,
      timestamp: '2025-08-11T03:00:00.000Z',
      service: 'makoto-lake',
      cold_start: false,
      function_arn: 'arn:aws:lambda:ap-northeast-1:123456789012:function:makoto-stream-ingest',
      function_memory_size: '3008',
      function_name: 'makoto-stream-ingest',
      function_request_id: requestId,
      sampling_rate: 0,
      run_id: batch,
      ...fields,
    });
    const firstBatch = 'ddb-9eb1d3542306';
    const secondBatch = `ddb-${createHash('sha256').update(otherArn).digest('hex').slice(0, 12)}`;
    const summary = { received: 1, staged: 1, quarantined: 0, objects: 1 };
    expect(lines.filter((l) => !(l as Record<string, unknown>)._aws)).toStrictEqual([
      line('req-1', firstBatch, 'staging object written', {
        tenant_id: 'acme',
        dt: '2025-08-11',
        key: `staging/messages/tenant_id=acme/dt=2025-08-11/${firstBatch}_1_1.ndjson.gz`,
        records: 1,
      }),
      line('req-1', firstBatch, 'stream batch ingested', summary),
      line('req-3', secondBatch, 'staging object written', {
        tenant_id: 'beta',
        dt: '2025-08-11',
        key: `staging/messages/tenant_id=beta/dt=2025-08-11/${secondBatch}_7_7.ndjson.gz`,
        records: 1,
      }),
      line('req-3', secondBatch, 'stream batch ingested', summary),
    ]);
  });
});
