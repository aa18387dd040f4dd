/**
 * `npm run bench -- [--scenario single,tenants,stores,ingest,peer,profile,merge,peers,split,table,export,night,intraday,erase|all]
 *                   [--messages N] [--memory 1GB] [--threads 2] [--data DIR] [--rounds N] [--baseline DIR] [--ranges K]
 *                   [--buckets B] [--latency-ms N] [--commit-batch N] [--json] [--out FILE]`
 *
 * A router: each scenario is a module of bench/scenarios/; what they share is in bench/context.ts, bench/runStep.ts
 * and bench/localServers.ts. Every measured compaction runs in a child process of its own (bench/step.ts) so its
 * peak RSS is its own.
 * Each number is printed with the machine's load average when it was taken (the box may be shared).
 * Tables go to stdout (stderr with --json, which prints the whole report as JSON on stdout).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type Context, DATE, load } from './context.js';
import { costTables, measuredFrom } from './costModel.js';
import { eraseScenario } from './scenarios/erase.js';
import { exportScenario } from './scenarios/export.js';
import { ingestScenario } from './scenarios/ingest.js';
import { intradayScenario } from './scenarios/intraday.js';
import { mergeScenario } from './scenarios/merge.js';
import { nightScenario } from './scenarios/night.js';
import { peerScenario } from './scenarios/peer.js';
import { peersScenario } from './scenarios/peers.js';
import { profileScenario } from './scenarios/profile.js';
import { singleScenario } from './scenarios/single.js';
import { splitScenario } from './scenarios/split.js';
import { storesScenario } from './scenarios/stores.js';
import { tableScenario } from './scenarios/table.js';
import { tenantsScenario } from './scenarios/tenants.js';

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
  'erase',
] as const;
type Scenario = (typeof SCENARIOS)[number];

const USAGE = `usage: npm run bench -- [--scenario single|tenants|stores|ingest|peer|profile|merge|peers|split|table|export|night|intraday|erase|all[,...]]
  [--messages N] [--memory 1GB] [--threads 2] [--data DIR] [--tenants N] [--tenant-messages N]
  [--concurrency N] [--rounds N] [--baseline DIR] [--ranges K] [--buckets B] [--latency-ms N]
  [--commit-batch N] [--zipf S] [--workers W] [--job-concurrency C] [--new-messages N] [--json] [--out FILE]
  tenants: --tenants × --tenant-messages in one process; --latency-ms adds a delay to every store request,
  --commit-batch caps partitions per table version, --baseline DIR runs an earlier checkout alongside; then
  one bare DuckDB statement over the same day (4 GB), printed as the ratio of each run to it.
  night: Zipf (--zipf, --messages in all; 0 = --tenant-messages each) through the fan-out driver: W worker
  processes × C jobs, each job as one invocation. intraday: the tenants day compacted, then --new-messages
  per tenant folded in by one intraday run.
  split: the single pass and a split into K map × B reduce tasks (default 4 × 4), each task in its own
  process, on copies of the same day; compares the Parquet rows and the manifest counts.
  peers: the project, bare DuckDB (same and unlimited memory) and Polars on the same day, interleaved
  rounds; --baseline DIR adds the project as checked out in DIR (e.g. an earlier commit) as a contender.
  erase: one sender erased across --days (365) days of --day-messages (100000) messages of one tenant, with
  --message-ids sortable|uuid; against a bare DuckDB rewrite of the same parts (bench/scenarios/erase.ts).`;

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
      days: { type: 'string', default: '365' },
      'day-messages': { type: 'string', default: '100000' },
      'message-ids': { type: 'string', default: 'sortable' },
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
    },
  });
}

type Values = ReturnType<typeof parseBenchArgs>['values'];

/** Each scenario with the options it takes from the command line; its report goes under its name. */
const RUN: Record<Scenario, (context: Context, values: Values) => Promise<unknown>> = {
  single: (context) => singleScenario(context),
  tenants: (context, values) =>
    tenantsScenario(context, {
      count: Number(values.tenants),
      perTenant: Number(values['tenant-messages']),
      concurrency: values.concurrency as string,
      latencyMs: Number(values['latency-ms']),
      commitBatch: values['commit-batch'] === undefined ? undefined : Number(values['commit-batch']),
      baseline: values.baseline,
      rounds: values.rounds === undefined ? 1 : Number(values.rounds),
    }),
  stores: (context) => storesScenario(context),
  ingest: (context) => ingestScenario(context),
  peer: (context) => peerScenario(context),
  profile: (context) => profileScenario(context),
  merge: (context) => mergeScenario(context),
  peers: (context, values) => peersScenario(context, Number(values.rounds ?? 3), values.baseline),
  split: (context, values) => splitScenario(context, { ranges: Number(values.ranges), buckets: Number(values.buckets) }),
  table: (context, values) => tableScenario(context, Number(values.tenants)),
  export: (context) => exportScenario(context.root, context.messages, context.say),
  night: (context, values) =>
    nightScenario({
      root: context.root,
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
      say: context.say,
    }),
  intraday: (context, values) =>
    intradayScenario(context, {
      count: Number(values.tenants),
      perTenant: Number(values['tenant-messages']),
      concurrency: values.concurrency as string,
      latencyMs: Number(values['latency-ms']),
      newMessages: Number(values['new-messages']),
    }),
  erase: (context, values) =>
    eraseScenario(context, {
      days: Number(values.days),
      perDay: Number(values['day-messages']),
      messageIds: values['message-ids'] === 'uuid' ? 'uuid' : 'sortable',
    }),
};

async function runBench(values: Values, argv: string[]): Promise<number> {
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
    for (const scenario of scenarios) context.report[scenario] = await RUN[scenario](context, values);
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
