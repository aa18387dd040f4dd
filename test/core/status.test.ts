import { readFile, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../compactor/cli.js';
import { ingestBatch } from '../../src/capture/ingest/ingestBatch.js';
import { dynamodbEventChanges } from '../../src/capture/ingest/sources.js';
import { loadConfig } from '../../src/core/config.js';
import { analyticsPrefix, ingestQuarantineKey, runManifestKey } from '../../src/core/staging/layout.js';
import { jstDate } from '../../src/core/time/jst.js';
import { runCompaction } from '../../src/jobs/runCompaction.js';
import { DeltaTable, partitionFiles, tableKey } from '../../src/lake/table/deltaTable.js';
import { metricValues, statusMetrics } from '../../src/ops/metrics.js';
import { lakeStatus } from '../../src/ops/status.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { listAll } from '../../src/ports/store/ObjectStore.js';
import { chatItem, dynamodbRecord } from '../kit/factories.js';
import { currentFiles } from '../kit/readParquet.js';
import { tempDir } from '../kit/tempDir.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  dir = await tempDir();
});
afterAll(() => dir.cleanup());

/** 2025-08-12 21:00 JST: past 2025-08-11's run (2025-08-12 02:00 JST) and its two hours of grace. */
const NOW = Date.parse('2025-08-12T12:00:00Z');

async function cli(data: string, argv: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await main(
    argv,
    { DATA_DIR: data, TEMP_DIR: dir.path, DUCKDB_THREADS: '1', TENANT_ID: 'acme' },
    { stdout: (t) => stdout.push(t), stderr: (t) => stderr.push(t) },
    () => NOW,
  );
  return { code, stdout: stdout.join('\n'), stderr: stderr.join('\n') };
}

async function ingest(store: LocalStore, records: unknown[], at: string) {
  const { changes, batchId } = dynamodbEventChanges({ Records: records });
  return ingestBatch(store, changes, { source: 'dynamodb', batchId, now: Date.parse(at) });
}

async function compact(store: LocalStore, data: string, date: string, at: string) {
  const config = loadConfig({ DATA_DIR: data, TEMP_DIR: dir.path, DUCKDB_THREADS: '1' });
  return runCompaction({ store, config, date, tenants: ['acme', 'globex'], late: true, now: () => Date.parse(at) });
}

/**
 * A lake with everything status must catch — globex 2025-08-11 got a staging object after its run, and
 * capture quarantined a record on 2025-08-11 — and one thing it must not count as trouble: acme 2025-08-11
 * has a file in its folder that no table version names (a crashed run's upload), which vacuum removes.
 */
async function troubledLake(name: string) {
  const data = join(dir.path, name);
  const store = new LocalStore(data);
  const first = await ingest(
    store,
    [
      dynamodbRecord({ seq: 1, item: chatItem({ tenantId: 'acme', messageId: 'a0', createdAt: '2025-08-10T01:00:00.000Z' }) }),
      dynamodbRecord({ seq: 2, item: chatItem({ tenantId: 'acme', messageId: 'a1' }) }),
      dynamodbRecord({ seq: 3, item: chatItem({ tenantId: 'acme', messageId: 'a2' }) }),
      dynamodbRecord({ seq: 4, item: chatItem({ tenantId: 'globex', messageId: 'g1' }) }),
      dynamodbRecord({ seq: 5, item: chatItem({ tenantId: 'globex', messageId: undefined }) }),
    ],
    '2025-08-11T03:00:00Z',
  );
  expect([first.staged, first.quarantined]).toStrictEqual([4, 1]);
  const run = await compact(store, data, '2025-08-11', '2025-08-11T17:00:00Z');
  expect(run.results.map((r) => [r.tenant, r.date, r.status])).toStrictEqual([
    ['acme', '2025-08-11', 'compacted'],
    ['globex', '2025-08-11', 'compacted'],
    ['acme', '2025-08-10', 'compacted'],
  ]);
  const runOf = (tenant: string, date: string) =>
    run.results.find((r) => r.tenant === tenant && r.date === date)?.runId as string;
  // a run killed after its upload, before its commit, leaves a file no version names
  const part = (await currentFiles(store, 'acme', '2025-08-11'))[0] as string;
  await store.putBytes(`${analyticsPrefix('acme', '2025-08-11')}part-0-crashed.parquet`, await readFile(part));
  // an edit of g1 captured at 2025-08-11 20:00 JST that the day's run (2025-08-12 02:00 JST) did not fold in
  const late = await ingest(
    store,
    [dynamodbRecord({ seq: 6, event: 'MODIFY', item: chatItem({ tenantId: 'globex', messageId: 'g1', content: 'edited' }) })],
    '2025-08-11T11:00:00Z',
  );
  const lateKey = late.written[0]?.key as string;
  await utimes(join(data, lateKey), new Date('2025-08-11T11:00:00Z'), new Date('2025-08-11T11:00:00Z'));
  return { data, store, runOf, lateKey };
}

