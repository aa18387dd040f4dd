import aslValidator from 'asl-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CompactionJob, NO_REPORT } from '../../src/app/jobs.js';
import { readManifest } from '../../src/compaction/manifest.js';
import { runJobsKey, runSummaryKey, stagingKey } from '../../src/staging/layout.js';
import { gzipNdjson } from '../../src/staging/ndjson.js';
import { getBytes } from '../../src/store/ObjectStore.js';
import { S3Store } from '../../stores/s3/S3Store.js';
import { restoreEnvironment } from '../kit/environment.js';
import { stagedRecord } from '../kit/factories.js';
import { tempDir } from '../kit/tempDir.js';
import { runStateMachine } from './support/aslRunner.js';
import { lambdaEnvironment, REGION, type S3rver, startS3rver } from './support/localAws.js';
import {
  block,
  definitionText,
  deployedDefinition,
  fieldOf,
  functionArn,
  handlerOf,
  stateMachine,
  substitutions,
  substitutionValues,
} from './support/nightlyDefinition.js';

const DATE = '2025-08-11';
const LATE_DATE = '2025-08-09';
/** The 02:00 JST schedule's event for the night after DATE, as EventBridge passes it to the execution. */
const SCHEDULED_EVENT = {
  version: '0',
  id: 'e1',
  'detail-type': 'Scheduled Event',
  source: 'aws.events',
  account: '000000000000',
  time: '2025-08-11T17:00:00Z',
  region: REGION,
  resources: ['arn:aws:events:ap-northeast-1:000000000000:rule/nightly'],
  detail: {},
};

describe('nightly state machine definition', () => {
  it('is valid ASL once deployed, and the validator does reject a broken one', () => {
    const definition = deployedDefinition(substitutionValues);
    const { isValid, errors } = aslValidator(definition);
    expect({ isValid, errors }).toStrictEqual({ isValid: true, errors: [] });
    const broken = deployedDefinition(substitutionValues);
    delete broken.States.Summarise.End;
    expect(aslValidator(broken).isValid).toBe(false);
  });

  it('names only placeholders the template substitutes, and fans out over a Distributed Map read from S3', () => {
    const placeholders = [...new Set([...definitionText.matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]))].sort();
    expect(placeholders).toStrictEqual(Object.keys(substitutions).sort());
    expect(substitutions).toStrictEqual({
      PlanFunctionArn: '!GetAtt PlanFunction.Arn',
      CompactorFunctionArn: '!GetAtt CompactorFunction.Arn',
      SummaryFunctionArn: '!GetAtt SummaryFunction.Arn',
      LakeBucketName: '!Ref LakeBucket',
      FanOutMaxConcurrency: '!Ref FanOutMaxConcurrency',
      SplitTaskConcurrency: '!Ref SplitTaskConcurrency',
    });
    const map = deployedDefinition(substitutionValues).States.CompactJobs;
    expect([map.ItemProcessor.ProcessorConfig, map.ItemReader.Resource, map.MaxConcurrencyPath]).toStrictEqual([
      { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' },
      'arn:aws:states:::s3:getObject',
      '$.max_concurrency',
    ]);
    // started by the 02:00 JST schedule (17:00 UTC), which the compactor's own schedule hands over to
    expect(fieldOf(block(/^\s*Nightly:/, stateMachine), 'Schedule')).toBe('cron(0 17 * * ? *)');
    expect(fieldOf(block(/^\s*Nightly:/, stateMachine), 'State')).toBe('!If [NightlyOnStepFunctions, ENABLED, DISABLED]');
    const compactor = block(/^ {2}CompactorFunction:/, block(/^Resources:/));
    expect(fieldOf(block(/^\s*Nightly:/, compactor), 'State')).toBe('!If [NightlyOnStepFunctions, DISABLED, ENABLED]');
  });
});

