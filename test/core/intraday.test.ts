import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main as cliMain } from '../../compactor/cli.js';
import { compactionRequest } from '../../compactor/lambda.js';
import { loadConfig } from '../../src/core/config.js';
import { UsageError } from '../../src/core/errors.js';
import { stagingKey } from '../../src/core/staging/layout.js';
import { gzipNdjson } from '../../src/core/staging/ndjson.js';
import { targetDate } from '../../src/core/time/jst.js';
import { openDays } from '../../src/engine/compactTenants.js';
import { parseCompactionPayload } from '../../src/jobs/compactionPayload.js';
import { runCompaction } from '../../src/jobs/runCompaction.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { stagedRecord } from '../kit/factories.js';
import { readPartition } from '../kit/pipeline.js';
import { tempDir } from '../kit/tempDir.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
let store: LocalStore;
let objects = 0;

beforeAll(async () => {
  dir = await tempDir('makoto-lake-intraday-');
  store = new LocalStore(join(dir.path, 'data'));
});
afterAll(async () => {
  await dir.cleanup();
});

const config = () =>
  loadConfig({ DATA_DIR: store.root, TEMP_DIR: dir.path, TENANT_ID: '*', DUCKDB_MEMORY_LIMIT: '512MB', DUCKDB_THREADS: '2' });

/** One staging object of a tenant-day: `[message_id, content, source_seq]` each. */
async function stage(tenant: string, date: string, messages: [string, string, number][]): Promise<void> {
  const records = messages.map(([id, content, seq]) =>
    stagedRecord({
      tenant_id: tenant,
      dt: date,
      message_id: id,
      content,
      created_at: Date.parse(`${date}T01:00:00Z`),
      source_seq: String(seq),
    }),
  );
  await store.putBytes(stagingKey(tenant, date, `batch-${++objects}.ndjson.gz`), gzipNdjson(records));
}

/** A run at a JST wall-clock time: the intraday form, or the nightly one (`late`, the day before). */
async function runAt(jst: string, form: { intraday: true } | { date: string; late: true }) {
  const at = Date.parse(`${jst}+09:00`);
  const summary = await runCompaction({ store, config: config(), tenants: 'all', now: () => at, ...form });
  return summary.results.map((r) => [r.tenant, r.date, r.status, r.rowsWritten]).sort();
}

const rows = async (tenant: string, date: string) =>
  (await readPartition(store, tenant, date, join(dir.path, 'read')))
    .map((r) => [r.message_id, r.content])
    .sort((a, b) => String(a[0]).localeCompare(String(b[0])));

