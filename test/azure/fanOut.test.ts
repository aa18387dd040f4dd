/**
 * The nightly fan-out on Azure against Azurite's real Blob and Queue services: daily_batch plans and
 * enqueues, compact_job compacts each job (driven by a stand-in for the host's queue trigger, queueHost.ts,
 * with host.json's retry-then-poison semantics), the last job to report writes the run summary,
 * compact_job_poison handles what the host gives up on.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { InvocationContext } from '@azure/functions';
import { QueueClient } from '@azure/storage-queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resetAzureRuntime } from '../../azure/runtime.js';
import {
  analyticsPrefix,
  COMPACTION_WORK_ROOT,
  lockKey,
  manifestKey,
  runJobsKey,
  runSummaryKey,
  stagingKey,
} from '../../src/core/staging/layout.js';
import { gzipNdjson } from '../../src/core/staging/ndjson.js';
import { jstDate, targetDate } from '../../src/core/time/jst.js';
import type { SplitRef } from '../../src/engine/splitPartition.js';
import { eraseTenant } from '../../src/jobs/erase/eraseTenant.js';
import type { CompactionJob } from '../../src/jobs/fanOut.js';
import { runCompaction } from '../../src/jobs/runCompaction.js';
import { readManifest } from '../../src/lake/manifest.js';
import { openDuckDb } from '../../src/ports/duckdb/openDuckDb.js';
import { getBytes, listAll, type ObjectStore } from '../../src/ports/store/ObjectStore.js';
import { startAzuriteWithQueues } from '../../tools/azureServers.js';
import { rawScan } from '../erase/eraseLake.js';
import { restoreEnvironment } from '../kit/environment.js';
import { stagedRecord } from '../kit/factories.js';
import { readPartition } from '../kit/pipeline.js';
import { ids, SPLIT_DAY_VERSIONS, singlePassOfSplitDay, stageSplitDay, stageVersions } from '../kit/splitDay.js';
import { tempDir } from '../kit/tempDir.js';
import { jsonLines } from './functionLogs.js';
import { drainQueue, peekAll } from './queueHost.js';

const DATE = '2025-08-11';
const QUEUE = 'nightly-jobs';
const TASK_QUEUE = 'nightly-tasks';
const MAX_DEQUEUE = 2;
/** Tasks of a split stage queued or running at once: 2 of 4, so each finished task enqueues the next. */
const TASK_WINDOW = 2;

let azurite: Awaited<ReturnType<typeof startAzuriteWithQueues>>;
let dirs: Awaited<ReturnType<typeof tempDir>>;
let store: ObjectStore;
let fns: {
  daily: typeof import('../../azure/functions/daily_batch.js');
  job: typeof import('../../azure/functions/compact_job.js');
  task: typeof import('../../azure/functions/compact_task.js');
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

/** The JSON lines (docs/AZURE.md, Operations) logged with this message, with the level they were logged at. */
const logLines = (message: string) => jsonLines(logs).filter((l) => l.message === message);
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
    COMPACTION_TASK_QUEUE: TASK_QUEUE,
    COMPACTION_TASK_CONCURRENCY: String(TASK_WINDOW),
    COMPACTION_MAX_DEQUEUE_COUNT: String(MAX_DEQUEUE),
    DATA_DIR: join(dirs.path, 'data'),
    TEMP_DIR: dirs.path,
    DUCKDB_THREADS: '1',
    DUCKDB_MEMORY_LIMIT: '512MB',
  });
  fns = {
    daily: await import('../../azure/functions/daily_batch.js'),
    job: await import('../../azure/functions/compact_job.js'),
    task: await import('../../azure/functions/compact_task.js'),
  };
  const { azureRuntime } = await import('../../azure/runtime.js');
  store = (await azureRuntime()).store;
});