describe('makoto-lake status', () => {
  it('shows an uncompacted staging object and new quarantine, and exits 5; an unreferenced file is only counted', async () => {
    const { data, store, runOf } = await troubledLake('troubled');
    const acme10 = runOf('acme', '2025-08-10');
    const acme11 = runOf('acme', '2025-08-11');
    const globex11 = runOf('globex', '2025-08-11');
    const finished = '2025-08-11T17:00:00.000Z';

    // the edit was written (2025-08-11 20:00 JST) before the day's nightly run started (2025-08-12 02:00 JST),
    // and that run did not fold it in: it needs attention at once, whatever the schedule says
    const missed = `1 staging object written before run ${globex11} started (${finished}) and not folded in by it`;
    const human = await cli(data, ['status', '2025-08-11', '--days', '2', 'acme,globex']);
    expect(human.code).toBe(5);
    const bytes = async (tenant: string, date: string) =>
      (await listAll(store, `staging/messages/tenant_id=${tenant}/dt=${date}/`)).reduce((n, o) => n + o.size, 0);
    const sizes = [await bytes('acme', '2025-08-10'), await bytes('acme', '2025-08-11'), 0, await bytes('globex', '2025-08-11')];
    const b = sizes.map((n) => String(n).padStart(5));
    expect(human.stdout).toBe(
      [
        'tenant  dt          staging  bytes  covered     rows  last run                      finished                  parts    quarantined  needs attention',
        `------  ----------  -------  -----  ----------  ----  ----------------------------  ------------------------  -------  -----------  ${'-'.repeat(missed.length)}`,
        `acme    2025-08-10        1  ${b[0]}  yes            1  ${acme10}  ${finished}  ok                 0  -`,
        `acme    2025-08-11        1  ${b[1]}  yes            2  ${acme11}  ${finished}  1 stale            0  -`,
        `globex  2025-08-10        0  ${b[2]}  -           -     -                             -                         -                  0  -`,
        `globex  2025-08-11        2  ${b[3]}  no (1 new)     1  ${globex11}  ${finished}  ok                 0  ${missed}`,
        '',
        'ingest quarantine dt  source    objects  records  needs attention',
        '--------------------  --------  -------  -------  ---------------------------------',
        '2025-08-11            dynamodb        1        1  1 quarantined record not reviewed',
        '',
        '2 need attention',
      ].join('\n'),
    );
    expect(acme10).toMatch(/^20250811T170000000Z-[0-9a-f]{8}$/);
    const json = await cli(data, ['status', '2025-08-11', '--days', '2', 'acme,globex', '--json']);
    expect(json.code).toBe(5);
    const parsed = JSON.parse(json.stdout);
    expect(parsed).toStrictEqual({
      now: '2025-08-12T12:00:00.000Z',
      partitions: [
        {
          tenant_id: 'acme',
          dt: '2025-08-10',
          staging_objects: 1,
          staging_bytes: sizes[0],
          staging_not_covered: 0,
          staging_overdue: 0,
          rows: 1,
          run_id: acme10,
          finished_at: finished,
          stale_parts: 0,
          missing_parts: 0,
          changed_parts: 0,
          quarantined_records: 0,
          attention: [],
        },
        {
          tenant_id: 'acme',
          dt: '2025-08-11',
          staging_objects: 1,
          staging_bytes: sizes[1],
          staging_not_covered: 0,
          staging_overdue: 0,
          rows: 2,
          run_id: acme11,
          finished_at: finished,
          stale_parts: 1,
          missing_parts: 0,
          changed_parts: 0,
          quarantined_records: 0,
          attention: [],
        },
        {
          tenant_id: 'globex',
          dt: '2025-08-10',
          staging_objects: 0,
          staging_bytes: 0,
          staging_not_covered: 0,
          staging_overdue: 0,
          rows: null,
          run_id: null,
          finished_at: null,
          stale_parts: 0,
          missing_parts: 0,
          changed_parts: 0,
          quarantined_records: 0,
          attention: [],
        },
        {
          tenant_id: 'globex',
          dt: '2025-08-11',
          staging_objects: 2,
          staging_bytes: sizes[3],
          staging_not_covered: 1,
          staging_overdue: 1,
          rows: 1,
          run_id: globex11,
          finished_at: finished,
          stale_parts: 0,
          missing_parts: 0,
          changed_parts: 0,
          quarantined_records: 0,
          attention: [missed],
        },
      ],
      ingest_quarantine: [{ dt: '2025-08-11', source: 'dynamodb', objects: 1, records: 1 }],
      needs_attention: 2,
    });
    expect(sizes.filter((n) => n > 0).length).toBe(3);
  });

  it('a healthy lake exits 0: the nightly run folds the late edit in, the quarantine is reviewed', async () => {
    const { data, store, runOf } = await troubledLake('repaired');
    const nightly = await compact(store, data, '2025-08-12', '2025-08-12T17:00:00Z');
    expect(nightly.results.map((r) => [r.tenant, r.date, r.status])).toStrictEqual([
      ['acme', '2025-08-12', 'no-input'],
      ['globex', '2025-08-12', 'no-input'],
      ['globex', '2025-08-11', 'compacted'],
    ]);
    // reviewing the capture quarantine: look at it, then delete (or move) it
    const [quarantined] = await listAll(store, 'quarantine/ingest/');
    expect(quarantined?.key.startsWith(ingestQuarantineKey('dynamodb', '2025-08-11', 'x').replace(/x\.ndjson\.gz$/, ''))).toBe(
      true,
    );
    await store.delete(quarantined?.key as string);

    const healthy = await cli(data, ['status', '2025-08-11', '--days', '2', '--all-tenants', '--json']);
    expect(healthy.code).toBe(0);
    const parsed = JSON.parse(healthy.stdout);
    expect(
      parsed.partitions.map((p: Record<string, unknown>) => [
        p.tenant_id,
        p.dt,
        p.rows,
        p.staging_not_covered,
        p.stale_parts,
        p.attention,
      ]),
    ).toStrictEqual([
      ['acme', '2025-08-10', 1, 0, 0, []],
      ['acme', '2025-08-11', 2, 0, 1, []],
      ['globex', '2025-08-10', null, 0, 0, []],
      // the part the nightly run replaced stays in the folder, unreferenced, until vacuum
      ['globex', '2025-08-11', 1, 0, 1, []],
    ]);
    expect([parsed.ingest_quarantine, parsed.needs_attention]).toStrictEqual([[], 0]);
    const acmeRun = runOf('acme', '2025-08-11');
    const acmeBytes = (await listAll(store, 'staging/messages/tenant_id=acme/dt=2025-08-11/'))[0]?.size;
    const table = await cli(data, ['status', '2025-08-11', 'acme']);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n').slice(2)).toStrictEqual([
      `acme    2025-08-11        1  ${String(acmeBytes).padStart(5)}  yes         2  ${acmeRun}  2025-08-11T17:00:00.000Z  1 stale            0  -`,
      '',
      'nothing needs attention',
    ]);
  });

  it('staging a run should have folded in needs attention at once; else two hours after the run scheduled for it; a late object waits for the next night', async () => {
    const { data, store, lateKey } = await troubledLake('schedule');
    const figures = async (at: string) =>
      metricValues(statusMetrics(await lakeStatus(store, { tenants: 'all', dates: ['2025-08-11'], now: Date.parse(at) })));
    const written = (at: string) => utimes(join(data, lateKey), new Date(at), new Date(at));
    // written 2025-08-11 20:00 JST, before the run of 2025-08-12 02:00 JST (17:00Z) started, and not folded in
    // by it: that run should have taken it, so it needs attention before the schedule's grace is over
    // the unreferenced file is not a stale part for the alarm: only files a version names and cannot read are
    expect(await figures('2025-08-11T17:00:00.001Z')).toStrictEqual({
      PartitionsNeedingAttention: 1,
      StaleParts: 0,
      UncompactedStagingDays: 1,
      PendingDeletesNeedingAttention: 0,
    });
    // written exactly RUN_CLOCK_TOLERANCE_MS (5 minutes) before the run started: still one the run saw
    await written('2025-08-11T16:55:00.000Z');
    expect((await figures('2025-08-11T17:00:00.001Z')).UncompactedStagingDays).toBe(1);
    // written 01:56 JST, less than 5 minutes before the run started (clocks, an upload straddling the listing):
    // due at that run, 2025-08-12 02:00 JST, overdue from 04:00 JST
    await written('2025-08-11T16:56:00.000Z');
    expect(await figures('2025-08-11T18:59:59.999Z')).toStrictEqual({
      PartitionsNeedingAttention: 0,
      StaleParts: 0,
      UncompactedStagingDays: 0,
      PendingDeletesNeedingAttention: 0,
    });
    expect(await figures('2025-08-11T19:00:00.000Z')).toStrictEqual({
      PartitionsNeedingAttention: 1,
      StaleParts: 0,
      UncompactedStagingDays: 1,
      PendingDeletesNeedingAttention: 0,
    });
    const overdue = await lakeStatus(store, {
      tenants: ['globex'],
      dates: ['2025-08-11'],
      now: Date.parse('2025-08-11T19:00:00.000Z'),
    });
    expect(overdue.partitions[0]?.attention).toStrictEqual([
      `1 staging object not compacted since run ${overdue.partitions[0]?.run_id} (due 2025-08-12 02:00 JST)`,
    ]);
    // written 2025-08-13 03:00 JST, after that night's run: due at the next one, 2025-08-14 02:00 JST
    await written('2025-08-12T18:00:00Z');
    expect((await figures('2025-08-13T18:59:59.999Z')).UncompactedStagingDays).toBe(0);
    expect((await figures('2025-08-13T19:00:00.000Z')).UncompactedStagingDays).toBe(1);
  });

  it('says so when a run manifest is unreadable or a file the table names is gone', async () => {
    const { store, runOf } = await troubledLake('torn');
    await store.putBytes(runManifestKey('acme', '2025-08-10', runOf('acme', '2025-08-10')), '{"version": 1, "run_id": ');
    const snapshot = await new DeltaTable(store, {}).snapshot();
    const named = partitionFiles(snapshot, 'acme', '2025-08-11');
    await store.delete(tableKey(named[0]?.path as string));
    // the current version: 1 or 2, as the run's two partitions shared one commit or not (group commit)
    const status = await lakeStatus(store, { tenants: ['acme'], dates: ['2025-08-10', '2025-08-11'], now: NOW });
    expect(status.partitions.map((p) => [p.dt, p.run_id, p.stale_parts, p.missing_parts, p.attention])).toStrictEqual([
      ['2025-08-10', null, 0, 0, ['run manifest unreadable']],
      [
        '2025-08-11',
        runOf('acme', '2025-08-11'),
        1,
        1,
        [`table version ${snapshot.version} names files that are not as committed: 1 missing`],
      ],
    ]);
  });

  it('right after `demo`, status names the day capture quarantined its record (today, not a day checked) and exits 5', async () => {
    const env = { DATA_DIR: join(dir.path, 'demo'), TEMP_DIR: dir.path, DUCKDB_THREADS: '1' };
    const today = jstDate(Date.now());
    expect(await main(['demo', '--messages', '20'], env, { stdout: () => {}, stderr: () => {} })).toBe(0);
    const run = async (argv: string[]) => {
      const stdout: string[] = [];
      const code = await main(argv, env, { stdout: (t) => stdout.push(t), stderr: () => {} });
      return { code, stdout: stdout.join('\n') };
    };
    const human = await run(['status', '--all-tenants']);
    expect(human.code).toBe(5);
    const lines = human.stdout.split('\n');
    // the demo's three tenants, yesterday (the default date): compacted, covered, nothing to look at
    expect(lines.slice(2, 5).map((l) => l.split(/ {2,}/).filter(Boolean)[0])).toStrictEqual([
      'default_tenant',
      'fuji-bank',
      'sakura-shop',
    ]);
    expect(lines.slice(2, 5).every((l) => / {2}yes {2}.* {2}ok {2,}0 {2}-$/.test(l))).toBe(true);
    expect(lines.slice(5)).toStrictEqual([
      '',
      'ingest quarantine dt  source    objects  records  needs attention',
      '--------------------  --------  -------  -------  ---------------------------------',
      `${today}            dynamodb        1        1  1 quarantined record not reviewed`,
      '',
      '1 needs attention',
    ]);
    const json = await run(['status', '--all-tenants', '--json']);
    expect(json.code).toBe(5);
    const parsed = JSON.parse(json.stdout);
    expect([parsed.ingest_quarantine, parsed.needs_attention]).toStrictEqual([
      [{ dt: today, source: 'dynamodb', objects: 1, records: 1 }],
      1,
    ]);
    expect(
      parsed.partitions.map((p: Record<string, unknown>) => [p.tenant_id, p.staging_not_covered, p.attention]),
    ).toStrictEqual([
      ['default_tenant', 0, []],
      ['fuji-bank', 0, []],
      ['sakura-shop', 0, []],
    ]);
  });

  it('rejects a bad --days and DATE', async () => {
    const data = join(dir.path, 'usage');
    expect((await cli(data, ['status', '--days', '0'])).code).toBe(2);
    expect((await cli(data, ['status', '2025-02-30'])).stderr).toMatch(
      /^makoto-lake: DATE must be a calendar date YYYY-MM-DD, got "2025-02-30"/,
    );
  });
});
