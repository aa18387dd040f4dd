/**
 * `npm run bench -- [--scenario single,tenants,stores,ingest,peer,profile,merge,peers,split,table,export,night,intraday|all]
 *                   [--messages N] [--memory 1GB] [--threads 2] [--data DIR] [--rounds N] [--baseline DIR] [--ranges K]
 *                   [--buckets B] [--latency-ms N] [--commit-batch N] [--json] [--out FILE]`
 *
 * Every measured compaction runs in a child process of its own (bench/step.ts) so its peak RSS is its own.
 * Each number is printed with the machine's load average when it was taken (the box may be shared).
 * Tables go to stdout (stderr with --json, which prints the whole report as JSON on stdout).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import { table } from '../src/app/report.js';
import { readManifest } from '../src/compaction/manifest.js';
import { loadConfig } from '../src/config.js';
import { generateChatDay, randomSource, toDynamoDBRecord } from '../src/demo/chatDay.js';
import { stagingPrefix } from '../src/staging/layout.js';
import { LocalStore } from '../src/store/LocalStore.js';
import { listAll, type ObjectStore } from '../src/store/ObjectStore.js';
import { mapLimit } from '../src/util/concurrency.js';
import { ingestStreamEvent } from '../stream-ingest/handler.js';
import { startAzurite } from '../test/azure/azureServers.js';
import { quietTelemetry } from '../test/kit/lambdaTelemetry.js';
import { freePort, type RunningServer, startNodeServer } from '../test/kit/servers.js';
import { CountingStore, REQUEST_KINDS, type RequestKind } from '../tools/CountingStore.js';
import { generateStaging, type StagingStats, textPool } from '../tools/generateStaging.js';
import { costTables, type Measured } from './costModel.js';
import { summariseCpuProfile } from './cpuProfile.js';
import { exportScenario } from './exportBench.js';
import { nightScenario } from './nightBench.js';
import { ensurePolars, POLARS_VERSION } from './peerPolars.js';
import type { StoreTarget } from './step.js';
import { night, year } from './tableLog.js';

const DATE = '2025-08-11';
const TENANT = 'bench';
const SCENARIOS = [
  'single',
  'tenants',
  'stores',
  'ingest',
  'peer',
  'profile',
  'merge',
  'peers',
  'split',
  'table',
  'export',
  'night',
  'intraday',
] as const;
type Scenario = (typeof SCENARIOS)[number];
type Row = Record<string, unknown>;

interface Context {
  readonly root: string;
  readonly messages: number;
  readonly memory: string;
  readonly threads: string;
  readonly dataDir: string | undefined;
  readonly say: (text: string) => void;
  readonly report: Record<string, unknown>;
  day?: { dir: string; staged: StagingStats };
  servers?: Servers;
}

const USAGE = `usage: npm run bench -- [--scenario single|tenants|stores|ingest|peer|profile|merge|peers|split|table|export|night|intraday|all[,...]]
  [--messages N] [--memory 1GB] [--threads 2] [--data DIR] [--tenants N] [--tenant-messages N]
  [--concurrency N] [--rounds N] [--baseline DIR] [--ranges K] [--buckets B] [--latency-ms N]
  [--commit-batch N] [--zipf S] [--workers W] [--job-concurrency C] [--new-messages N] [--json] [--out FILE]
  tenants: --tenants × --tenant-messages in one process; --latency-ms adds a delay to every store request,
  --commit-batch caps partitions per table version, --baseline DIR runs an earlier checkout alongside.
  night: Zipf (--zipf, --messages in all; 0 = --tenant-messages each) through the fan-out driver: W worker
  processes × C jobs, each job as one invocation. intraday: the tenants day compacted, then --new-messages
  per tenant folded in by one intraday run.
  split: the single pass and a split into K map × B reduce tasks (default 4 × 4), each task in its own
  process, on copies of the same day; compares the Parquet rows and the manifest counts.
  peers: the project, bare DuckDB (same and unlimited memory) and Polars on the same day, interleaved
  rounds; --baseline DIR adds the project as checked out in DIR (e.g. an earlier commit) as a contender.`;

export async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  let parsed: ReturnType<typeof parseBenchArgs>;
  try {
    parsed = parseBenchArgs(argv);
  } catch (error) {
    console.error(`bench: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  return runBench(parsed.values, argv);
}

function parseBenchArgs(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      messages: { type: 'string', default: '1000000' },
      scenario: { type: 'string', default: 'single' },
      memory: { type: 'string', default: '1GB' },
      threads: { type: 'string', default: '2' },
      data: { type: 'string' },
      tenants: { type: 'string', default: '1000' },
      'tenant-messages': { type: 'string', default: '1000' },
      concurrency: { type: 'string', default: '4' },
      'latency-ms': { type: 'string', default: '0' },
      zipf: { type: 'string', default: '1.1' },
      'new-messages': { type: 'string', default: '50' },
      workers: { type: 'string', default: '2' },
      'job-concurrency': { type: 'string', default: '2' },
      'commit-batch': { type: 'string' },
      rounds: { type: 'string' },
      baseline: { type: 'string' },
      ranges: { type: 'string', default: '4' },
      buckets: { type: 'string', default: '4' },
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
    },
  });
}

async function runBench(values: ReturnType<typeof parseBenchArgs>['values'], argv: string[]): Promise<number> {
  const requested = (values.scenario ?? 'single').split(',').map((s) => s.trim());
  const scenarios: Scenario[] = requested.includes('all') ? [...SCENARIOS] : (requested as Scenario[]);
  const unknown = scenarios.filter((s) => !SCENARIOS.includes(s));
  if (unknown.length > 0) {
    console.error(`unknown scenario(s) ${unknown.join(', ')}; choose from ${SCENARIOS.join(', ')} or all`);
    return 2;
  }
  const root = await mkdtemp(join(tmpdir(), 'makoto-lake-bench-'));
  const say = values.json ? (t: string) => console.error(t) : (t: string) => console.log(t);
  const context: Context = {
    root,
    messages: Number(values.messages),
    memory: values.memory as string,
    threads: values.threads as string,
    dataDir: values.data,
    say,
    report: {
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memGB: Math.round(totalmem() / 2 ** 30), node: process.version },
      date: new Date().toISOString(),
      args: argv,
    },
  };
  say(`makoto-lake bench ${new Date().toISOString()} on ${cpus().length}× ${cpus()[0]?.model ?? '?'}; ${load()}`);
  try {
    for (const scenario of scenarios) {
      if (scenario === 'single') context.report.single = await single(context);
      if (scenario === 'tenants') {
        context.report.tenants = await tenants(context, {
          count: Number(values.tenants),
          perTenant: Number(values['tenant-messages']),
          concurrency: values.concurrency as string,
          latencyMs: Number(values['latency-ms']),
          commitBatch: values['commit-batch'] === undefined ? undefined : Number(values['commit-batch']),
          baseline: values.baseline,
          rounds: values.rounds === undefined ? 1 : Number(values.rounds),
        });
      }
      if (scenario === 'stores') context.report.stores = await stores(context);
      if (scenario === 'ingest') context.report.ingest = await ingest(context);
      if (scenario === 'peer') context.report.peer = await peer(context);
      if (scenario === 'profile') context.report.profile = await profile(context);
      if (scenario === 'merge') context.report.merge = await merge(context);
      if (scenario === 'peers') context.report.peers = await peers(context, Number(values.rounds ?? 3), values.baseline);
      if (scenario === 'split') {
        context.report.split = await split(context, { ranges: Number(values.ranges), buckets: Number(values.buckets) });
      }
      if (scenario === 'table') context.report.table = await tableScenario(context, Number(values.tenants));
      if (scenario === 'export') context.report.export = await exportScenario(root, context.messages, say);
      if (scenario === 'intraday') {
        context.report.intraday = await intraday(context, {
          count: Number(values.tenants),
          perTenant: Number(values['tenant-messages']),
          concurrency: values.concurrency as string,
          latencyMs: Number(values['latency-ms']),
          newMessages: Number(values['new-messages']),
        });
      }
      if (scenario === 'night') {
        context.report.night = await nightScenario({
          root,
          dataDir: values.data,
          date: DATE,
          tenants: Number(values.tenants),
          zipf: Number(values.zipf),
          // Zipf: --messages in all; uniform (--zipf 0): --tenant-messages each
          messages: Number(values.zipf) > 0 ? context.messages : Number(values['tenant-messages']),
          workers: Number(values.workers),
          jobConcurrency: Number(values['job-concurrency']),
          latencyMs: Number(values['latency-ms']),
          threads: context.threads,
          memory: context.memory,
          say,
        });
      }
    }
    const measured = measuredFrom(context.report);
    if (measured) {
      const tables = costTables(measured);
      context.report.cost = { measured, estimates: tables.map(({ batching, estimates }) => ({ batching, estimates })) };
      say(`\ncost model (bench/costModel.ts, prices in bench/prices.ts), from this run's measurements:`);
      for (const t of tables) say(`\n${t.table}`);
    }
  } finally {
    await context.servers?.stop();
    await rm(root, { recursive: true, force: true });
  }
  if (values.out) await writeFile(values.out, `${JSON.stringify(context.report, null, 2)}\n`);
  if (values.json) process.stdout.write(`${JSON.stringify(context.report, null, 2)}\n`);
  return 0;
}

/** The Delta log at the fan-out's concurrency and after a simulated year (bench/tableLog.ts). */
async function tableScenario(context: Context, partitions: number) {
  context.say(`\nscenario table: the Delta log, ${partitions} tenant-days a night (${load()})`);
  const rows: Record<string, unknown>[] = [];
  for (const [writers, interval] of [
    [1, 10],
    [8, 10],
    [50, 10],
    [50, 100],
  ] as const) {
    const row = await night(join(context.root, `night-${writers}-${interval}`), partitions, writers, interval);
    context.say(`night: ${JSON.stringify(row)}`);
    rows.push(row);
  }
  const simulated = await year(join(context.root, 'year'), partitions, join(context.root, 'year-work'));
  context.say(`year: ${JSON.stringify(simulated)} (${load()})`);
  return { nights: rows, year: simulated };
}