afterAll(async () => {
  restoreEnvironment(saved);
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
      // the privacy step ran first: nothing erased, no retention
      privacy: { reapplied: [], offboarded: [], retention: [], errors: [] },
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

    // the lines the alerts of docs/AZURE.md query, as compact_http writes them: one per job, the run's metrics, the status check
    expect(
      logLines('partition finished')
        .map((l) => [l.tenant_id, l.status, l.level, l.attempt])
        .sort(),
    ).toStrictEqual(
      [
        ['acme', 'compacted', 'information', 1],
        ['bad.tenant', 'failed', 'error', 2],
        ['big', 'compacted', 'information', 1],
      ].sort(),
    );
    expect(logLines('partition attempt failed').map((l) => [l.tenant_id, l.level, l.attempt, l.max_attempts])).toStrictEqual([
      ['bad.tenant', 'warning', 1, 2],
    ]);
    const metrics = logLines('metrics');
    expect(metrics.map((m) => [m.Source, m.run_id])).toStrictEqual([
      ['compaction', planned.run_id],
      ['status', planned.run_id],
    ]);
    expect(metrics[0]).toMatchObject({ RunsCompleted: 1, PartitionsCompacted: 2, PartitionsFailed: 1, PartitionsLocked: 0 });
    expect(metrics[1]).toMatchObject({ PartitionsNeedingAttention: 0, StaleParts: 0, UncompactedStagingDays: 0 });
    expect(logLines('status checked').map((l) => [l.level, l.needs_attention, l.run_id])).toStrictEqual([
      ['information', 0, planned.run_id],
    ]);
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

describe('a split job on the second queue stage (Azurite)', () => {
  const DAY = '2025-08-12';
  const settingsBefore = { ...process.env };
  const taskName = (d: { body: unknown }) => {
    const { action, range, bucket } = (d.body as { split_task: { action: string; range?: number; bucket?: number } }).split_task;
    return action === 'map' ? `range ${range}` : action === 'reduce' ? `bucket ${bucket}` : action;
  };

  /** The day's tenants, the target day moved to DAY, and the split day's threshold: the runtime re-reads them. */
  async function night(tenants: string, splitDayBytes: number) {
    Object.assign(process.env, {
      TENANT_ID: tenants,
      TARGET_DATE_OFFSET: String((Date.parse(DAY) - Date.parse(targetDate(Date.now(), 0))) / 86_400_000),
      SPLIT_THRESHOLD_BYTES: String(Math.ceil(splitDayBytes / 2)),
    });
    resetAzureRuntime();
    return fns.daily.dailyBatch({}, context('daily_batch'));
  }

  afterAll(() => {
    // (assigning undefined to process.env would store the string "undefined")
    for (const key of ['TENANT_ID', 'TARGET_DATE_OFFSET', 'SPLIT_THRESHOLD_BYTES']) {
      if (settingsBefore[key] === undefined) delete process.env[key];
      else process.env[key] = settingsBefore[key];
    }
    resetAzureRuntime();
  });

  it('compact_job starts it, compact_task runs 4 map and 4 reduce tasks two at a time and the commit: exactly the single-pass rows, then the summary', async () => {
    const bytes = await stageSplitDay([store], 'huge', DAY);
    await stageVersions([store], 'small', DAY, 's', ids(0, 3, 100));
    const planned = await night('huge,small', bytes);
    const run = { run_id: planned.run_id, target_date: DAY };
    const [huge, small] = (await readJson(planned.jobs_key)) as CompactionJob[];
    expect([planned.jobs, planned.split_jobs, huge?.split, small?.split]).toStrictEqual([
      2,
      1,
      { ranges: 4, buckets: 4 },
      undefined,
    ]);

    // the job queue: huge starts its split (its first two map tasks go to the task queue), small compacts
    const jobs = await drain(QUEUE, fns.job.compactJob, 'compact_job');
    expect(jobs.map((d) => [(d.body as { job: CompactionJob }).job.tenant, d.attempts, d.poisoned])).toStrictEqual([
      ['huge', [{ dequeueCount: 1, outcome: 'ok' }], false],
      ['small', [{ dequeueCount: 1, outcome: 'ok' }], false],
    ]);
    const queued = (await peekAll(new QueueClient(azurite.connectionString, TASK_QUEUE))) as {
      split_task: { ref: SplitRef };
    }[];
    const ref = queued[0]?.split_task.ref as SplitRef;
    const task = (action: string, extra: object = {}) => ({ split_task: { action, job: huge, ref, ...extra }, run });
    expect(queued).toStrictEqual([task('map', { range: 0 }), task('map', { range: 1 })]);
    expect(await listAll(store, runSummaryKey(DAY, planned.run_id))).toStrictEqual([]); // huge has not reported

    // the task queue: each finished task enqueues the next of its stage; the last map the reduces, the last reduce the commit
    const tasks = await drain(TASK_QUEUE, fns.task.compactTask, 'compact_task');
    expect(tasks.map((d) => [taskName(d), d.attempts, d.poisoned])).toStrictEqual(
      ['range 0', 'range 1', 'range 2', 'range 3', 'bucket 0', 'bucket 1', 'bucket 2', 'bucket 3', 'commit'].map((name) => [
        name,
        [{ dequeueCount: 1, outcome: 'ok' }],
        false,
      ]),
    );
    expect(tasks.map((d) => d.body)).toStrictEqual([
      ...[0, 1, 2, 3].map((range) => task('map', { range })),
      ...[0, 1, 2, 3].map((bucket) => task('reduce', { bucket })),
      task('commit'),
    ]);

    // exactly the rows and counts of one pass over the same staging; the commit wrote the run summary
    const single = await singlePassOfSplitDay('huge', DAY, dirs.path);
    const rows = await readPartition(store, 'huge', DAY, join(dirs.path, 'read-split'));
    expect(rows.map((r) => [r.message_id, r.source_seq])).toStrictEqual(SPLIT_DAY_VERSIONS);
    expect(rows).toStrictEqual(single.rows);
    const summary = await readJson(runSummaryKey(DAY, planned.run_id));
    expect(
      summary.tenants.map((t: Record<string, unknown>) => [
        t.tenant_id,
        t.status,
        t.rows_read,
        t.rows_written,
        t.duplicates_removed,
        t.versions_superseded,
      ]),
    ).toStrictEqual([
      ['huge', 'compacted', 30, 15, 7, 8],
      ['small', 'compacted', 3, 3, 0, 0],
    ]);
    expect([single.result.rowsRead, single.result.duplicatesRemoved, single.result.versionsSuperseded]).toStrictEqual([30, 7, 8]);
    expect([summary.ok, summary.jobs_missing]).toStrictEqual([true, 0]);
    expect(await listAll(store, 'locks/')).toStrictEqual([]);
    expect(await listAll(store, COMPACTION_WORK_ROOT)).toStrictEqual([]);
    // the split's commit writes its job's `partition finished` line, with the split's id
    expect(
      logLines('partition finished')
        .filter((l) => l.run_id === planned.run_id)
        .map((l) => [l.tenant_id, l.status, l.rows_written, typeof l.split_id])
        .sort(),
    ).toStrictEqual(
      [
        ['huge', 'compacted', single.result.rowsWritten, 'string'],
        ['small', 'compacted', 3, 'undefined'],
      ].sort(),
    );
  });

  it('a task whose every attempt died is poisoned: compact_task_poison abandons the split once and records the job failed', async () => {
    const bytes = await stageSplitDay([store], 'doomed', DAY);
    const planned = await night('doomed', bytes);
    const [doomed] = (await readJson(planned.jobs_key)) as CompactionJob[];
    await drain(QUEUE, fns.job.compactJob, 'compact_job');
    const queue = new QueueClient(azurite.connectionString, TASK_QUEUE);
    // every attempt of both queued map tasks dies before it reports (killed, timed out)
    for (let attempt = 1; attempt <= MAX_DEQUEUE; attempt++) {
      const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 1 });
      expect(receivedMessageItems.map((m) => m.dequeueCount)).toStrictEqual([attempt, attempt]);
      await new Promise((r) => setTimeout(r, 1_200));
    }
    const tasks = await drain(TASK_QUEUE, fns.task.compactTask, 'compact_task');
    expect(tasks.map((d) => [taskName(d), d.attempts, d.poisoned])).toStrictEqual([
      ['range 0', [], true],
      ['range 1', [], true],
    ]);
    // the first poisoned task abandons the split; the second finds it abandoned
    const outcomes: unknown[] = [];
    const poison = await drain(
      `${TASK_QUEUE}-poison`,
      async (m, c) => outcomes.push(await fns.task.compactTaskPoison(m, c)),
      'compact_task_poison',
    );
    expect(poison.map((d) => [taskName(d), d.attempts])).toStrictEqual([
      ['range 0', [{ dequeueCount: 1, outcome: 'ok' }]],
      ['range 1', [{ dequeueCount: 1, outcome: 'ok' }]],
    ]);
    expect(outcomes).toStrictEqual([
      { task: 'range 0', status: 'failed', summaryWritten: true },
      { task: 'range 1', status: 'skipped', summaryWritten: false },
    ]);
    const summary = await readJson(runSummaryKey(DAY, planned.run_id));
    expect(summary.tenants.map((t: Record<string, unknown>) => [t.tenant_id, t.status, t.rows_written, t.error])).toStrictEqual([
      ['doomed', 'failed', 0, `range 0 moved to the poison queue after ${MAX_DEQUEUE} attempts`],
    ]);
    expect([summary.ok, summary.jobs_missing, doomed?.split]).toStrictEqual([false, 0, { ranges: 4, buckets: 4 }]);
    // nothing of the split is left and nothing was published
    expect(await listAll(store, 'locks/')).toStrictEqual([]);
    expect(await listAll(store, COMPACTION_WORK_ROOT)).toStrictEqual([]);
    expect(await listAll(store, analyticsPrefix('doomed', DAY))).toStrictEqual([]);
    expect(await store.head(manifestKey('doomed', DAY))).toBe(undefined);
  });

  it('a task failing its last attempt abandons the split itself, with its error; the poison handler then has nothing to do', async () => {
    const bytes = await stageSplitDay([store], 'shaky', DAY);
    const planned = await night('shaky', bytes);
    await drain(QUEUE, fns.job.compactJob, 'compact_job');
    // a staging object of range 3 (objects c and d: the ranges are cut by bytes) is rewritten after the split planned it
    const key = stagingKey('shaky', DAY, 'd');
    const plannedEtag = (await store.head(key))?.etag;
    await stageVersions([store], 'shaky', DAY, 'd', ids(12, 14, 160));
    const nowEtag = (await store.head(key))?.etag;
    const [first] = (await peekAll(new QueueClient(azurite.connectionString, TASK_QUEUE))) as { split_task: { ref: SplitRef } }[];
    const { splitId } = (first as { split_task: { ref: SplitRef } }).split_task.ref;

    const tasks = await drain(TASK_QUEUE, fns.task.compactTask, 'compact_task');
    expect(tasks.map((d) => [taskName(d), d.attempts.map((a) => a.outcome), d.poisoned])).toStrictEqual([
      ['range 0', ['ok'], false],
      ['range 1', ['ok'], false],
      ['range 2', ['ok'], false],
      ['range 3', ['threw', 'threw'], true],
    ]);
    const outcomes: unknown[] = [];
    await drain(
      `${TASK_QUEUE}-poison`,
      async (m, c) => outcomes.push(await fns.task.compactTaskPoison(m, c)),
      'compact_task_poison',
    );
    expect(outcomes).toStrictEqual([{ task: 'range 3', status: 'skipped', summaryWritten: false }]);

    const summary = await readJson(runSummaryKey(DAY, planned.run_id));
    expect(summary.tenants.map((t: Record<string, unknown>) => [t.tenant_id, t.status, t.run_id, t.error])).toStrictEqual([
      [
        'shaky',
        'failed',
        splitId,
        `range 3 failed ${MAX_DEQUEUE} times: range 3 of split ${splitId} of tenant shaky for ${DAY} failed: ${key} changed after the split was planned (etag ${plannedEtag}, now ${nowEtag})`,
      ],
    ]);
    expect(await listAll(store, 'locks/')).toStrictEqual([]);
    expect(await listAll(store, COMPACTION_WORK_ROOT)).toStrictEqual([]);
    expect(await store.head(manifestKey('shaky', DAY))).toBe(undefined);
  });
});

