/**
 * The nightly fan-out on Azure against Azurite's real Blob and Queue services: daily_batch plans and
 * enqueues, compact_job compacts each job (driven by a stand-in for the host's queue trigger, queueHost.ts,
 * with host.json's retry-then-poison semantics), the last job to report writes the run summary,
 * compact_job_poison handles what the host gives up on.
 */
import { join } from 'node:path';
import { InvocationContext } from '@azure/functions';
import { QueueClient } from '@azure/storage-queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CompactionJob } from '../../src/app/jobs.js';
import { readManifest } from '../../src/compaction/manifest.js';
import { lockKey, runJobsKey, runSummaryKey, stagingKey } from '../../src/staging/layout.js';
import { gzipNdjson } from '../../src/staging/ndjson.js';
import { getBytes, listAll, type ObjectStore } from '../../src/store/ObjectStore.js';
import { targetDate } from '../../src/time/jst.js';
import { stagedRecord } from '../kit/factories.js';
import { tempDir } from '../kit/tempDir.js';
import { startAzuriteWithQueues } from './azureServers.js';
import { drainQueue, peekAll } from './queueHost.js';

const DATE = '2025-08-11';
const QUEUE = 'nightly-jobs';
const MAX_DEQUEUE = 2;

let azurite: Awaited<ReturnType<typeof startAzuriteWithQueues>>;
let dirs: Awaited<ReturnType<typeof tempDir>>;
let store: ObjectStore;
let fns: {
  daily: typeof import('../../azure/functions/daily_batch.js');
  job: typeof import('../../azure/functions/compact_job.js');
};
const logs: string[] = [];
const staged: Record<string, number> = {};
const saved = { ...process.env };

const context = (functionName: string) =>
  new InvocationContext({
    functionName,
    invocationId: `${functionName}-test`,
    logHandler: (l, ...a) => logs.push(`${l}: ${a.join(' ')}`),
  });

async function stage(tenant: string, name: string, count: number) {
  const body = gzipNdjson(
    Array.from({ length: count }, (_, i) =>
      stagedRecord({
        tenant_id: tenant,
        dt: DATE,
        message_id: `${name}-${i}`,
        created_at: Date.parse(`${DATE}T03:00:00.000Z`) + i,
        source_seq: String(10 + i),
      }),
    ),
  );
  const key = /^[A-Za-z0-9_-]+$/.test(tenant)
    ? stagingKey(tenant, DATE, name)
    : `staging/messages/tenant_id=${tenant}/dt=${DATE}/${name}.ndjson.gz`;
  await store.putBytes(key, body);
  staged[tenant] = (staged[tenant] ?? 0) + body.length;
}

const readJson = async (key: string) => JSON.parse((await getBytes(store, key)).toString('utf8'));
const drain = (queue: string, handler: (m: unknown, c: InvocationContext) => Promise<unknown>, functionName: string) =>
  drainQueue(azurite.connectionString, queue, handler, { maxDequeueCount: MAX_DEQUEUE, functionName, logs });

beforeAll(async () => {
  [azurite, dirs] = await Promise.all([startAzuriteWithQueues(), tempDir()]);
  Object.assign(process.env, {
    AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString,
    AZURE_STORAGE_CONTAINER: 'fan-out',
    TENANT_ID: '*',
    TARGET_DATE_OFFSET: String((Date.parse(DATE) - Date.parse(targetDate(Date.now(), 0))) / 86_400_000),
    COMPACTION_QUEUE: QUEUE,
    COMPACTION_MAX_DEQUEUE_COUNT: String(MAX_DEQUEUE),
    DATA_DIR: join(dirs.path, 'data'),
    TEMP_DIR: dirs.path,
    DUCKDB_THREADS: '1',
    DUCKDB_MEMORY_LIMIT: '512MB',
  });
  fns = {
    daily: await import('../../azure/functions/daily_batch.js'),
    job: await import('../../azure/functions/compact_job.js'),
  };
  const { azureRuntime } = await import('../../azure/runtime.js');
  store = (await azureRuntime()).store;
});