/** `load 1.02 0.98 0.75` – the 1/5/15-minute load averages, next to every number. */
function load(): string {
  return `load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`;
}

function step(mode: string, args: string[], nodeFlags: string[] = [], cwd = process.cwd()): Row {
  const before = loadavg()[0];
  // GNU time, when the box has it, measures every contender the same way from outside: CPU seconds
  // (user + system, all threads) and peak RSS of the child process.
  const timeFile = join(tmpdir(), `makoto-lake-bench-time-${process.pid}`);
  const command = [process.execPath, ...nodeFlags, 'bin/run-ts.mjs', 'bench/step.ts', mode, ...args];
  const timed = existsSync(GNU_TIME) ? [GNU_TIME, '-f', '%U %S %M', '-o', timeFile, ...command] : command;
  const run = spawnSync(timed[0] as string, timed.slice(1), { encoding: 'utf8', maxBuffer: 1 << 26, cwd });
  if (run.status !== 0) throw new Error(`bench step ${mode} failed:\n${run.stderr}`);
  const result = JSON.parse(run.stdout.trim().split('\n').pop() as string) as Row;
  let outside: Row = {};
  if (timed !== command) {
    const [user, system, maxKB] = readFileSync(timeFile, 'utf8').trim().split('\n').pop()?.split(' ').map(Number) ?? [];
    outside = { cpuS: Number(((user ?? 0) + (system ?? 0)).toFixed(2)), maxRssMB: Math.round((maxKB ?? 0) / 1024) };
  }
  return { ...result, ...outside, load1: [Number(before?.toFixed(2)), Number(loadavg()[0]?.toFixed(2))] };
}

const GNU_TIME = '/usr/bin/time';

/** The one tenant-day of `messages` messages every scenario shares; generated once, or reused from --data. */
async function day(context: Context): Promise<{ dir: string; staged: StagingStats }> {
  if (context.day) return context.day;
  const dataRoot = context.dataDir ?? join(context.root, 'data');
  const marker = join(dataRoot, `_bench-${context.messages}.json`);
  let staged: StagingStats;
  if (context.dataDir && existsSync(marker)) {
    staged = JSON.parse(await readFile(marker, 'utf8')) as StagingStats;
    context.say(`reusing ${staged.records} staging records in ${staged.objects} objects from ${dataRoot}`);
  } else {
    const t0 = performance.now();
    staged = await generateStaging({ root: dataRoot, tenant: TENANT, date: DATE, messages: context.messages });
    await writeFile(marker, JSON.stringify(staged));
    context.say(
      `generated ${staged.records} staging records in ${staged.objects} objects (${(staged.bytes / 1e6).toFixed(1)} MB gzip) in ${Math.round(performance.now() - t0)} ms`,
    );
  }
  context.day = { dir: dataRoot, staged };
  return context.day;
}