describe('the privacy step daily_batch runs before it plans (Azurite)', () => {
  const DAY = '2025-08-13';
  const OLD = '2025-08-10';
  const GONE = 'gone-user';
  const SECRET = 'secret words of gone-user';
  const settingsBefore = { ...process.env };
  const record = (date: string, id: string, sender: string, content: string, i: number) =>
    stagedRecord({
      tenant_id: 'priv',
      dt: date,
      message_id: id,
      sender_id: sender,
      content,
      created_at: Date.parse(`${date}T03:00:00.000Z`) + i,
      source_seq: String(700 + i),
    });
  const rowsOf = async (date: string) =>
    (await readPartition(store, 'priv', date, join(dirs.path, 'read-priv')))
      .map((r) => [r.message_id, r.sender_id, r.content])
      .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

  afterAll(() => {
    for (const key of ['TENANT_ID', 'TARGET_DATE_OFFSET', 'LAKE_RETENTION_DAYS']) {
      if (settingsBefore[key] === undefined) delete process.env[key];
      else process.env[key] = settingsBefore[key];
    }
    resetAzureRuntime();
  });

  it('a record of an erased sender captured after the erase is erased before the night compacts; retention applies; a retry skips the step', async () => {
    Object.assign(process.env, {
      TENANT_ID: 'priv',
      TARGET_DATE_OFFSET: String((Date.parse(DAY) - Date.parse(targetDate(Date.now(), 0))) / 86_400_000),
    });
    resetAzureRuntime();
    const { azureRuntime } = await import('../../azure/runtime.js');
    await store.putBytes(
      stagingKey('priv', DAY, 'first'),
      gzipNdjson([
        record(DAY, 'm-gone-0', GONE, SECRET, 0),
        record(DAY, 'm-kept-0', 'kept-user', 'kept 0', 1),
        record(DAY, 'm-kept-1', 'kept-user', 'kept 1', 2),
      ]),
    );
    await store.putBytes(stagingKey('priv', OLD, 'first'), gzipNdjson([record(OLD, 'm-old', 'kept-user', 'old', 0)]));
    const { config } = await azureRuntime();
    for (const date of [DAY, OLD]) {
      const compacted = await runCompaction({ store, config, date, tenants: ['priv'] });
      expect(compacted.results.map((r) => r.status)).toStrictEqual(['compacted']);
    }

    // the person asks to be erased
    await mkdir(join(dirs.path, 'erase-work'), { recursive: true });
    const db = await openDuckDb({ memoryLimit: '512MB', threads: 1, workDirectory: join(dirs.path, 'erase-db') });
    let receiptKey: string | undefined;
    try {
      const erased = await eraseTenant(
        { store, db, workDirectory: join(dirs.path, 'erase-work') },
        { tenant: 'priv', selector: { senders: [GONE], conversations: [], messages: [] } },
      );
      expect([erased.receipt?.status, erased.counts.rows]).toStrictEqual(['done', 1]);
      receiptKey = erased.receiptKey;
    } finally {
      db.closeSync();
    }
    // after the erase, capture delivers one more message of that person (and one of another)
    await store.putBytes(
      stagingKey('priv', DAY, 'after-erase'),
      gzipNdjson([
        record(DAY, 'm-gone-after', GONE, `${SECRET} again`, 3),
        record(DAY, 'm-kept-after', 'kept-user', 'kept after', 4),
      ]),
    );
    // retention: priv keeps DAY and later (a per-tenant override; every other tenant keeps every day)
    process.env.LAKE_RETENTION_DAYS = `0,priv=${(Date.parse(jstDate(Date.now())) - Date.parse(DAY)) / 86_400_000 + 1}`;
    resetAzureRuntime();

    const logged = logs.length; // the lines of this night only
    const planned = await fns.daily.dailyBatch({}, context('daily_batch'));
    expect([planned.jobs, planned.privacy]).toStrictEqual([
      1,
      { reapplied: [receiptKey], offboarded: [], retention: [`tenant_id=priv/dt=${OLD}`], errors: [] },
    ]);
    const privacyLines = jsonLines(logs.slice(logged)).filter((l) => l.message === 'privacy step finished');
    expect(privacyLines.map((l) => [l.level, l.reapplied, l.retention])).toStrictEqual([
      ['information', [receiptKey], [`tenant_id=priv/dt=${OLD}`]],
    ]);
    const deliveries = await drain(QUEUE, fns.job.compactJob, 'compact_job');
    expect(deliveries.map((d) => [(d.body as { job: CompactionJob }).job.tenant, d.poisoned])).toStrictEqual([['priv', false]]);
    // the record captured after the erase never reached the table; the other one did; the old day is gone
    expect(await rowsOf(DAY)).toStrictEqual([
      ['m-kept-0', 'kept-user', 'kept 0'],
      ['m-kept-1', 'kept-user', 'kept 1'],
      ['m-kept-after', 'kept-user', 'kept after'],
    ]);
    expect(await rowsOf(OLD)).toStrictEqual([]);
    const summary = await readJson(runSummaryKey(DAY, planned.run_id));
    expect(summary.tenants.map((t: Record<string, unknown>) => [t.tenant_id, t.dt, t.status, t.rows_written])).toStrictEqual([
      ['priv', DAY, 'compacted', 3],
    ]);
    // nothing the lake keeps holds the person's id or words
    expect(await rawScan(store, [GONE, SECRET])).toStrictEqual({});

    // a retry of the timer (an earlier attempt failed or outlasted functionTimeout) plans without the step
    const retried = new InvocationContext({
      functionName: 'daily_batch',
      invocationId: 'daily_batch-retry',
      logHandler: (l, ...a) => logs.push(`${l}: ${a.join(' ')}`),
      retryContext: { retryCount: 1, maxRetryCount: 3 },
    });
    const again = await fns.daily.dailyBatch({}, retried);
    const skipped = 'retry 1 of daily_batch: the privacy step ran (or timed out) in an earlier attempt';
    expect(again.privacy).toStrictEqual({ skipped });
    expect(logLines('privacy step skipped').map((l) => [l.level, l.reason])).toStrictEqual([['warning', skipped]]);
    await drain(QUEUE, fns.job.compactJob, 'compact_job');
  });
});