describe('nightly state machine run against s3rver', () => {
  let s3: S3rver;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let store: S3Store;
  const saved = { ...process.env };
  const staged: Record<string, number> = {};

  /** Writes one staging object of `count` messages; remembers its size per tenant-day. */
  async function stage(tenant: string, date: string, name: string, count: number) {
    const body = gzipNdjson(
      Array.from({ length: count }, (_, i) =>
        stagedRecord({
          tenant_id: tenant,
          dt: date,
          message_id: `${name}-${i}`,
          content: `message ${i} of ${tenant}`,
          created_at: Date.parse(`${date}T03:00:00.000Z`) + i,
          source_seq: String(100 + i),
        }),
      ),
    );
    // a folder name that is not a valid tenant id is written as is, like a stray writer would
    const key = /^[A-Za-z0-9_-]+$/.test(tenant)
      ? stagingKey(tenant, date, name)
      : `staging/messages/tenant_id=${tenant}/dt=${date}/${name}.ndjson.gz`;
    await store.putBytes(key, body);
    staged[`${tenant} ${date}`] = (staged[`${tenant} ${date}`] ?? 0) + body.length;
  }

  beforeAll(async () => {
    [s3, work] = await Promise.all([startS3rver(), tempDir()]);
    await s3.createBucket('lake');
    store = new S3Store({ bucket: 'lake', client: s3.client() });
    Object.assign(process.env, {
      ...lambdaEnvironment(s3, work.path),
      // an explicit list: s3rver 3.7.1 returns no CommonPrefixes two levels above an object, so `*` finds nothing there
      TENANT_ID: 'acme,big,small,slow,ghost',
      DUCKDB_THREADS: '1',
    });
  });
  afterAll(async () => {
    restoreEnvironment(saved);
    await s3?.stop();
    await work?.cleanup();
  });

  it('plans, compacts every job in its own invocation, retries throttling, isolates a job that never reports and writes the summary', async () => {
    // a late partition: compacted by hand with the seed's payload, then more staging arrives for it
    await stage('acme', LATE_DATE, 'first', 3);
    const compactor = await handlerOf(functionArn('CompactorFunction'));
    expect(await compactor({ target_date: LATE_DATE, tenants: ['acme'] })).toMatchObject({
      ok: true,
      totals: { tenants: 1, rows_written: 3 },
    });
    await stage('acme', LATE_DATE, 'late', 2);
    // the target day: tenants of different sizes, one whose invocations always time out, one without staging
    await stage('acme', DATE, 'a', 5);
    await stage('big', DATE, 'b', 40);
    await stage('small', DATE, 's', 1);
    await stage('slow', DATE, 'w', 3);

    const lateRun = (await readManifest(store, 'acme', LATE_DATE))?.run_id;
    const lateReason = `1 staging object newer than run ${lateRun}`;

    let throttled = 0;
    const run = await runStateMachine(deployedDefinition(substitutionValues), SCHEDULED_EVENT, {
      getObject: async (bucket, key) => {
        expect(bucket).toBe('lake');
        return (await getBytes(store, key)).toString('utf8');
      },
      invoke: async (arn, payload, call) => {
        const tenant = call.state === 'CompactJob' ? (payload as { job: CompactionJob }).job.tenant : undefined;
        // Lambda refuses the first two invocations of one job: the account's concurrency is exhausted
        if (tenant === 'small' && throttled < 2) {
          throttled++;
          throw Object.assign(new Error('Rate Exceeded.'), { name: 'Lambda.TooManyRequestsException' });
        }
        // every invocation of another job times out before it can report
        if (tenant === 'slow')
          throw Object.assign(new Error('Task timed out after 900.00 seconds'), { name: 'Sandbox.Timedout' });
        return (await handlerOf(arn))(payload);
      },
    });

    // the plan: the target day for every tenant in staging, plus the late partition, largest first
    const [jobsKey] = await listRunKeys(store, '/jobs.json');
    const runId = jobsKey?.split('/')[2] as string;
    expect(jobsKey).toBe(runJobsKey(DATE, runId));
    const plan = [
      { tenant: 'big', date: DATE, stagingBytes: staged[`big ${DATE}`] },
      { tenant: 'acme', date: LATE_DATE, reason: lateReason, stagingBytes: staged[`acme ${LATE_DATE}`] },
      { tenant: 'acme', date: DATE, stagingBytes: staged[`acme ${DATE}`] },
      { tenant: 'slow', date: DATE, stagingBytes: staged[`slow ${DATE}`] },
      { tenant: 'small', date: DATE, stagingBytes: staged[`small ${DATE}`] },
      { tenant: 'ghost', date: DATE, stagingBytes: 0 },
    ];
    expect(JSON.parse((await getBytes(store, jobsKey as string)).toString('utf8'))).toStrictEqual(plan);
    expect(plan.map((j) => j.stagingBytes)).toStrictEqual(
      [...plan.map((j) => j.stagingBytes)].sort((a, b) => (b ?? 0) - (a ?? 0)),
    );

    // the handlers ran in the order the definition names them, with the payloads it built
    const runRef = { run_id: runId, target_date: DATE };
    const calls = run.invocations.map((c) => [c.state, c.functionName.split(':').at(-1), c.payload, c.error ?? null]);
    expect(calls[0]).toStrictEqual(['Plan', 'PlanFunction', SCHEDULED_EVENT, null]);
    const slow = { job: plan[3], run: runRef };
    const small = { job: plan[4], run: runRef };
    expect(calls.slice(1, -1).sort(byJson)).toStrictEqual(
      [
        ...plan
          .filter((job) => job.tenant !== 'slow')
          .map((job) => ['CompactJob', 'CompactorFunction', { job, run: runRef }, null]),
        ['CompactJob', 'CompactorFunction', small, 'Lambda.TooManyRequestsException'],
        ['CompactJob', 'CompactorFunction', small, 'Lambda.TooManyRequestsException'],
        ['CompactJob', 'CompactorFunction', slow, 'Sandbox.Timedout'],
        ['CompactJob', 'CompactorFunction', slow, 'Sandbox.Timedout'],
      ].sort(byJson),
    );
    expect(calls.at(-1)).toStrictEqual(['Summarise', 'SummaryFunction', { run: runRef }, 'CompactionRunFailedError']);
    // the retries the definition scheduled: backoff on throttling; after a timeout, one retry once the lease expired
    expect(run.retries.map((r) => [r.error, r.delaySeconds]).sort(byJson)).toStrictEqual(
      [
        ['Lambda.TooManyRequestsException', 2],
        ['Lambda.TooManyRequestsException', 4],
        ['Sandbox.Timedout', 960],
      ].sort(byJson),
    );

    // the run fails (so alarms fire) only after every other job finished, naming the one that never reported
    expect([run.status, run.error]).toStrictEqual([
      'FAILED',
      { name: 'CompactionRunFailedError', cause: `run ${runId} of ${DATE}: 1 of 6 jobs failed (slow ${DATE})` },
    ]);
    const summary = JSON.parse((await getBytes(store, runSummaryKey(DATE, runId))).toString('utf8'));
    expect(
      summary.tenants.map((t: Record<string, unknown>) => [
        t.tenant_id,
        t.dt,
        t.status,
        t.rows_read,
        t.rows_written,
        t.reason ?? null,
        t.error ?? null,
      ]),
    ).toStrictEqual([
      ['big', DATE, 'compacted', 40, 40, null, null],
      ['acme', LATE_DATE, 'compacted', 5, 5, lateReason, null],
      ['acme', DATE, 'compacted', 5, 5, null, null],
      ['slow', DATE, 'failed', 0, 0, null, NO_REPORT],
      ['small', DATE, 'compacted', 1, 1, null, null],
      ['ghost', DATE, 'no-input', 0, 0, null, null],
    ]);
    expect([
      summary.run_id,
      summary.target_date,
      summary.jobs_planned,
      summary.jobs_missing,
      summary.ok,
      summary.totals,
    ]).toStrictEqual([runId, DATE, 6, 1, false, { tenants: 6, failed: 1, rows_read: 51, rows_written: 51, rows_rejected: 0 }]);
    // each compacted job committed its partition
    for (const [tenant, date, rows] of [
      ['big', DATE, 40],
      ['acme', LATE_DATE, 5],
      ['acme', DATE, 5],
      ['small', DATE, 1],
    ] as const) {
      expect((await readManifest(store, tenant, date))?.rows_written, `${tenant} ${date}`).toBe(rows);
    }
  });

  it('a night where every job succeeds: the execution succeeds with the run summary as its output', async () => {
    process.env.TENANT_ID = 'acme,big';
    try {
      await stage('big', DATE, 'b2', 3);
      const run = await runStateMachine(
        deployedDefinition(substitutionValues),
        { target_date: DATE },
        {
          getObject: async (_bucket, key) => (await getBytes(store, key)).toString('utf8'),
          invoke: async (arn, payload) => (await handlerOf(arn))(payload),
        },
      );
      expect([run.status, run.retries]).toStrictEqual(['SUCCEEDED', []]);
      const output = run.output as { run_id: string; tenants: Record<string, unknown>[] };
      // the manual input `{"target_date"}` plans that day only: no late look-back
      expect(output.tenants.map((t) => [t.tenant_id, t.dt, t.status, t.rows_written])).toStrictEqual([
        ['big', DATE, 'compacted', 43],
        ['acme', DATE, 'compacted', 5],
      ]);
      expect(output).toStrictEqual(JSON.parse((await getBytes(store, runSummaryKey(DATE, output.run_id))).toString('utf8')));
      expect(run.invocations.map((c) => c.state)).toStrictEqual(['Plan', 'CompactJob', 'CompactJob', 'Summarise']);
    } finally {
      process.env.TENANT_ID = 'acme,big,small,slow,ghost';
    }
  });
});

const byJson = (a: unknown, b: unknown) => JSON.stringify(a).localeCompare(JSON.stringify(b));

/** Keys under runs/ ending in `suffix`. */
async function listRunKeys(store: S3Store, suffix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of store.list('runs/')) if (o.key.endsWith(suffix)) keys.push(o.key);
  return keys;
}