const stagingDir = (dataRoot: string, tenant = TENANT) => join(dataRoot, stagingPrefix(tenant, DATE));

/** Compactions through the local store write their lake next to the shared staging; every run starts without it. */
async function cleanLake(dataRoot: string): Promise<void> {
  for (const folder of ['analytics', 'manifests', 'quarantine', 'locks', 'tombstones']) {
    await rm(join(dataRoot, folder), { recursive: true, force: true });
  }
}

async function single(context: Context) {
  const { dir, staged } = await day(context);
  const { messages, memory, threads, root } = context;
  // a partition left published in a reused --data folder (an interrupted run) would make this a re-compaction
  await cleanLake(dir);
  const bare = step('bare', [dir, TENANT, DATE, join(root, 'bare'), memory, threads]);
  const project = step('project', [dir, TENANT, DATE, join(root, 'project'), memory, threads]);
  await cleanLake(dir);
  if (project.rows !== staged.expectedRows || bare.rows !== staged.expectedRows) {
    throw new Error(`row counts differ: expected ${staged.expectedRows}, project ${project.rows}, bare ${bare.rows}`);
  }
  const rows = [
    ['run', 'messages', 'ms', 'msg/s', 'MB/s in', 'peak RSS MB', 'peak temp MB', 'out MB', 'load1 before/after'],
    ...(
      [
        ['bare DuckDB COPY', bare],
        ['makoto-lake compact', project],
      ] as const
    ).map(([name, m]) => [
      name,
      messages,
      m.ms as number,
      Math.round((messages / (m.ms as number)) * 1000),
      Number((staged.bytes / 1e6 / ((m.ms as number) / 1000)).toFixed(1)),
      m.maxRssMB as number,
      m.peakTempMB as number,
      Number(((m.bytesWritten as number) / 1e6).toFixed(1)),
      (m.load1 as number[]).join(' / '),
    ]),
  ];
  context.say(`\nscenario single: one tenant-day, ${messages} messages, DuckDB ${memory} / ${threads} threads`);
  context.say(table(rows));
  const ratio = (project.ms as number) / (bare.ms as number);
  context.say(
    `ratio project/bare: time ${ratio.toFixed(2)}, peak RSS ${((project.maxRssMB as number) / (bare.maxRssMB as number)).toFixed(2)}`,
  );
  context.say(`project phases (ms): ${JSON.stringify(project.timings)}`);
  return { messages, staged, bare, project, ratio: Number(ratio.toFixed(3)) };
}

/**
 * Re-compaction of a published partition: the first compaction of a day of `messages` messages, then the
 * day's staging expires, 1% as many messages arrive late (edits, replays and new versions of the same ids),
 * and the partition is compacted again — merged into the published rows. Works on a copy of the shared day.
 */
async function merge(context: Context) {
  const { messages, memory, threads, root } = context;
  const data = join(root, 'merge');
  const { dir, staged: first } = await day(context);
  await cp(stagingDir(dir), stagingDir(data), { recursive: true });
  const initial = step('project', [data, TENANT, DATE, join(root, 'merge-1'), memory, threads]);
  await rm(stagingDir(data), { recursive: true, force: true });
  const late = await generateStaging({ root: data, tenant: TENANT, date: DATE, messages: Math.ceil(messages / 100), seed: 4242 });
  const again = step('project', [data, TENANT, DATE, join(root, 'merge-2'), memory, threads]);
  await rm(data, { recursive: true, force: true });
  const rows = [
    ['run', 'staging records', 'published rows read', 'rows written', 'ms', 'peak RSS MB', 'peak temp MB', 'load1 before/after'],
    ...(
      [
        ['first compaction', first.records, initial],
        ['re-compaction, 1% late', late.records, again],
      ] as const
    ).map(([name, records, m]) => [
      name,
      records,
      m.rowsCarried as number,
      m.rows as number,
      m.ms as number,
      m.maxRssMB as number,
      m.peakTempMB as number,
      (m.load1 as number[]).join(' / '),
    ]),
  ];
  context.say(`\nscenario merge: ${messages} messages published, then 1% late staging; DuckDB ${memory} / ${threads} threads`);
  context.say(table(rows));
  context.say(`first phases (ms): ${JSON.stringify(initial.timings)}`);
  context.say(`re-compaction phases (ms): ${JSON.stringify(again.timings)}`);
  return { messages, first: initial, again, ratio: Number(((again.ms as number) / (initial.ms as number)).toFixed(3)) };
}

/** The manifest counts the split must reproduce exactly. */
const SPLIT_COUNTS = [
  'rows_read',
  'rows_carried',
  'deletes_remembered',
  'rows_rejected',
  'objects_rejected',
  'duplicates_removed',
  'versions_superseded',
  'deletes_applied',
  'rows_written',
] as const;

/**
 * The single pass against a split of the same day into K map × B reduce tasks, each task in its own
 * process (its own DuckDB instance, work folder, peak RSS and temp disk), on two copies of the staging.
 * Rows are compared in DuckDB (EXCEPT ALL both ways over every column), counts from the two manifests.
 */