describe('a night with nothing to compact (Azurite)', () => {
  const settingsBefore = { ...process.env };
  afterAll(() => {
    for (const key of ['AZURE_STORAGE_CONTAINER', 'TENANT_ID']) {
      if (settingsBefore[key] === undefined) delete process.env[key];
      else process.env[key] = settingsBefore[key];
    }
    resetAzureRuntime();
  });

  it('daily_batch plans no job and ends the run itself: the summary, the metrics, the status check and one "run finished"', async () => {
    Object.assign(process.env, { AZURE_STORAGE_CONTAINER: 'fan-out-empty', TENANT_ID: '*' });
    resetAzureRuntime();
    const { azureRuntime } = await import('../../azure/runtime.js');
    const empty = (await azureRuntime()).store;
    const logged = logs.length;
    const planned = await fns.daily.dailyBatch({}, context('daily_batch'));
    expect([planned.jobs, planned.staging_bytes, planned.split_jobs]).toStrictEqual([0, 0, 0]);
    const lines = jsonLines(logs.slice(logged));
    const summary = JSON.parse((await getBytes(empty, runSummaryKey(planned.target_date, planned.run_id))).toString('utf8'));
    expect([summary.run_id, summary.tenants, summary.privacy]).toStrictEqual([
      planned.run_id,
      [],
      { reapplied: 0, offboarded: 0, retention: 0 },
    ]);
    expect(lines.filter((l) => l.message === 'run finished').map((l) => [l.level, l.run_id])).toStrictEqual([
      ['information', planned.run_id],
    ]);
    const metrics = lines.filter((l) => l.message === 'metrics');
    expect(metrics.map((m) => [m.Source, m.run_id])).toStrictEqual([
      ['compaction', planned.run_id],
      ['status', planned.run_id],
    ]);
    expect(metrics[0]).toMatchObject({ RunsCompleted: 1, PartitionsCompacted: 0, PartitionsFailed: 0, PartitionsLocked: 0 });
    expect(lines.filter((l) => l.message === 'status checked').map((l) => [l.level, l.needs_attention])).toStrictEqual([
      ['information', 0],
    ]);
  });
});
