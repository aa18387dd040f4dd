import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import aslValidator from 'asl-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runJobsKey, runSummaryKey, stagingKey } from '../../src/core/staging/layout.js';
import { gzipNdjson } from '../../src/core/staging/ndjson.js';
import { jstDate } from '../../src/core/time/jst.js';
import { eraseTenant } from '../../src/jobs/erase/eraseTenant.js';
import { type CompactionJob, NO_REPORT } from '../../src/jobs/fanOut.js';
import { readManifest } from '../../src/lake/manifest.js';
import { openDuckDb } from '../../src/ports/duckdb/openDuckDb.js';
import { getBytes } from '../../src/ports/store/ObjectStore.js';
import { S3Store } from '../../stores/s3/S3Store.js';
import { rawScan } from '../erase/eraseLake.js';
import { restoreEnvironment } from '../kit/environment.js';
import { stagedRecord } from '../kit/factories.js';
import { readPartition } from '../kit/pipeline.js';
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
    // the privacy step first (nothing erased, no retention: a report of nothing), then the plan with the execution's input
    expect(calls[0]).toStrictEqual(['Privacy', 'CompactorFunction', { privacy: true }, null]);
    expect(calls[1]).toStrictEqual(['Plan', 'PlanFunction', SCHEDULED_EVENT, null]);
    const slow = { job: plan[3], run: runRef };
    const small = { job: plan[4], run: runRef };
    expect(calls.slice(2, -1).sort(byJson)).toStrictEqual(
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
    const privacy = { report: { reapplied: [], offboarded: [], retention: [], errors: [] } };
    expect(calls.at(-1)).toStrictEqual(['Summarise', 'SummaryFunction', { run: runRef, privacy }, 'CompactionRunFailedError']);
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
      expect(run.invocations.map((c) => c.state)).toStrictEqual(['Privacy', 'Plan', 'CompactJob', 'CompactJob', 'Summarise']);
    } finally {
      process.env.TENANT_ID = 'acme,big,small,slow,ghost';
    }
  });

  describe('the privacy step, before the plan', () => {
    const OLD_DATE = '2025-08-10';
    const GONE = 'gone-user';
    const SECRET = 'secret words of gone-user';
    const record = (date: string, id: string, sender: string, content: string, i: number) =>
      stagedRecord({
        tenant_id: 'priv',
        dt: date,
        message_id: id,
        sender_id: sender,
        content,
        created_at: Date.parse(`${date}T03:00:00.000Z`) + i,
        source_seq: String(500 + i),
      });
    const night = (invoke?: (state: string) => void) =>
      runStateMachine(
        deployedDefinition(substitutionValues),
        { target_date: DATE },
        {
          getObject: async (_bucket, key) => (await getBytes(store, key)).toString('utf8'),
          invoke: async (arn, payload, call) => {
            invoke?.(call.state);
            return (await handlerOf(arn))(payload);
          },
        },
      );
    const rowsOf = async (date: string) =>
      (await readPartition(store, 'priv', date, join(work.path, 'read')))
        .map((r) => [r.message_id, r.sender_id, r.content])
        .sort(byJson);

    it('re-erases a record of an erased sender captured after the erase and applies retention; then the night compacts', async () => {
      process.env.TENANT_ID = 'priv';
      const savedRetention = process.env.LAKE_RETENTION_DAYS;
      try {
        const compactor = await handlerOf(functionArn('CompactorFunction'));
        await store.putBytes(
          stagingKey('priv', DATE, 'first'),
          gzipNdjson([
            record(DATE, 'm-gone-0', GONE, SECRET, 0),
            record(DATE, 'm-kept-0', 'kept-user', 'kept 0', 1),
            record(DATE, 'm-kept-1', 'kept-user', 'kept 1', 2),
          ]),
        );
        await store.putBytes(
          stagingKey('priv', OLD_DATE, 'first'),
          gzipNdjson([record(OLD_DATE, 'm-old', 'kept-user', 'old', 0)]),
        );
        for (const date of [DATE, OLD_DATE])
          expect(await compactor({ target_date: date, tenants: ['priv'] })).toMatchObject({ ok: true });

        // the person asks to be erased
        await mkdir(join(work.path, 'erase'), { recursive: true });
        const db = await openDuckDb({ memoryLimit: '512MB', threads: 1, workDirectory: join(work.path, 'erase-db') });
        let receiptKey: string | undefined;
        try {
          const erased = await eraseTenant(
            { store, db, workDirectory: join(work.path, 'erase') },
            { tenant: 'priv', selector: { senders: [GONE], conversations: [], messages: [] } },
          );
          expect([erased.receipt?.status, erased.counts.rows]).toStrictEqual(['done', 1]);
          receiptKey = erased.receiptKey;
        } finally {
          db.closeSync();
        }
        expect(await rowsOf(DATE)).toStrictEqual([
          ['m-kept-0', 'kept-user', 'kept 0'],
          ['m-kept-1', 'kept-user', 'kept 1'],
        ]);

        // after the erase, capture delivers one more message of that person (and one of another)
        await store.putBytes(
          stagingKey('priv', DATE, 'after-erase'),
          gzipNdjson([
            record(DATE, 'm-gone-after', GONE, `${SECRET} again`, 3),
            record(DATE, 'm-kept-after', 'kept-user', 'kept after', 4),
          ]),
        );
        // retention: priv keeps DATE and later (a per-tenant override; every other tenant keeps every day)
        const keep = (Date.parse(jstDate(Date.now())) - Date.parse(DATE)) / 86_400_000 + 1;
        process.env.LAKE_RETENTION_DAYS = `0,priv=${keep}`;

        const run = await night();
        expect([run.status, run.caught]).toStrictEqual(['SUCCEEDED', []]);
        const calls = run.invocations.map((c) => [c.state, c.payload, c.error ?? null]);
        const report = { reapplied: [receiptKey], offboarded: [], retention: [`tenant_id=priv/dt=${OLD_DATE}`], errors: [] };
        expect(calls.map((c) => c[0])).toStrictEqual(['Privacy', 'Plan', 'CompactJob', 'Summarise']);
        expect(calls[0]).toStrictEqual(['Privacy', { privacy: true }, null]);
        expect(calls[1]).toStrictEqual(['Plan', { target_date: DATE }, null]);
        const runRef = { run_id: (run.output as { run_id: string }).run_id, target_date: DATE };
        expect(calls[3]).toStrictEqual(['Summarise', { run: runRef, privacy: { report } }, null]);

        // the record captured after the erase never reached the table; the other one did; the old day is gone
        expect(await rowsOf(DATE)).toStrictEqual([
          ['m-kept-0', 'kept-user', 'kept 0'],
          ['m-kept-1', 'kept-user', 'kept 1'],
          ['m-kept-after', 'kept-user', 'kept after'],
        ]);
        expect(await rowsOf(OLD_DATE)).toStrictEqual([]);
        expect(
          (run.output as { tenants: Record<string, unknown>[] }).tenants.map((t) => [
            t.tenant_id,
            t.dt,
            t.status,
            t.rows_written,
          ]),
        ).toStrictEqual([['priv', DATE, 'compacted', 3]]);
        // nothing the lake keeps holds the person's id or words
        expect(await rawScan(store, [GONE, SECRET])).toStrictEqual({});
      } finally {
        process.env.TENANT_ID = 'acme,big,small,slow,ghost';
        if (savedRetention === undefined) delete process.env.LAKE_RETENTION_DAYS;
        else process.env.LAKE_RETENTION_DAYS = savedRetention;
      }
    });

    it('a privacy step that times out is caught: the night still compacts, and the summary fails the execution naming it', async () => {
      process.env.TENANT_ID = 'priv';
      try {
        await store.putBytes(stagingKey('priv', DATE, 'later'), gzipNdjson([record(DATE, 'm-later', 'kept-user', 'later', 5)]));
        const run = await night((state) => {
          if (state === 'Privacy')
            throw Object.assign(new Error('Task timed out after 900.00 seconds'), { name: 'Sandbox.Timedout' });
        });
        expect(run.caught).toStrictEqual([{ state: 'Privacy', error: 'Sandbox.Timedout', next: 'Plan' }]);
        expect(run.invocations.map((c) => [c.state, c.error ?? null])).toStrictEqual([
          ['Privacy', 'Sandbox.Timedout'],
          ['Plan', null],
          ['CompactJob', null],
          ['Summarise', 'CompactionRunFailedError'],
        ]);
        const summarise = run.invocations.at(-1)?.payload as { run: { run_id: string }; privacy: unknown };
        expect(summarise.privacy).toStrictEqual({ Error: 'Sandbox.Timedout', Cause: 'Task timed out after 900.00 seconds' });
        const runId = summarise.run.run_id;
        expect([run.status, run.error]).toStrictEqual([
          'FAILED',
          {
            name: 'CompactionRunFailedError',
            cause: `run ${runId} of ${DATE}: the privacy step failed: Sandbox.Timedout: Task timed out after 900.00 seconds`,
          },
        ]);
        // the run itself was fine: its summary is written and every job committed
        const summary = JSON.parse((await getBytes(store, runSummaryKey(DATE, runId))).toString('utf8'));
        expect([
          summary.ok,
          summary.tenants.map((t: Record<string, unknown>) => [t.tenant_id, t.status, t.rows_written]),
        ]).toStrictEqual([true, [['priv', 'compacted', 4]]]);
        expect((await rowsOf(DATE)).map((r) => r[0])).toStrictEqual(['m-kept-0', 'm-kept-1', 'm-kept-after', 'm-later']);
      } finally {
        process.env.TENANT_ID = 'acme,big,small,slow,ghost';
      }
    });

    it('a privacy step that cannot finish part of its work throws PrivacyStepFailedError: caught, the night compacts, the summary names it', async () => {
      process.env.TENANT_ID = 'priv';
      const broken = 'erasures/tenant_id=priv/20250101T000000000Z-broken.json';
      try {
        await store.putBytes(broken, 'not a receipt');
        const run = await night();
        expect(run.caught).toStrictEqual([{ state: 'Privacy', error: 'PrivacyStepFailedError', next: 'Plan' }]);
        expect(run.invocations.map((c) => [c.state, c.error ?? null])).toStrictEqual([
          ['Privacy', 'PrivacyStepFailedError'],
          ['Plan', null],
          ['CompactJob', null],
          ['Summarise', 'CompactionRunFailedError'],
        ]);
        const summarise = run.invocations.at(-1)?.payload as { run: { run_id: string }; privacy: { Cause: string } };
        expect(run.error).toStrictEqual({
          name: 'CompactionRunFailedError',
          cause: `run ${summarise.run.run_id} of ${DATE}: the privacy step failed: PrivacyStepFailedError: ${summarise.privacy.Cause}`,
        });
        expect(summarise.privacy.Cause).toBe(
          `nightly privacy step: standing erasures: ${broken} is not an erase receipt: Unexpected token 'o', "not a receipt" is not valid JSON`,
        );
        const summary = JSON.parse((await getBytes(store, runSummaryKey(DATE, summarise.run.run_id))).toString('utf8'));
        expect(summary.ok).toBe(true);
      } finally {
        await store.delete(broken);
        process.env.TENANT_ID = 'acme,big,small,slow,ghost';
      }
    });
  });
});

const byJson = (a: unknown, b: unknown) => JSON.stringify(a).localeCompare(JSON.stringify(b));

/** Keys under runs/ ending in `suffix`. */
async function listRunKeys(store: S3Store, suffix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of store.list('runs/')) if (o.key.endsWith(suffix)) keys.push(o.key);
  return keys;
}