async function split(context: Context, shape: { ranges: number; buckets: number }) {
  const { dir, staged } = await day(context);
  const { messages, memory, threads, root } = context;
  const singleRoot = join(root, 'split-single-data');
  const splitRoot = join(root, 'split-split-data');
  for (const r of [singleRoot, splitRoot]) await cp(stagingDir(dir), stagingDir(r), { recursive: true });
  try {
    const single = step('project', [singleRoot, TENANT, DATE, join(root, 'split-single'), memory, threads]);
    const task = (name: string, args: Row) =>
      step('split', [
        join(root, `split-${name}`),
        JSON.stringify({ root: splitRoot, tenant: TENANT, date: DATE, memory, threads: Number(threads), ...args }),
      ]);
    const start = task('start', { task: 'start', shape });
    const ref = start.ref;
    const maps = Array.from({ length: shape.ranges }, (_, i) => task(`map-${i}`, { task: 'map', ref, index: i }));
    const reduces = Array.from({ length: shape.buckets }, (_, b) => task(`reduce-${b}`, { task: 'reduce', ref, index: b }));
    const commit = task('commit', { task: 'commit', ref });
    const partFiles = async (r: string) =>
      (await listAll(new LocalStore(r), `analytics/messages/tenant_id=${TENANT}/dt=${DATE}/`)).map((o) => join(r, o.key));
    const compared = step('compare', [
      join(root, 'split-compare'),
      JSON.stringify({ a: await partFiles(singleRoot), b: await partFiles(splitRoot), memory, threads: Number(threads) }),
    ]);
    const counts = async (r: string) => {
      const m = await readManifest(new LocalStore(r), TENANT, DATE);
      if (!m) throw new Error(`no manifest in ${r}`);
      return { ...Object.fromEntries(SPLIT_COUNTS.map((k) => [k, m[k] ?? 0])), tombstone_rows: m.tombstones?.rows ?? 0 };
    };
    const countsSingle = await counts(singleRoot);
    const countsSplit = await counts(splitRoot);
    const rowsEqual = compared.only_a === 0 && compared.only_b === 0 && compared.a_rows === compared.b_rows;
    const countsEqual = JSON.stringify(countsSingle) === JSON.stringify(countsSplit);
    const tasks = [
      ['start', start],
      ...maps.map((m, i) => [`map ${i}`, m] as const),
      ...reduces.map((r, b) => [`reduce ${b}`, r] as const),
      ['commit', commit],
    ] as const;
    const ms = (r: Row) => r.ms as number;
    const max = (rs: readonly Row[]) => Math.max(0, ...rs.map(ms));
    const sequentialMs = tasks.reduce((n, [, r]) => n + ms(r), 0);
    const criticalPathMs = ms(start) + max(maps) + max(reduces) + ms(commit);
    const rowOf = (name: string, m: Row) => [
      name,
      m.ms as number,
      m.maxRssMB as number,
      m.peakTempMB as number,
      (m.load1 as number[]).join(' / '),
    ];
    context.say(
      `\nscenario split: one tenant-day, ${messages} messages (${(staged.bytes / 1e6).toFixed(1)} MB gzip staging), single pass vs ${shape.ranges} map × ${shape.buckets} reduce tasks, each in its own process; DuckDB ${memory} / ${threads} threads`,
    );
    context.say(
      table([
        ['run', 'ms', 'peak RSS MB', 'peak temp MB', 'load1 before/after'],
        rowOf('single pass', single),
        ...tasks.map(([name, m]) => rowOf(`split ${name}`, m)),
      ]),
    );
    context.say(
      `split wall: ${sequentialMs} ms one task after another, ${criticalPathMs} ms with every map and every reduce in parallel (start + slowest map + slowest reduce + commit); single pass ${single.ms} ms`,
    );
    context.say(
      `rows_equal ${rowsEqual} (${JSON.stringify(compared)}), counts_equal ${countsEqual}: ${JSON.stringify(countsSplit)}`,
    );
    context.say(`commit phases (ms): ${JSON.stringify(commit.timings)}`);
    return {
      messages,
      shape,
      stagingBytes: staged.bytes,
      rows_equal: rowsEqual,
      counts_equal: countsEqual,
      compared,
      counts: { single: countsSingle, split: countsSplit },
      single,
      tasks: Object.fromEntries(tasks.map(([name, m]) => [name, m])),
      splitSequentialMs: sequentialMs,
      splitCriticalPathMs: criticalPathMs,
      peakRssMB: { single: single.maxRssMB, splitTaskMax: Math.max(...tasks.map(([, m]) => m.maxRssMB as number)) },
      peakTempMB: { single: single.peakTempMB, splitTaskMax: Math.max(...tasks.map(([, m]) => m.peakTempMB as number)) },
    };
  } finally {
    await rm(singleRoot, { recursive: true, force: true });
    await rm(splitRoot, { recursive: true, force: true });
  }
}

/** Options of the many-tenants scenarios (`tenants`, `night`). */
interface TenantsOptions {
  readonly count: number;
  readonly perTenant: number;
  readonly concurrency: string;
  /** Fixed delay per store request (LatencyStore); 0 = none. */
  readonly latencyMs: number;
  /** Partitions per table version (group commit); undefined = the default. */
  readonly commitBatch: number | undefined;
  /** A checkout of an earlier commit (--baseline) run on a copy of the same staging, interleaved. */
  readonly baseline: string | undefined;
  readonly rounds: number;
}

/**
 * `count` tenants × `perTenant` messages generated once (or reused from --data DIR), then compacted in one
 * process (runCompaction, TENANT_ID=*) on a fresh copy per round: the project, and the --baseline checkout
 * when given, alternately. Prints wall, per-tenant times, phases and store requests per partition by kind.
 */
