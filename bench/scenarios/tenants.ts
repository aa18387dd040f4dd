/** Scenario `tenants`: many small tenant-days compacted in one process, against an earlier checkout when given. */
import { cp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { table } from '../../src/ops/report.js';
import { REQUEST_KINDS } from '../../tools/CountingStore.js';
import { type Context, DATE, type Row, tenantsDay } from '../context.js';
import { runStep } from '../runStep.js';

/** Options of the many-tenants scenarios (`tenants`, `night`). */
export interface TenantsOptions {
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
 * when given, alternately; then one bare DuckDB statement over the same day (the floor, printed as ratios).
 * Prints wall, per-tenant times, phases and store requests per partition by kind.
 */
export async function tenantsScenario(context: Context, options: TenantsOptions) {
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
      const r = runStep(
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
  // the floor, in the same run: one bare DuckDB statement over the whole day (bareDay in bench/step.ts); at the
  // engine's 1 GB it runs out of memory, so it gets BARE_DAY_MEMORY
  const bare = runStep('bareDay', [
    join(context.root, 'tenants-bare'),
    JSON.stringify({ root: source.dir, date: DATE, memory: BARE_DAY_MEMORY, threads: context.threads }),
  ]);
  rows.push([
    `bare DuckDB (${BARE_DAY_MEMORY})`,
    count,
    bare.files as number,
    bare.ms as number,
    Number(((bare.ms as number) / count).toFixed(1)),
    '–',
    '–',
    '–',
    bare.maxRssMB as number,
    (bare.cpuS as number | undefined) ?? '–',
    (bare.load1 as number[]).join(' / '),
  ]);
  context.say(table(rows));
  const ratios = runs.map((r) => ({
    contender: r.contender,
    round: r.round,
    wallToBare: Number(((r.ms as number) / (bare.ms as number)).toFixed(2)),
    ...(r.cpuS !== undefined && bare.cpuS !== undefined
      ? { cpuToBare: Number(((r.cpuS as number) / (bare.cpuS as number)).toFixed(2)) }
      : {}),
  }));
  context.say(
    `against one bare DuckDB statement over the whole day (read → latest version per tenant and message → Parquet per tenant, ${bare.rows} rows; no validation, counts, deletes or commits): ${ratios.map((r) => `${r.contender} round ${r.round} ${r.wallToBare}× wall${r.cpuToBare === undefined ? '' : `, ${r.cpuToBare}× CPU`}`).join('; ')}`,
  );
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
  return { count, perTenant, latencyMs: options.latencyMs, commitBatch: options.commitBatch ?? null, runs, bare, ratios };
}

/** DuckDB's memory limit for the bare whole-day statement (at 1 GB it ran out of memory, 2026-12-07). */
const BARE_DAY_MEMORY = '4GB';

/** Store requests per partition, by kind, from a step's operation counts. */
function perPartition(r: Row, partitions: number): Record<string, number> {
  const ops = (r.operations ?? {}) as Record<string, number>;
  return Object.fromEntries(REQUEST_KINDS.map((k) => [k, Number(((ops[k] ?? 0) / partitions).toFixed(2))]));
}
