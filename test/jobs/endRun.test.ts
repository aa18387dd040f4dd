/**
 * The end of a run (src/jobs/endRun.ts) as each driver ends it: one process (the compactor Lambda, Azure's
 * compact_http path), Step Functions (the summary step), Azure's queues (the job that reports last). The same
 * summary – with the night's privacy step – metrics, status check and finished line, through each driver's
 * sink; and the status check judged from the run's own results, without re-planning what it compacted.
 */
import { join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { InvocationContext } from '@azure/functions';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { summariseIfLast } from '../../azure/summariseRun.js';
import { loggedCompaction } from '../../azure/telemetry.js';
import { CompactionRunFailedError, runCompactorEvent } from '../../compactor/lambda.js';
import { runSummaryEvent } from '../../compactor/summaryLambda.js';
import { loadConfig } from '../../src/core/config.js';
import { runSummaryKey, stagingKey } from '../../src/core/staging/layout.js';
import { gzipNdjson } from '../../src/core/staging/ndjson.js';
import { jstDate } from '../../src/core/time/jst.js';
import { planRun, type RunRef, recordJobResult, runJob } from '../../src/jobs/fanOut.js';
import { recordPrivacyOutcome } from '../../src/jobs/privacyOutcome.js';
import { runCompaction } from '../../src/jobs/runCompaction.js';
import { statusAfterRun } from '../../src/jobs/runStatus.js';
import { withCompactionDeps } from '../../src/jobs/workspace.js';
import { METRIC_NAMESPACE, METRIC_SERVICE } from '../../src/ops/metrics.js';
import { partitionsStatus } from '../../src/ops/status.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { getBytes } from '../../src/ports/store/ObjectStore.js';
import { CountingStore } from '../../tools/CountingStore.js';
import { jsonLines } from '../azure/functionLogs.js';
import { stagedRecord } from '../kit/factories.js';
import { captureJsonLines } from '../kit/lambdaTelemetry.js';
import { tempDir } from '../kit/tempDir.js';

const DATE = '2025-08-11';
const OLD = '2025-08-10';
/** 02:05 JST the day after DATE: the nightly run's time. */
const NIGHT = Date.parse('2025-08-11T17:05:00Z');
const BROKEN = 'erasures/tenant_id=acme/20250101T000000000Z-broken.json';
const BROKEN_ERROR = `nightly privacy step: standing erasures: ${BROKEN} is not an erase receipt: Unexpected token 'o', "not a receipt" is not valid JSON`;
const SCHEDULED = { source: 'aws.events', 'detail-type': 'Scheduled Event', time: '2025-08-11T17:00:00Z', detail: {} };
/** acme keeps DATE and later: OLD is past its retention on NIGHT. */
const RETENTION = `0,acme=${(Date.parse(jstDate(NIGHT)) - Date.parse(DATE)) / 86_400_000 + 1}`;

let dir: Awaited<ReturnType<typeof tempDir>>;
let store: LocalStore;

async function stage(tenant: string, date: string, name: string, count: number) {
  const records = Array.from({ length: count }, (_, i) =>
    stagedRecord({
      tenant_id: tenant,
      dt: date,
      message_id: `${tenant}-${name}-${i}`,
      created_at: Date.parse(`${date}T03:00:00.000Z`) + i,
      source_seq: String(10 + i),
    }),
  );
  await store.putBytes(stagingKey(tenant, date, name), gzipNdjson(records));
}

const config = (env: Record<string, string> = {}) =>
  loadConfig({ TENANT_ID: 'acme,beta', TEMP_DIR: dir.path, DUCKDB_THREADS: '1', DATA_DIR: store.root, ...env });

/** A fan-out run planned and every job compacted and reported, as the Map or the queue workers leave it. */
async function fannedOut(): Promise<RunRef> {
  const cfg = config();
  const plan = await planRun(store, { date: DATE, tenants: ['acme', 'beta'], lateLookbackDays: 0 }, Date.now());
  for (const job of plan.jobs) {
    await recordJobResult(store, plan.run, await withCompactionDeps(cfg, store, Date.now, (deps) => runJob(deps, job)));
  }
  return plan.run;
}

const telemetry = () => ({
  logger: new Logger({ serviceName: METRIC_SERVICE }),
  metrics: new Metrics({ namespace: METRIC_NAMESPACE, serviceName: METRIC_SERVICE }),
});
/** [level, message] of the lines that have a message, and the Source of each EMF blob, in order. */
const shape = (lines: unknown[]) =>
  (lines as Record<string, unknown>[]).map((l) => (l.message === undefined ? ['EMF', l.Source] : [l.level, l.message]));
const stored = async (run: RunRef) => JSON.parse((await getBytes(store, runSummaryKey(run.date, run.runId))).toString('utf8'));

beforeEach(async () => {
  dir = await tempDir();
  store = new LocalStore(join(dir.path, 'lake'));
  await stage('acme', DATE, 'a', 3);
  await stage('beta', DATE, 'b', 2);
});
afterEach(async () => {
  await dir.cleanup();
});

describe('endRun through the one-process driver', () => {
  it('the compactor Lambda’s nightly run records its privacy step in the summary and names its failure; the run itself succeeds', async () => {
    await stage('acme', OLD, 'old', 1);
    await runCompaction({ store, config: config(), date: OLD, tenants: ['acme'] });
    await store.putBytes(BROKEN, 'not a receipt');
    const cfg = config({ LAKE_RETENTION_DAYS: RETENTION });

    const { result, error, lines } = await captureJsonLines(() =>
      runCompactorEvent(SCHEDULED, { config: cfg, store, ...telemetry(), now: () => NIGHT }),
    );

    expect(error).toBeUndefined();
    // retention dropped OLD before the plan; the receipt it could not read is the step's failure
    expect(result?.privacy).toStrictEqual({ reapplied: 0, offboarded: 0, retention: 1, failure: BROKEN_ERROR });
    expect([result?.ok, result?.tenants.map((t) => [t.tenant_id, t.dt, t.status, t.rows_written])]).toStrictEqual([
      true,
      [
        ['acme', DATE, 'compacted', 3],
        ['beta', DATE, 'compacted', 2],
      ],
    ]);
    expect(shape(lines).filter(([level]) => level !== 'DEBUG')).toStrictEqual([
      ['INFO', 'compaction started'],
      ['INFO', 'partition finished'],
      ['INFO', 'partition finished'],
      ['EMF', 'compaction'],
      ['EMF', 'status'],
      ['INFO', 'status checked'],
      ['INFO', 'compaction finished'],
      ['ERROR', 'privacy step failed'],
    ]);
    const failed = (lines as Record<string, unknown>[]).find((l) => l.message === 'privacy step failed');
    expect([failed?.dt, failed?.error]).toStrictEqual([DATE, BROKEN_ERROR]);
  });

  it('Azure’s one-process run (compact_http, intraday_batch) ends the same way, without the status check', async () => {
    await store.putBytes(BROKEN, 'not a receipt');
    const logs: string[] = [];
    const context = new InvocationContext({
      functionName: 'compact_http',
      invocationId: 'compact_http-test',
      logHandler: (l, ...a) => logs.push(`${l}: ${a.join(' ')}`),
    });

    const summary = await loggedCompaction(context, { store, config: config() }, { date: DATE, tenants: ['acme'], late: true });

    expect(summary.privacy).toStrictEqual({ reapplied: 0, offboarded: 0, retention: 0, failure: BROKEN_ERROR });
    expect(jsonLines(logs).map((l) => [l.level, l.message, l.Source ?? l.error ?? null])).toStrictEqual([
      ['information', 'compaction started', null],
      ['information', 'partition finished', null],
      ['information', 'metrics', 'compaction'],
      ['information', 'compaction finished', null],
      ['error', 'privacy step failed', BROKEN_ERROR],
    ]);
  });
});

describe('endRun through the Step Functions driver (the summary step)', () => {
  it('writes and returns the summary with the privacy step’s report as counts', async () => {
    const run = await fannedOut();
    const report = {
      reapplied: ['erasures/tenant_id=acme/20250810T000000000Z-1a2b3c4d.json'],
      offboarded: [],
      retention: ['tenant_id=acme/dt=2025-07-01', 'tenant_id=acme/dt=2025-07-02'],
      errors: [],
    };

    const { result, error, lines } = await captureJsonLines(() =>
      runSummaryEvent(
        { run: { run_id: run.runId, target_date: DATE }, privacy: { report } },
        { config: config(), store, ...telemetry() },
      ),
    );

    expect(error).toBeUndefined();
    expect(result?.privacy).toStrictEqual({ reapplied: 1, offboarded: 0, retention: 2 });
    expect(result).toStrictEqual(await stored(run));
    expect([result?.jobs_planned, result?.jobs_missing, result?.ok]).toStrictEqual([2, 0, true]);
    expect(shape(lines)).toStrictEqual([
      ['EMF', 'compaction'],
      ['EMF', 'status'],
      ['INFO', 'status checked'],
      ['INFO', 'run finished'],
    ]);
  });

  it('a privacy step the state machine caught fails the execution after the summary is written, naming it', async () => {
    const run = await fannedOut();
    const caught = { Error: 'Sandbox.Timedout', Cause: 'Task timed out after 900.00 seconds' };

    const { error, lines } = await captureJsonLines(() =>
      runSummaryEvent(
        { run: { run_id: run.runId, target_date: DATE }, privacy: caught },
        { config: config(), store, ...telemetry() },
      ),
    );

    const failure = 'Sandbox.Timedout: Task timed out after 900.00 seconds';
    expect(error).toBeInstanceOf(CompactionRunFailedError);
    expect((error as Error).message).toBe(`run ${run.runId} of ${DATE}: the privacy step failed: ${failure}`);
    const summary = await stored(run);
    expect([summary.ok, summary.privacy]).toStrictEqual([true, { failure }]);
    expect(shape(lines)).toStrictEqual([
      ['EMF', 'compaction'],
      ['EMF', 'status'],
      ['INFO', 'status checked'],
      ['INFO', 'run finished'],
      ['ERROR', 'privacy step failed'],
    ]);
    const line = (lines as Record<string, unknown>[]).at(-1);
    expect([line?.run_id, line?.dt, line?.error]).toStrictEqual([run.runId, DATE, failure]);
  });
});

describe('endRun through the Azure queue driver (the last job to report)', () => {
  it('ends the run with the privacy outcome daily_batch kept under the run', async () => {
    const run = await fannedOut();
    await recordPrivacyOutcome(store, run, { reapplied: 0, offboarded: 1, retention: 0, failure: BROKEN_ERROR });
    const logs: string[] = [];
    const context = new InvocationContext({
      functionName: 'compact_job',
      invocationId: 'compact_job-test',
      logHandler: (l, ...a) => logs.push(`${l}: ${a.join(' ')}`),
    });

    expect(await summariseIfLast({ store, config: config() }, run, context)).toBe(true);
    // a second reporter finds the summary written: the run ends once
    expect(await summariseIfLast({ store, config: config() }, run, context)).toBe(false);

    const summary = await stored(run);
    expect([summary.ok, summary.privacy]).toStrictEqual([
      true,
      { reapplied: 0, offboarded: 1, retention: 0, failure: BROKEN_ERROR },
    ]);
    const lines = jsonLines(logs);
    expect(lines.map((l) => [l.level, l.message, l.Source ?? l.needs_attention ?? l.error ?? null])).toStrictEqual([
      ['information', 'metrics', 'compaction'],
      ['information', 'metrics', 'status'],
      ['information', 'status checked', 0],
      ['information', 'run finished', null],
      ['error', 'privacy step failed', BROKEN_ERROR],
    ]);
    // `run finished` carries the summary as written (docs/AZURE.md)
    const { level, message, service, invocation_id, ...finished } = lines[3] as Record<string, unknown>;
    expect(finished).toStrictEqual(summary);
  });
});

describe('the status check from the run’s own results', () => {
  it('judges a partition the run compacted by its run’s manifest and a listing of its staging: no table snapshot, no re-plan', async () => {
    const summary = await runCompaction({ store, config: config(), date: DATE, tenants: ['acme', 'beta'] });
    await stage('acme', DATE, 'after-the-run', 1);
    const at = Date.now() + 3 * 86_400_000; // two nights later: the object staged after the run is overdue
    const counting = new CountingStore(store);

    const checked = await statusAfterRun(counting, summary.results, at);

    // the same verdict as `makoto-lake status` reading the table
    const fromTable = await partitionsStatus(
      store,
      [
        { tenant: 'acme', date: DATE },
        { tenant: 'beta', date: DATE },
      ],
      at,
    );
    expect(checked).toStrictEqual({ checked: 2, status: fromTable });
    expect(checked).toMatchObject({ status: { needs_attention: 1 } });
    // per partition: its staging listed, its run's manifest read; then the lake-wide listings
    expect(counting.byArea()).toStrictEqual({
      'compaction-work/messages': { LIST: 1, HEAD: 0, GET: 0, PUT: 0, DELETE: 0 },
      'manifests/messages': { LIST: 0, HEAD: 0, GET: 2, PUT: 0, DELETE: 0 },
      'pending/deletes': { LIST: 1, HEAD: 0, GET: 0, PUT: 0, DELETE: 0 },
      'quarantine/ingest': { LIST: 1, HEAD: 0, GET: 0, PUT: 0, DELETE: 0 },
      'staging/messages': { LIST: 2, HEAD: 0, GET: 0, PUT: 0, DELETE: 0 },
    });
  });
});
