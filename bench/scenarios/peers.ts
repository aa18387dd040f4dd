/** Scenario `peers`: the project, bare DuckDB and Polars (and an earlier checkout) on the same day, interleaved. */
import { rm } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import { table } from '../../src/ops/report.js';
import { type Context, cleanLake, DATE, day, type Row, stagingDir, TENANT } from '../context.js';
import { ensurePolars, POLARS_VERSION } from '../peerPolars.js';
import { runStep } from '../runStep.js';

/**
 * The project against its peers on the same staged day, in the same run: bare DuckDB (one COPY with the
 * same dedup) at the same memory limit and with no practical limit, Polars, and optionally the project as
 * checked out in `baseline` (e.g. the commit before a change). Each contender runs in its own child process;
 * rounds are interleaved (the order rotates each round) so load from other sessions falls on all of them,
 * and each round's times are divided by the project's time in the same round (paired ratios).
 */
export async function peersScenario(context: Context, rounds: number, baseline: string | undefined) {
  const { dir, staged } = await day(context);
  const { memory, threads, root } = context;
  await ensurePolars();
  const unlimited = `${Math.floor((totalmem() * 0.9) / 2 ** 20)}MB`;
  const legacy = (out: string, mem: string) => [dir, TENANT, DATE, out, mem, threads];
  const contenders: { name: string; run: (out: string) => Row }[] = [
    { name: `makoto-lake (${memory})`, run: (out) => runStep('project', legacy(out, memory)) },
    ...(baseline
      ? [
          {
            name: `makoto-lake baseline (${memory})`,
            run: (out: string) => runStep('project', legacy(out, memory), [], baseline),
          },
        ]
      : []),
    { name: `bare DuckDB (${memory})`, run: (out) => runStep('bare', legacy(out, memory)) },
    { name: `bare DuckDB (unlimited, ${unlimited})`, run: (out) => runStep('bare', legacy(out, unlimited)) },
    {
      name: `Polars ${POLARS_VERSION}`,
      run: (out) => runStep('polars', [out, JSON.stringify({ stagingDir: stagingDir(dir) })]),
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