describe('intraday runs (compact --today, the INTRADAY_MINUTES schedule)', () => {
  it('keeps yesterday open until 02:00 JST, then only today', () => {
    expect([
      openDays(Date.parse('2025-08-12T01:59:59+09:00')),
      openDays(Date.parse('2025-08-12T02:00:00+09:00')),
      openDays(Date.parse('2025-08-11T23:30:00+09:00')),
    ]).toStrictEqual([['2025-08-11', '2025-08-12'], ['2025-08-12'], ['2025-08-11']]);
  });

  it('compacts only the open days that gained staging; the nightly run then closes the day exactly: nothing lost, nothing twice', async () => {
    await stage('acme', '2025-08-11', [
      ['m1', 'おはよう', 1],
      ['m2', 'first draft', 2],
    ]);
    await stage('globex', '2025-08-11', [['g1', 'hello', 1]]);
    // a closed day (yesterday after 02:00 JST) and an older one: left to the nightly run
    await stage('acme', '2025-08-10', [['y1', 'yesterday', 1]]);
    await stage('acme', '2025-08-09', [['o1', 'older', 1]]);

    expect(await runAt('2025-08-11T14:00:00', { intraday: true })).toStrictEqual([
      ['acme', '2025-08-11', 'compacted', 2],
      ['globex', '2025-08-11', 'compacted', 1],
    ]);
    // an hour later: acme gained an edit and a message, globex nothing
    await stage('acme', '2025-08-11', [
      ['m2', 'edited', 3],
      ['m3', 'new', 4],
    ]);
    expect(await runAt('2025-08-11T15:00:00', { intraday: true })).toStrictEqual([['acme', '2025-08-11', 'compacted', 3]]);
    expect(await runAt('2025-08-11T16:00:00', { intraday: true })).toStrictEqual([]);

    // after midnight, before 02:00 JST: yesterday is still open, and today has begun
    await stage('acme', '2025-08-11', [['m4', 'late evening', 5]]);
    await stage('acme', '2025-08-12', [['n1', 'after midnight', 1]]);
    expect(await runAt('2025-08-12T01:00:00', { intraday: true })).toStrictEqual([
      ['acme', '2025-08-11', 'compacted', 4],
      ['acme', '2025-08-12', 'compacted', 1],
    ]);

    // the 02:00 JST run: the previous day for every tenant, and every older day with staging not folded in
    await stage('acme', '2025-08-11', [
      ['m5', 'just before two', 6],
      ['m1', 'おはよう', 1], // a retried delivery
    ]);
    expect(await runAt('2025-08-12T02:00:00', { date: '2025-08-11', late: true })).toStrictEqual([
      ['acme', '2025-08-09', 'compacted', 1],
      ['acme', '2025-08-10', 'compacted', 1],
      ['acme', '2025-08-11', 'compacted', 5],
      ['globex', '2025-08-11', 'compacted', 1],
    ]);
    // after it, the closed day is no intraday run's any more; today has nothing new
    await stage('acme', '2025-08-11', [['m6', 'after the nightly run', 7]]);
    expect(await runAt('2025-08-12T03:00:00', { intraday: true })).toStrictEqual([]);

    expect({
      acme11: await rows('acme', '2025-08-11'),
      acme12: await rows('acme', '2025-08-12'),
      globex11: await rows('globex', '2025-08-11'),
      acme10: await rows('acme', '2025-08-10'),
    }).toStrictEqual({
      acme11: [
        ['m1', 'おはよう'],
        ['m2', 'edited'],
        ['m3', 'new'],
        ['m4', 'late evening'],
        ['m5', 'just before two'],
      ],
      acme12: [['n1', 'after midnight']],
      globex11: [['g1', 'hello']],
      acme10: [['y1', 'yesterday']],
    });
  }, 120_000);

  it('takes {"intraday": true} as the payload of the scheduled run (Lambda), and refuses it with a date or late', () => {
    const now = Date.parse('2025-08-11T14:00:00+09:00');
    expect(parseCompactionPayload({ intraday: true })).toStrictEqual({
      date: undefined,
      tenants: undefined,
      late: false,
      intraday: true,
    });
    expect(compactionRequest({ intraday: true }, config(), now)).toStrictEqual({
      date: '2025-08-11',
      tenants: 'all',
      late: false,
      intraday: true,
    });
    // the 02:00 JST scheduled event as before: the previous day, with late days
    expect(
      compactionRequest({ source: 'aws.events', 'detail-type': 'Scheduled Event', time: '2025-08-11T17:00:00Z' }, config(), now),
    ).toStrictEqual({ date: '2025-08-11', tenants: 'all', late: true });
    const refused = (payload: unknown) => {
      try {
        parseCompactionPayload(payload);
        return 'accepted';
      } catch (error) {
        return error instanceof UsageError ? error.message : String(error);
      }
    };
    expect([refused({ intraday: 'yes' }), refused({ intraday: true, target_date: '2025-08-11' })]).toStrictEqual([
      'intraday must be true or false, got "yes"',
      'intraday compacts today (and yesterday before 02:00 JST): it takes no target_date and no late',
    ]);
  });

  it('makoto-lake compact --today: the changed partitions of today, exit 0 when nothing is new; no DATE, no --late', async () => {
    const root = join(dir.path, 'cli-lake');
    const cli = async (argv: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await cliMain(
        argv,
        { DATA_DIR: root, TEMP_DIR: dir.path, DUCKDB_THREADS: '2' },
        { stdout: (t) => out.push(t), stderr: (t) => err.push(t) },
      );
      return { code, stdout: out.join('\n'), stderr: err.join('\n') };
    };
    const today = targetDate(Date.now(), 0);
    const lake = new LocalStore(root);
    await lake.putBytes(
      stagingKey('acme', today, 'a.ndjson.gz'),
      gzipNdjson([
        stagedRecord({ tenant_id: 'acme', dt: today, message_id: 'x1', created_at: Date.parse(`${today}T01:00:00Z`) }),
      ]),
    );
    const first = await cli(['compact', '--today', '--all-tenants', '--json']);
    const tenantsOf = (json: string) =>
      (JSON.parse(json) as { tenants: { tenant_id: string; dt: string; status: string }[] }).tenants.map((t) => [
        t.tenant_id,
        t.dt,
        t.status,
      ]);
    expect([first.code, tenantsOf(first.stdout)]).toStrictEqual([0, [['acme', today, 'compacted']]]);
    const again = await cli(['compact', '--today', '--all-tenants', '--json']);
    expect([again.code, tenantsOf(again.stdout)]).toStrictEqual([0, []]);
    const misuse = await cli(['compact', '--today', '2025-08-11', 'acme']);
    expect([misuse.code, misuse.stderr.includes('compact --today takes no DATE and no --late')]).toStrictEqual([2, true]);
  }, 60_000);
});
