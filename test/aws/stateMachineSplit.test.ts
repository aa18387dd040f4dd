/**
 * The nightly state machine's split branch (compactor/nightly.asl.json, ItemProcessor `SplitOrNot`): a job
 * the plan split runs as StartSplit → MapRanges (inline Map over K ranges) → ReduceBuckets (over B buckets)
 * → CommitSplit, each step the real compactor handler invoked with the payload the definition builds, against
 * s3rver; a task failing every retry is caught and the split abandoned.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyticsPrefix, COMPACTION_WORK_ROOT, manifestKey, runSummaryKey } from '../../src/core/staging/layout.js';
import type { SplitRef } from '../../src/engine/splitPartition.js';
import type { CompactionJob } from '../../src/jobs/fanOut.js';
import { readManifest } from '../../src/lake/manifest.js';
import { getBytes, listAll } from '../../src/ports/store/ObjectStore.js';
import { S3Store } from '../../stores/s3/S3Store.js';
import { restoreEnvironment } from '../kit/environment.js';
import { readPartition } from '../kit/pipeline.js';
import { ids, SPLIT_DAY_VERSIONS, singlePassOfSplitDay, stageSplitDay, stageVersions } from '../kit/splitDay.js';
import { tempDir } from '../kit/tempDir.js';
import { runStateMachine } from './support/aslRunner.js';
import { lambdaEnvironment, type S3rver, startS3rver } from './support/localAws.js';
import { deployedDefinition, handlerOf, substitutionValues } from './support/nightlyDefinition.js';

/** What the plan splits a job of twice the threshold into: K = B = ceil(2 · bytes / threshold). */
const SHAPE = { ranges: 4, buckets: 4 };
/** The privacy step's outcome on a lake with nothing erased and no retention, as the summary receives it. */
const NOTHING_TO_ERASE = { report: { reapplied: [], offboarded: [], retention: [], errors: [] } };