async function tenants(context: Context, options: TenantsOptions) {
  const { count, perTenant } = options;
  const source = await tenantsDay(context, count, perTenant);
  const contenders: [string, string][] = [['project', process.cwd()]];
  if (options.baseline) contenders.push(['baseline', options.baseline]);
  context.say(
    `\nscenario tenants: ${count} tenants × ${perTenant} messages through runCompaction (one DuckDB instance, COMPACT_CONCURRENCY=${options.concurrency}, ${options.latencyMs} ms per store request, commit batch ${options.commitBatch ?? 'default'})`,
  );
  const header = [
    'contender',
    'tenants',
    'objects',
    'wall ms',
    'ms/tenant',
    'tenant p50 ms',
    'tenant p95 ms',
    'table commits',
    'peak RSS MB',
    'CPU s',
    'load1',
  ];
  const rows: (string | number)[][] = [header];
  const runs: Row[] = [];
  for (let round = 0; round < options.rounds; round++) {
    for (const [name, cwd] of contenders) {
      const data = join(context.root, `tenants-${name}-${round}`);
      await cp(source.dir, data, { recursive: true });
      const r = step(
        'tenants',
        [
          join(context.root, `tenants-out-${name}-${round}`),
          JSON.stringify({
            root: data,
            date: DATE,
            memory: context.memory,
            threads: context.threads,
            concurrency: options.concurrency,
            latencyMs: options.latencyMs,
            ...(options.commitBatch === undefined ? {} : { commitBatch: options.commitBatch }),
          }),
        ],
        [],
        cwd,
      );
      await rm(data, { recursive: true, force: true });
      if (r.rows !== source.expected || r.ok !== true) {
        throw new Error(`tenants run (${name}): ok ${r.ok}, rows ${r.rows}, expected ${source.expected}`);
      }
      const tenantMs = r.tenantMs as Row;
      rows.push([
        name,
        count,
        r.inputs as number,
        r.ms as number,
        Number(((r.ms as number) / count).toFixed(1)),
        tenantMs.p50 as number,
        tenantMs.p95 as number,
        (r.tableCommits as number | undefined) ?? '–',
        r.maxRssMB as number,
        (r.cpuS as number | undefined) ?? '–',
        (r.load1 as number[]).join(' / '),
      ]);
      runs.push({ contender: name, round, ...r, perPartition: perPartition(r, count) });
      context.say(
        `${name} round ${round}: summed phases over tenants (ms, concurrent) ${JSON.stringify(r.phaseMsSum)}; requests per partition ${JSON.stringify(perPartition(r, count))}`,
      );
    }
  }
  context.say(table(rows));
  const byArea = runs[0]?.byArea as Record<string, Record<string, number>> | undefined;
  if (byArea) {
    context.say(`requests per partition by area (project, round 0):`);
    context.say(
      table([
        ['area', ...REQUEST_KINDS],
        ...Object.entries(byArea).map(([area, c]) => [
          area,
          ...REQUEST_KINDS.map((k) => Number(((c[k] ?? 0) / count).toFixed(2))),
        ]),
      ]),
    );
  }
  return { count, perTenant, latencyMs: options.latencyMs, commitBatch: options.commitBatch ?? null, runs };
}

/**
 * An hourly intraday run: the many-tenants day compacted as a night, then every tenant gains `newMessages`
 * messages and one intraday run folds them in (bench/step.ts `intraday`); its wall, CPU and requests.
 */
async function intraday(
  context: Context,
  options: { count: number; perTenant: number; concurrency: string; latencyMs: number; newMessages: number },
) {
  const source = await tenantsDay(context, options.count, options.perTenant);
  const data = join(context.root, 'intraday-lake');
  await cp(source.dir, data, { recursive: true });
  const r = step('intraday', [
    join(context.root, 'intraday-out'),
    JSON.stringify({
      root: data,
      date: DATE,
      memory: context.memory,
      threads: context.threads,
      concurrency: options.concurrency,
      latencyMs: options.latencyMs,
      newMessages: options.newMessages,
    }),
  ]);
  await rm(data, { recursive: true, force: true });
  const expected = source.expected + options.count * options.newMessages;
  if (r.ok !== true || r.nightRows !== source.expected || r.partitions !== options.count || r.rows !== expected) {
    throw new Error(
      `intraday run: ok ${r.ok}, night rows ${r.nightRows}, partitions ${r.partitions}, rows ${r.rows} of ${expected}`,
    );
  }
  const line = {
    scenario: 'intraday',
    tenants: options.count,
    newMessagesEach: options.newMessages,
    expectedRows: expected,
    ...r,
  };
  context.say(JSON.stringify(line));
  return line;
}

/** Store requests per partition, by kind, from a step's operation counts. */
function perPartition(r: Row, partitions: number): Record<string, number> {
  const ops = (r.operations ?? {}) as Record<string, number>;
  return Object.fromEntries(REQUEST_KINDS.map((k) => [k, Number(((ops[k] ?? 0) / partitions).toFixed(2))]));
}

/** The many-tenants day: generated once into --data DIR (a marker file says so) or the run's own folder. */
async function tenantsDay(context: Context, count: number, perTenant: number): Promise<{ dir: string; expected: number }> {
  const dir = join(context.dataDir ?? context.root, `tenants-${count}x${perTenant}`);
  const marker = join(dir, '..', `_bench-tenants-${count}x${perTenant}.json`);
  if (existsSync(marker)) {
    const known = JSON.parse(await readFile(marker, 'utf8')) as { expected: number; objects: number };
    context.say(`\nreusing ${count} tenants × ${perTenant} messages (${known.objects} objects) from ${dir}`);
    return { dir, expected: known.expected };
  }
  const t0 = performance.now();
  const pool = textPool(randomSource(7));
  let objects = 0;
  let expected = 0;
  for (let i = 0; i < count; i++) {
    const staged = await generateStaging({
      root: dir,
      tenant: `t${String(i).padStart(4, '0')}`,
      date: DATE,
      messages: perTenant,
      seed: 1000 + i,
      // A small tenant's day arrives in stream batches of tens to hundreds of records.
      batch: [50, 500],
      pool,
    });
    objects += staged.objects;
    expected += staged.expectedRows;
  }
  await writeFile(marker, JSON.stringify({ expected, objects }));
  context.say(
    `\ngenerated ${count} tenants × ${perTenant} messages (${objects} objects) in ${Math.round(performance.now() - t0)} ms`,
  );
  return { dir, expected };
}

interface Servers {
  s3: { endpoint: string; bucket: string; server: RunningServer };
  azurite: RunningServer & { connectionString: string };
  stop(): Promise<void>;
}

/** s3rver and Azurite on 127.0.0.1 (as the test suites start them), once per bench run. */
async function servers(context: Context): Promise<Servers> {
  if (context.servers) return context.servers;
  const directory = await mkdtemp(join(context.root, 's3rver-'));
  const port = await freePort();
  const s3 = await startNodeServer(
    's3rver',
    ['--address', '127.0.0.1', '--port', String(port), '--directory', directory, '--silent'],
    port,
    { env: { NODE_OPTIONS: '--openssl-legacy-provider' } },
  );
  let azurite: Servers['azurite'];
  try {
    azurite = await startAzurite();
  } catch (error) {
    await s3.stop();
    throw error;
  }
  const endpoint = `http://127.0.0.1:${port}`;
  const s3Store = await s3StoreFor(endpoint, 'bench');
  await s3Store.client.send(new s3Store.CreateBucketCommand({ Bucket: 'bench' }));
  context.servers = {
    s3: { endpoint, bucket: 'bench', server: s3 },
    azurite,
    stop: async () => {
      await s3.stop();
      await azurite.stop();
    },
  };
  return context.servers;
}