afterAll(async () => {
  for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
  Object.assign(process.env, saved);
  await azurite?.stop();
  await dirs?.cleanup();
});

describe('nightly fan-out on Azure Storage queues (Azurite)', () => {
  it('daily_batch enqueues one message per job; workers compact them; a job failing every attempt is poisoned; the last report writes the summary', async () => {
    await stage('acme', 'a', 5);
    await stage('big', 'b', 30);
    await stage('bad.tenant', 'x', 1);

    const planned = await fns.daily.dailyBatch({}, context('daily_batch'));
    const run = { run_id: planned.run_id, target_date: DATE };
    const plan: CompactionJob[] = [
      { tenant: 'big', date: DATE, stagingBytes: staged.big as number },
      { tenant: 'acme', date: DATE, stagingBytes: staged.acme as number },
      { tenant: 'bad.tenant', date: DATE, stagingBytes: 0 },
    ];
    expect(planned).toStrictEqual({
      run_id: planned.run_id,
      target_date: DATE,
      jobs: 3,
      staging_bytes: (staged.big as number) + (staged.acme as number),
      split_jobs: 0,
      jobs_key: runJobsKey(DATE, planned.run_id),
      queue: QUEUE,
    });
    expect(await readJson(planned.jobs_key)).toStrictEqual(plan);
    // one message per job on the real queue, each the compactor's job payload
    expect(await peekAll(new QueueClient(azurite.connectionString, QUEUE))).toStrictEqual(plan.map((job) => ({ job, run })));

    const deliveries = await drain(QUEUE, fns.job.compactJob, 'compact_job');
    expect(deliveries.map((d) => [(d.body as { job: CompactionJob }).job.tenant, d.attempts, d.poisoned]).sort()).toStrictEqual(
      [
        ['acme', [{ dequeueCount: 1, outcome: 'ok' }], false],
        [
          'bad.tenant',
          [
            { dequeueCount: 1, outcome: 'threw', error: 'CompactionJobError' },
            { dequeueCount: 2, outcome: 'threw', error: 'CompactionJobError' },
          ],
          true,
        ],
        ['big', [{ dequeueCount: 1, outcome: 'ok' }], false],
      ].sort(),
    );
    // the host moved the poisoned job to `<queue>-poison`, where compact_job_poison finds it already reported
    expect(await peekAll(new QueueClient(azurite.connectionString, `${QUEUE}-poison`))).toStrictEqual([{ job: plan[2], run }]);
    const poison = await drain(`${QUEUE}-poison`, fns.job.compactJobPoison, 'compact_job_poison');
    expect(poison.map((d) => [d.attempts, d.poisoned])).toStrictEqual([[[{ dequeueCount: 1, outcome: 'ok' }], false]]);

    const summary = await readJson(runSummaryKey(DATE, planned.run_id));
    expect(
      summary.tenants.map((t: Record<string, unknown>) => [t.tenant_id, t.status, t.rows_read, t.rows_written, t.error ?? null]),
    ).toStrictEqual([
      ['big', 'compacted', 30, 30, null],
      ['acme', 'compacted', 5, 5, null],
      ['bad.tenant', 'failed', 0, 0, `tenant id "bad.tenant" may contain only letters, digits, '-' and '_'`],
    ]);
    expect([summary.jobs_planned, summary.jobs_missing, summary.ok, summary.totals]).toStrictEqual([
      3,
      0,
      false,
      { tenants: 3, failed: 1, rows_read: 35, rows_written: 35, rows_rejected: 0 },
    ]);
    expect(logs.filter((l) => l.includes('"message":"run finished"')).length).toBe(1);
  });

  it('a job whose worker crashed mid-compaction is retried once its lease expired, and the run completes', async () => {
    await store.delete(`staging/messages/tenant_id=bad.tenant/dt=${DATE}/x.ndjson.gz`);
    await stage('acme', 'a2', 2); // acme changed since the last run
    const planned = await fns.daily.dailyBatch({}, context('daily_batch'));
    expect(planned.jobs).toBe(2);
    const queue = new QueueClient(azurite.connectionString, QUEUE);

    // A worker takes acme's message, takes the partition's lease and dies: the message stays on the queue
    // (invisible until its visibility timeout, here 1 s) and the lease stays until it expires.
    const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 2, visibilityTimeout: 1 });
    const taken = receivedMessageItems.find((m) => Buffer.from(m.messageText, 'base64').toString().includes('"acme"'));
    expect(taken?.dequeueCount).toBe(1);
    const other = receivedMessageItems.find((m) => m !== taken);
    if (other) await queue.updateMessage(other.messageId, other.popReceipt, undefined, 0);
    const acquired = Date.now() - 31 * 60_000; // by the time the host retries, the 30-minute lease has expired
    await store.putBytes(
      lockKey('acme', DATE),
      `${JSON.stringify({
        run_id: 'crashed-run',
        holder: 'worker-1:42',
        acquired_at: new Date(acquired).toISOString(),
        expires_at: new Date(acquired + 30 * 60_000).toISOString(),
      })}\n`,
    );
    await new Promise((r) => setTimeout(r, 1_200));

    const deliveries = await drain(QUEUE, fns.job.compactJob, 'compact_job');
    expect(deliveries.map((d) => [(d.body as { job: CompactionJob }).job.tenant, d.attempts, d.poisoned]).sort()).toStrictEqual([
      ['acme', [{ dequeueCount: 2, outcome: 'ok' }], false],
      // received in the same batch by the crashed worker, which had released it before it died
      ['big', [{ dequeueCount: 2, outcome: 'ok' }], false],
    ]);
    const summary = await readJson(runSummaryKey(DATE, planned.run_id));
    expect(
      summary.tenants.map((t: Record<string, unknown>) => [t.tenant_id, t.status, t.rows_read, t.rows_written]),
    ).toStrictEqual([
      ['acme', 'compacted', 7, 7],
      ['big', 'compacted', 30, 30],
    ]);
    expect([summary.ok, summary.jobs_missing]).toStrictEqual([true, 0]);
    // the retry took the crashed run's lease over, committed, and released it
    expect((await readManifest(store, 'acme', DATE))?.rows_written).toBe(7);
    expect(await listAll(store, 'locks/')).toStrictEqual([]);
  });

  it('compact_job_poison records a job whose last attempt died without reporting, and completes the run', async () => {
    const planned = await fns.daily.dailyBatch({}, context('daily_batch'));
    const queue = new QueueClient(azurite.connectionString, QUEUE);
    // every attempt of every job dies before it reports (the host stand-in then moves each to the poison queue)
    for (let attempt = 1; attempt <= MAX_DEQUEUE; attempt++) {
      const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 1 });
      expect(receivedMessageItems.map((m) => m.dequeueCount)).toStrictEqual([attempt, attempt]);
      await new Promise((r) => setTimeout(r, 1_200));
    }
    const deliveries = await drain(QUEUE, fns.job.compactJob, 'compact_job');
    expect(deliveries.map((d) => [d.attempts, d.poisoned])).toStrictEqual([
      [[], true],
      [[], true],
    ]);
    const poison = await drain(`${QUEUE}-poison`, fns.job.compactJobPoison, 'compact_job_poison');
    expect(poison.map((d) => d.attempts)).toStrictEqual([
      [{ dequeueCount: 1, outcome: 'ok' }],
      [{ dequeueCount: 1, outcome: 'ok' }],
    ]);
    const summary = await readJson(runSummaryKey(DATE, planned.run_id));
    const error = `moved to the poison queue after ${MAX_DEQUEUE} attempts without a report (the worker crashed or timed out)`;
    expect(summary.tenants.map((t: Record<string, unknown>) => [t.tenant_id, t.status, t.error])).toStrictEqual([
      // largest first: acme now has two staging objects
      ['acme', 'failed', error],
      ['big', 'failed', error],
    ]);
    expect(staged.acme).toBeGreaterThan(staged.big as number);
    expect([summary.ok, summary.jobs_missing, summary.totals.failed]).toStrictEqual([false, 0, 2]);
  });
});