describe('nightly state machine: a split job against s3rver', () => {
  const DAY = '2025-08-12';
  let s3: S3rver;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let store: S3Store;
  const saved = { ...process.env };

  /** The split day for `tenant`, with SPLIT_THRESHOLD_BYTES at half its staging: the plan splits it 4 × 4. */
  async function stageHuge(tenant: string) {
    process.env.SPLIT_THRESHOLD_BYTES = String(Math.ceil((await stageSplitDay([store], tenant, DAY)) / 2));
  }

  /** Runs the state machine; `before` sees each invocation first and may fail it (a Lambda error) or change the lake. */
  const execute = (
    before?: (state: string, payload: { split_task?: { range?: number } }) => Error | undefined | Promise<undefined>,
  ) =>
    runStateMachine(
      deployedDefinition(substitutionValues),
      { target_date: DAY },
      {
        getObject: async (_bucket, key) => (await getBytes(store, key)).toString('utf8'),
        invoke: async (arn, payload, call) => {
          const error = await before?.(call.state, payload as { split_task?: { range?: number } });
          if (error) throw error;
          return (await handlerOf(arn))(payload);
        },
      },
    );

  beforeAll(async () => {
    [s3, work] = await Promise.all([startS3rver(), tempDir()]);
    await s3.createBucket('lake');
    store = new S3Store({ bucket: 'lake', client: s3.client() });
    Object.assign(process.env, { ...lambdaEnvironment(s3, work.path), DUCKDB_THREADS: '1' });
  });
  afterAll(async () => {
    restoreEnvironment(saved);
    await s3?.stop();
    await work?.cleanup();
  });

  it('runs a split job as start, K map tasks, B reduce tasks and a commit: exactly the single-pass rows; the other job as one compaction', async () => {
    process.env.TENANT_ID = 'huge,small';
    await stageHuge('huge');
    await stageVersions([store], 'small', DAY, 's', ids(0, 3, 100));
    // Lambda refuses the first invocation of range 2 once: the account's concurrency is exhausted
    let throttled = false;
    const run = await execute((state, payload) => {
      if (state !== 'MapRange' || payload.split_task?.range !== 2 || throttled) return undefined;
      throttled = true;
      return Object.assign(new Error('Rate Exceeded.'), { name: 'Lambda.TooManyRequestsException' });
    });

    const [jobsKey] = (await listAll(store, `runs/${DAY}/`)).map((o) => o.key).filter((k) => k.endsWith('/jobs.json'));
    const runId = jobsKey?.split('/')[2] as string;
    const runRef = { run_id: runId, target_date: DAY };
    const plan = JSON.parse((await getBytes(store, jobsKey as string)).toString('utf8')) as CompactionJob[];
    expect(plan.map((j) => [j.tenant, j.split ?? null])).toStrictEqual([
      ['huge', SHAPE],
      ['small', null],
    ]);
    const [huge, small] = plan as [CompactionJob, CompactionJob];

    // the handlers ran in the order the definition names them, with the payloads it built
    const calls = run.invocations.map((c) => [c.state, c.functionName.split(':').at(-1), c.payload, c.error ?? null]);
    const start = calls.find((c) => c[0] === 'StartSplit');
    expect(start).toStrictEqual([
      'StartSplit',
      'CompactorFunction',
      { split_task: { action: 'start', job: huge }, run: runRef },
      null,
    ]);
    const ref = ((calls.find((c) => c[0] === 'MapRange') as unknown[])[2] as { split_task: { ref: SplitRef } }).split_task.ref;
    expect([ref.tenant, ref.date, ref.ranges, ref.buckets]).toStrictEqual(['huge', DAY, SHAPE.ranges, SHAPE.buckets]);
    const task = (action: string, extra: object = {}) => ({ split_task: { action, job: huge, ref, ...extra }, run: runRef });
    expect([calls[0]?.[0], calls[1]?.[0], calls.at(-1)?.[0]]).toStrictEqual(['Privacy', 'Plan', 'Summarise']);
    // the split's tasks: every range, then every bucket (SplitTaskConcurrency at a time, so in any order within
    // a stage), then the commit
    const splitCalls = calls.filter((c) => ['MapRange', 'ReduceBucket', 'CommitSplit'].includes(c[0] as string));
    const inAnyOrder = (list: unknown[][]) => list.map((c) => JSON.stringify(c)).sort();
    const maps = [
      ['MapRange', 'CompactorFunction', task('map', { range: 0 }), null],
      ['MapRange', 'CompactorFunction', task('map', { range: 1 }), null],
      ['MapRange', 'CompactorFunction', task('map', { range: 2 }), 'Lambda.TooManyRequestsException'],
      ['MapRange', 'CompactorFunction', task('map', { range: 2 }), null],
      ['MapRange', 'CompactorFunction', task('map', { range: 3 }), null],
    ];
    const reduces = Array.from({ length: SHAPE.buckets }, (_, bucket) => [
      'ReduceBucket',
      'CompactorFunction',
      task('reduce', { bucket }),
      null,
    ]);
    expect(inAnyOrder(splitCalls.slice(0, maps.length))).toStrictEqual(inAnyOrder(maps));
    expect(inAnyOrder(splitCalls.slice(maps.length, maps.length + reduces.length))).toStrictEqual(inAnyOrder(reduces));
    expect(splitCalls.slice(maps.length + reduces.length)).toStrictEqual([
      ['CommitSplit', 'CompactorFunction', task('commit'), null],
    ]);
    expect(calls.filter((c) => c[0] === 'CompactJob')).toStrictEqual([
      ['CompactJob', 'CompactorFunction', { job: small, run: runRef }, null],
    ]);
    // the throttled invocation was retried after the definition's 2 s
    expect([run.status, run.retries, run.caught]).toStrictEqual([
      'SUCCEEDED',
      [{ state: 'MapRange', error: 'Lambda.TooManyRequestsException', delaySeconds: 2 }],
      [],
    ]);

    // the split partition holds exactly the rows, and counts, of one pass over the same staging
    const single = await singlePassOfSplitDay('huge', DAY, work.path);
    const rows = await readPartition(store, 'huge', DAY, join(work.path, 'read-split'));
    expect(rows.map((r) => [r.message_id, r.source_seq])).toStrictEqual(SPLIT_DAY_VERSIONS);
    expect(rows).toStrictEqual(single.rows);
    const counts = (t: Record<string, unknown>) => [
      t.tenant_id,
      t.status,
      t.rows_read,
      t.rows_written,
      t.duplicates_removed,
      t.versions_superseded,
    ];
    // 30 rows read: 5 re-deliveries (m05..m09) + 2 (m00, m01 at 200) are duplicates, 8 older versions superseded
    expect([
      single.result.rowsRead,
      single.result.rowsWritten,
      single.result.duplicatesRemoved,
      single.result.versionsSuperseded,
    ]).toStrictEqual([30, 15, 7, 8]);
    const output = run.output as { tenants: Record<string, unknown>[] };
    expect(output.tenants.map(counts)).toStrictEqual([
      ['huge', 'compacted', 30, 15, 7, 8],
      ['small', 'compacted', 3, 3, 0, 0],
    ]);
    expect(await listAll(store, 'locks/')).toStrictEqual([]);
  });

  it('abandons a split whose map task fails every retry: lease released, nothing published, the job recorded failed, the other job committed', async () => {
    process.env.TENANT_ID = 'doomed,small2';
    await stageHuge('doomed');
    await stageVersions([store], 'small2', DAY, 's', ids(0, 2, 100));
    // every invocation of range 1 dies (say /tmp filled up); the other ranges succeed
    const run = await execute((state, payload) =>
      state === 'MapRange' && payload.split_task?.range === 1 ? new Error('ENOSPC: no space left on device') : undefined,
    );

    // the second run of the day: its id sorts after the first's
    const jobsKey = (await listAll(store, `runs/${DAY}/`)).map((o) => o.key).filter((k) => k.endsWith('/jobs.json'))[1];
    const runId = jobsKey?.split('/')[2] as string;
    const runRef = { run_id: runId, target_date: DAY };
    const [doomed] = JSON.parse((await getBytes(store, jobsKey as string)).toString('utf8')) as CompactionJob[];
    const calls = run.invocations.map((c) => [c.state, c.payload, c.error ?? null]);
    const ref = ((calls.find((c) => c[0] === 'MapRange') as unknown[])[1] as { split_task: { ref: SplitRef } }).split_task.ref;
    // range 1: the first attempt and two retries (30 s, 90 s), then the Map's Catch abandons the split
    expect(calls.filter((c) => c[2] !== null)).toStrictEqual(
      Array.from({ length: 3 }, () => [
        'MapRange',
        { split_task: { action: 'map', job: doomed, ref, range: 1 }, run: runRef },
        'Error',
      ]).concat([['Summarise', { run: runRef, privacy: NOTHING_TO_ERASE }, 'CompactionRunFailedError']] as never[]),
    );
    expect(run.retries.filter((r) => r.state === 'MapRange').map((r) => r.delaySeconds)).toStrictEqual([30, 90]);
    expect(run.caught).toStrictEqual([{ state: 'MapRanges', error: 'Error', next: 'AbandonSplit' }]);
    const failure = { Error: 'Error', Cause: 'ENOSPC: no space left on device' };
    expect(calls.filter((c) => ['ReduceBucket', 'CommitSplit', 'AbandonSplit'].includes(c[0] as string))).toStrictEqual([
      ['AbandonSplit', { split_task: { action: 'abandon', job: doomed, ref, failure }, run: runRef }, null],
    ]);

    // the execution fails after the summary, which names the abandoned job; the other job committed
    expect([run.status, run.error]).toStrictEqual([
      'FAILED',
      { name: 'CompactionRunFailedError', cause: `run ${runId} of ${DAY}: 1 of 2 jobs failed (doomed ${DAY})` },
    ]);
    const summary = JSON.parse((await getBytes(store, runSummaryKey(DAY, runId))).toString('utf8'));
    expect(
      summary.tenants.map((t: Record<string, unknown>) => [t.tenant_id, t.status, t.rows_written, t.error ?? null]),
    ).toStrictEqual([
      ['doomed', 'failed', 0, 'Error: ENOSPC: no space left on device'],
      ['small2', 'compacted', 2, null],
    ]);
    // nothing of the split is left: no lease, no partition, no manifest, no work objects
    expect(await listAll(store, 'locks/')).toStrictEqual([]);
    expect(await listAll(store, analyticsPrefix('doomed', DAY))).toStrictEqual([]);
    expect(await store.head(manifestKey('doomed', DAY))).toBe(undefined);
    expect(await listAll(store, COMPACTION_WORK_ROOT)).toStrictEqual([]);
    expect((await readManifest(store, 'small2', DAY))?.rows_written).toBe(2);
  });

  it('a split job whose staging is gone when it starts is recorded by StartSplit and ends there', async () => {
    process.env.TENANT_ID = 'gone';
    await stageHuge('gone');
    // the staging expires between the plan and the start (the lifecycle rule, a clean-up by hand)
    const run = await execute(async (state) => {
      if (state === 'StartSplit')
        for (const o of await listAll(store, `staging/messages/tenant_id=gone/`)) await store.delete(o.key);
      return undefined;
    });
    const jobsKey = (await listAll(store, `runs/${DAY}/`)).map((o) => o.key).filter((k) => k.endsWith('/jobs.json'))[2];
    const runId = jobsKey?.split('/')[2] as string;
    const [gone] = JSON.parse((await getBytes(store, jobsKey as string)).toString('utf8')) as CompactionJob[];
    expect(gone?.split).toStrictEqual(SHAPE);
    expect(run.invocations.map((c) => [c.state, c.error ?? null])).toStrictEqual([
      ['Privacy', null],
      ['Plan', null],
      ['StartSplit', null],
      ['Summarise', null],
    ]);
    expect(run.visited.filter((state) => state.startsWith('Split'))).toStrictEqual([
      'SplitOrNot',
      'SplitStarted',
      'SplitFinishedAtStart',
    ]);
    const summary = JSON.parse((await getBytes(store, runSummaryKey(DAY, runId))).toString('utf8'));
    expect([
      run.status,
      summary.tenants.map((t: Record<string, unknown>) => [t.tenant_id, t.status, t.rows_written]),
    ]).toStrictEqual(['SUCCEEDED', [['gone', 'no-input', 0]]]);
    expect(await listAll(store, 'locks/')).toStrictEqual([]);
    expect(await listAll(store, COMPACTION_WORK_ROOT)).toStrictEqual([]);
  });
});