async function s3StoreFor(endpoint: string, bucket: string) {
  const { S3Client, CreateBucketCommand } = await import('@aws-sdk/client-s3');
  const { S3Store } = await import('../stores/s3/S3Store.js');
  const client = new S3Client({
    endpoint,
    region: 'ap-northeast-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  return { store: new S3Store({ bucket, client }), client, CreateBucketCommand };
}

async function blobStoreFor(connectionString: string, container: string): Promise<ObjectStore> {
  const { BlobStore } = await import('../stores/blob/BlobStore.js');
  const { BlobServiceClient } = await import('@azure/storage-blob');
  // Created up front: BlobStore creates a missing container on the first write only, and parallel first
  // writes race it (reported to the lead).
  await BlobServiceClient.fromConnectionString(connectionString).getContainerClient(container).createIfNotExists();
  return new BlobStore({ connectionString, containerName: container });
}

/** Copies the local tenant-day's staging objects into `store` (what the capture path would have written). */
async function seed(from: string, store: ObjectStore): Promise<{ objects: number; ms: number }> {
  const local = new LocalStore(from);
  const objects = await listAll(local, stagingPrefix(TENANT, DATE));
  const t0 = performance.now();
  await mapLimit(objects, 8, (o) => store.putFile(o.key, join(from, o.key)));
  return { objects: objects.length, ms: Math.round(performance.now() - t0) };
}

async function stores(context: Context) {
  const { dir, staged } = await day(context);
  const s = await servers(context);
  const perMillion = 1e6 / context.messages;
  const s3 = await s3StoreFor(s.s3.endpoint, s.s3.bucket);
  const s3Seed = await seed(dir, s3.store);
  const blobSeed = await seed(dir, await blobStoreFor(s.azurite.connectionString, 'bench'));
  context.say(`\nseeded ${s3Seed.objects} staging objects into s3rver in ${s3Seed.ms} ms and into Azurite in ${blobSeed.ms} ms`);
  const base = { tenant: TENANT, date: DATE, memory: context.memory, threads: context.threads };
  const targets: [string, StoreTarget][] = [
    ['local', { kind: 'local', root: dir }],
    ['s3 (s3rver)', { kind: 's3', endpoint: s.s3.endpoint, bucket: s.s3.bucket }],
    ['blob (Azurite)', { kind: 'blob', connectionString: s.azurite.connectionString, container: 'bench' }],
  ];
  const results: Record<string, Row> = {};
  for (const [name, target] of targets) {
    await cleanLake(dir);
    const r = step('store', [join(context.root, `store-${target.kind}`), JSON.stringify({ ...base, target })]);
    if (r.rows !== staged.expectedRows) throw new Error(`${name}: ${r.rows} rows, expected ${staged.expectedRows}`);
    results[name] = r;
  }
  await cleanLake(dir);
  const localMs = results.local?.ms as number;
  context.say(`scenario stores: compactPartition of the same day (${context.messages} messages) through each store`);
  context.say(
    table([
      [
        'store',
        'ms',
        'ratio vs local',
        'list',
        'download',
        'compact',
        'upload',
        'commit',
        ...REQUEST_KINDS.map((k) => `${k}/1M msgs`),
        'peak RSS MB',
        'load1',
      ],
      ...Object.entries(results).map(([name, r]) => {
        const t = r.timings as Record<string, number>;
        const req = r.requests as Record<RequestKind, number>;
        return [
          name,
          r.ms as number,
          Number(((r.ms as number) / localMs).toFixed(2)),
          t.list ?? 0,
          t.download ?? 0,
          t.compact ?? 0,
          t.upload ?? 0,
          t.commit ?? 0,
          ...REQUEST_KINDS.map((k) => Math.round(req[k] * perMillion)),
          r.maxRssMB as number,
          (r.load1 as number[]).join(' / '),
        ];
      }),
    ]),
  );
  const exact = results['s3 (s3rver)']?.s3Calls;
  context.say(`S3 API calls counted by the SDK (per run): ${JSON.stringify(exact)}`);
  context.say(
    'requests: LIST pages, GET/HEAD, PUT incl. multipart parts, DELETE; HEAD is billed like GET. Staging writes at ingest are not included (see ingest).',
  );
  return { seed: { s3: s3Seed, blob: blobSeed }, results, perMillion };
}

async function ingest(context: Context) {
  const s = await servers(context);
  const config = loadConfig({});
  const records = 10_000;
  // A multi-tenant table's stream: 20 tenants, one JST day, ~5% edits, ~1% deletes, some TTL expiries.
  const chat = generateChatDay({
    date: DATE,
    tenants: Array.from({ length: 20 }, (_, i) => `tenant${i}`),
    messagesPerTenant: 500,
    seed: 3,
  });
  // The generator emits tenant after tenant; a table's stream interleaves them in time order.
  const changes = [...chat.changes]
    .sort((x, y) => x.item.updatedAt.localeCompare(y.item.updatedAt))
    .slice(0, records)
    .map((c, i) => ({ ...c, seq: 300_000_000_000_000_000_000n + BigInt(i) * 10n }));
  const event = (round: number): DynamoDBStreamEvent =>
    ({
      Records: changes.map((c) => toDynamoDBRecord({ ...c, seq: c.seq + BigInt(round) * 1_000_000n })),
    }) as unknown as DynamoDBStreamEvent;
  const groups = new Set(changes.map((c) => c.item.tenantId)).size;
  const localRoot = join(context.root, 'ingest-local');
  await mkdir(localRoot, { recursive: true });
  const s3 = await s3StoreFor(s.s3.endpoint, s.s3.bucket);
  const targets: [string, ObjectStore][] = [
    ['local', new LocalStore(localRoot)],
    ['s3 (s3rver)', s3.store],
    ['blob (Azurite)', await blobStoreFor(s.azurite.connectionString, 'ingest')],
  ];
  const rows: Row[] = [];
  for (const [name, inner] of targets) {
    for (const size of [records, 500]) {
      const store = new CountingStore(inner);
      const times: number[] = [];
      const before = loadavg()[0];
      for (let round = 0; round < 6; round++) {
        const full = event(round);
        const batch = { Records: full.Records.slice(0, size) } as DynamoDBStreamEvent;
        store.reset();
        const t0 = performance.now();
        const answer = await ingestStreamEvent(batch, { store, config, ...quietTelemetry() });
        const ms = performance.now() - t0;
        if (answer.batchItemFailures.length > 0) throw new Error(`ingest into ${name} reported failures`);
        if (round > 0) times.push(ms); // round 0 warms up the JIT and the connection pool
      }
      times.sort((a, b) => a - b);
      const median = times[Math.floor(times.length / 2)] as number;
      rows.push({
        store: name,
        records: size,
        medianMs: Number(median.toFixed(1)),
        recordsPerS: Math.round((size / median) * 1000),
        objectsPerBatch: store.counts().operations.PUT,
        load1: [Number(before?.toFixed(2)), Number(loadavg()[0]?.toFixed(2))],
      });
    }
  }
  context.say(
    `\nscenario ingest: DynamoDB Streams events through stream-ingest's ingestStreamEvent (${groups} tenants, one day; median of 5 after a warm-up)`,
  );
  context.say(
    table([
      ['store', 'records/event', 'median ms', 'records/s', 'objects/batch', 'load1'],
      ...rows.map((r) => [
        r.store as string,
        r.records as number,
        r.medianMs as number,
        r.recordsPerS as number,
        r.objectsPerBatch as number,
        (r.load1 as number[]).join(' / '),
      ]),
    ]),
  );
  return { tenantDayGroups: groups, rows };
}

async function peer(context: Context) {
  const { dir, staged } = await day(context);
  const single = context.report.single as { project: Row } | undefined;
  const project =
    single?.project ?? step('project', [dir, TENANT, DATE, join(context.root, 'project'), context.memory, context.threads]);
  await cleanLake(dir);
  // A Lambda at 10 GB lets its Node heap grow to ~8 GB; the peer keeps the whole day on the heap.
  const r = step(
    'peer',
    [join(context.root, 'peer'), JSON.stringify({ stagingDir: stagingDir(dir) })],
    ['--max-old-space-size=8192'],
  );
  if (r.rows !== staged.expectedRows) throw new Error(`peer wrote ${r.rows} rows, expected ${staged.expectedRows}`);
  const speedup = (r.ms as number) / (project.ms as number);
  context.say(`\nscenario peer: the same day with a pure-JavaScript writer (hyparquet-writer 0.17.0), JSON.parse + Map dedup`);
  context.say(
    table([
      ['run', 'ms', 'msg/s', 'peak RSS MB', 'out MB', 'load1'],
      ...(
        [
          ['JS peer (hyparquet-writer)', r],
          ['makoto-lake compact', project],
        ] as const
      ).map(([name, m]) => [
        name,
        m.ms as number,
        Math.round((context.messages / (m.ms as number)) * 1000),
        m.maxRssMB as number,
        Number(((m.bytesWritten as number) / 1e6).toFixed(1)),
        ((m.load1 as number[] | undefined) ?? []).join(' / '),
      ]),
    ]),
  );
  context.say(`speed-up of makoto-lake over the JS peer: ${speedup.toFixed(1)}×; peer phases (ms): ${JSON.stringify(r.timings)}`);
  return { peer: r, project, speedup: Number(speedup.toFixed(2)) };
}

async function profile(context: Context) {
  const { dir } = await day(context);
  const profDir = join(context.root, 'cpuprof');
  const project = step(
    'project',
    [dir, TENANT, DATE, join(context.root, 'project-prof'), context.memory, context.threads],
    ['--cpu-prof', `--cpu-prof-dir=${profDir}`],
  );
  await cleanLake(dir);
  const cpu = await summariseCpuProfile(profDir);
  const explained = step('explain', [
    join(context.root, 'explain'),
    JSON.stringify({ stagingDir: stagingDir(dir), tenant: TENANT, date: DATE, memory: context.memory, threads: context.threads }),
  ]);
  const ops = explained.operatorsS as Record<string, number>;
  const opTotal = Object.values(ops).reduce((n, s) => n + s, 0);
  const t = project.timings as Record<string, number>;
  const compactMs = t.compact ?? 0;
  // Operator times are thread time summed over DuckDB's threads; they apportion the statement's wall time.
  const share = (names: string[]) => names.reduce((n, name) => n + (ops[name] ?? 0), 0) / opTotal;
  const breakdown: [string, number, string][] = [
    ['list', t.list ?? 0, 'compactPartition timingsMs'],
    ['download', t.download ?? 0, 'compactPartition timingsMs (local store: file copies)'],
    ['decompress + parse', Math.round(compactMs * share(['READ_NDJSON', 'READ_JSON'])), 'READ_NDJSON share of the statement'],
    ['validate + classify + dedup', Math.round(compactMs * share(['WINDOW', 'PROJECTION'])), 'WINDOW + PROJECTION share'],
    [
      'count rows, pick current rows',
      Math.round(compactMs * share(['FILTER', 'HASH_GROUP_BY', 'PERFECT_HASH_GROUP_BY'])),
      'FILTER + GROUP BY share',
    ],
    [
      'read staged/published Parquet, join winners',
      Math.round(compactMs * share(['READ_PARQUET', 'HASH_JOIN', 'CREATE_TABLE_AS', 'SEQ_SCAN'])),
      'READ_PARQUET + HASH_JOIN + CREATE_TABLE_AS share',
    ],
    ['write Parquet (staged file and output)', Math.round(compactMs * share(['COPY_TO_FILE'])), 'COPY_TO_FILE share'],
    ['upload', t.upload ?? 0, 'compactPartition timingsMs'],
    ['commit', t.commit ?? 0, 'manifest, quarantine marker, stale parts'],
  ];
  context.say(`\nscenario profile: where the time goes (${context.messages} messages, local store)`);
  context.say(table([['phase', 'ms', 'source'], ...breakdown.map(([a, b, c]) => [a, b, c])]));
  context.say(`DuckDB operator thread-seconds: ${JSON.stringify(ops)}`);
  context.say(
    `statement ms (stage, classify, count, deletes, write): ${JSON.stringify(explained.statementsMs)}; peak buffer ${explained.peakBufferMB} MB, spill ${explained.peakSpillMB} MB, load ${(explained.load1 as number[]).join(' / ')}`,
  );
  context.say(`Node --cpu-prof, main thread self time (${cpu.totalMs} ms profiled; DuckDB's native threads show as (idle)):`);
  context.say(table([['function', 'ms', 'share'], ...cpu.top.map((f) => [f.fn, f.ms, f.share])]));
  return { project, breakdown: breakdown.map(([phase, ms, source]) => ({ phase, ms, source })), explained, cpu };
}

/**
 * The project against its peers on the same staged day, in the same run: bare DuckDB (one COPY with the
 * same dedup) at the same memory limit and with no practical limit, Polars, and optionally the project as
 * checked out in `baseline` (e.g. the commit before a change). Each contender runs in its own child process;
 * rounds are interleaved (the order rotates each round) so load from other sessions falls on all of them,
 * and each round's times are divided by the project's time in the same round (paired ratios).
 */
async function peers(context: Context, rounds: number, baseline: string | undefined) {
  const { dir, staged } = await day(context);
  const { memory, threads, root } = context;
  await ensurePolars();
  const unlimited = `${Math.floor((totalmem() * 0.9) / 2 ** 20)}MB`;
  const legacy = (out: string, mem: string) => [dir, TENANT, DATE, out, mem, threads];
  const contenders: { name: string; run: (out: string) => Row }[] = [
    { name: `makoto-lake (${memory})`, run: (out) => step('project', legacy(out, memory)) },
    ...(baseline
      ? [{ name: `makoto-lake baseline (${memory})`, run: (out: string) => step('project', legacy(out, memory), [], baseline) }]
      : []),
    { name: `bare DuckDB (${memory})`, run: (out) => step('bare', legacy(out, memory)) },
    { name: `bare DuckDB (unlimited, ${unlimited})`, run: (out) => step('bare', legacy(out, unlimited)) },
    {
      name: `Polars ${POLARS_VERSION}`,
      run: (out) => step('polars', [out, JSON.stringify({ stagingDir: stagingDir(dir) })]),
    },
  ];
  const results: Record<string, Row[]> = Object.fromEntries(contenders.map((c) => [c.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < contenders.length; i++) {
      const contender = contenders[(round + i) % contenders.length] as (typeof contenders)[number];
      const out = join(root, `peers-${round}-${i}`);
      const r = contender.run(out);
      await cleanLake(dir);
      await rm(out, { recursive: true, force: true });
      if (r.rows !== staged.expectedRows) {
        throw new Error(`${contender.name} wrote ${r.rows} rows, expected ${staged.expectedRows}`);
      }
      results[contender.name]?.push(r);
      context.say(
        `  round ${round + 1} ${contender.name}: ${r.ms} ms, ${r.cpuS ?? '?'} CPU s, ${r.maxRssMB} MB, load ${(r.load1 as number[]).join(' / ')}`,
      );
    }
  }
  const project = results[contenders[0]?.name as string] as Row[];
  const summary = contenders.map(({ name }) => {
    const runs = results[name] as Row[];
    const ratios = runs.map((r, i) => (r.ms as number) / ((project[i] as Row).ms as number));
    const cpuRatios = runs.map((r, i) => (r.cpuS as number) / ((project[i] as Row).cpuS as number));
    return {
      name,
      medianMs: median(runs.map((r) => r.ms as number)),
      medianCpuS: median(runs.map((r) => (r.cpuS as number) ?? Number.NaN)),
      maxRssMB: Math.max(...runs.map((r) => r.maxRssMB as number)),
      timeVsProject: Number(median(ratios).toFixed(2)),
      cpuVsProject: Number(median(cpuRatios).toFixed(2)),
      load1: runs.map((r) => (r.load1 as number[]).join('/')).join(', '),
    };
  });
  context.say(
    `\nscenario peers: the same day (${context.messages} messages), ${rounds} interleaved rounds, ${threads} threads; ratios are medians of per-round ratios to makoto-lake`,
  );
  context.say(
    table([
      ['contender', 'median ms', 'median CPU s', 'peak RSS MB', 'time vs project', 'CPU vs project', 'load1 per round'],
      ...summary.map((s) => [s.name, s.medianMs, s.medianCpuS, s.maxRssMB, s.timeVsProject, s.cpuVsProject, s.load1]),
    ]),
  );
  return { rounds, memory, unlimited, summary, runs: results };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** What the cost model needs, when this run measured it (single, tenants, stores and ingest). */
function measuredFrom(report: Record<string, unknown>): Measured | undefined {
  const single = report.single as { messages: number; project: Row; staged: StagingStats } | undefined;
  const manyTenants = report.tenants as { runs: Row[] } | undefined;
  const many = manyTenants?.runs.find((r) => r.contender === 'project');
  const stores = report.stores as { results: Record<string, Row>; perMillion: number } | undefined;
  const ingest = report.ingest as { rows: Row[] } | undefined;
  if (!single || !many || !stores || !ingest) return undefined;
  const messages = single.messages;
  const perM = (r: Row | undefined) =>
    Object.fromEntries(
      Object.entries((r?.requests as Record<string, number>) ?? {}).map(([k, v]) => [k, Math.round(v * stores.perMillion)]),
    ) as Record<RequestKind, number>;
  const ingestMs = (records: number) =>
    (ingest.rows.find((r) => r.store === 's3 (s3rver)' && r.records === records)?.medianMs as number | undefined) ?? 0;
  const tenantOps = many.operations as Record<RequestKind, number>;
  const tenantCount = many.tenants as number;
  return {
    compactMsPerMillion: Math.round(((single.project.ms as number) / messages) * 1e6),
    compactPeakRssMB: single.project.maxRssMB as number,
    // same number of messages in 1 partition vs `tenants` partitions: the difference is the per-tenant overhead
    tenantOverheadMs: Math.max(
      0,
      Number(
        (((many.ms as number) - (single.project.ms as number) * ((many.rows as number) / messages)) / tenantCount).toFixed(1),
      ),
    ),
    stagingBytesPerMessage: Math.round(single.staged.bytes / messages),
    parquetBytesPerMessage: Math.round((single.project.bytesWritten as number) / messages),
    s3RequestsPerMillion: perM(stores.results['s3 (s3rver)']),
    blobRequestsPerMillion: perM(stores.results['blob (Azurite)']),
    tenantRequests: Object.fromEntries(
      REQUEST_KINDS.map((k) => [k, Number(((tenantOps[k] ?? 0) / tenantCount).toFixed(2))]),
    ) as Record<RequestKind, number>,
    ingestMs500: ingestMs(500),
    ingestMs10000: ingestMs(10_000),
  };
}
