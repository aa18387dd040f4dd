/**
 * `npm run bench [-- --messages N] [--scenario single,tenants] [--json]`
 * Prints speed and memory as ratios against a bare DuckDB statement run in the same process tree.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { table } from '../src/app/report.js';
import { generateStaging } from './generateStaging.js';

const DATE = '2025-08-11';

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      messages: { type: 'string', default: '1000000' },
      scenario: { type: 'string', default: 'single' },
      memory: { type: 'string', default: '1GB' },
      threads: { type: 'string', default: '2' },
      json: { type: 'boolean', default: false },
    },
  });
  const messages = Number(values.messages);
  const scenarios = (values.scenario ?? 'single').split(',');
  const root = await mkdtemp(join(tmpdir(), 'makoto-lake-bench-'));
  const report: Record<string, unknown> = {};
  try {
    if (scenarios.includes('single'))
      report.single = await single(root, messages, values.memory as string, values.threads as string);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  return 0;
}

function step(mode: string, args: string[]): Record<string, number> {
  const run = spawnSync(process.execPath, ['bin/run-ts.mjs', 'bench/step.ts', mode, ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  if (run.status !== 0) throw new Error(`bench step ${mode} failed:\n${run.stderr}`);
  return JSON.parse(run.stdout.trim().split('\n').pop() as string);
}

async function single(root: string, messages: number, memory: string, threads: string) {
  const data = join(root, 'data');
  const t0 = performance.now();
  const staged = await generateStaging({ root: data, tenant: 'bench', date: DATE, messages });
  console.error(
    `generated ${staged.records} staging records in ${staged.objects} objects (${(staged.bytes / 1e6).toFixed(1)} MB gzip) in ${Math.round(performance.now() - t0)} ms`,
  );
  const bare = step('bare', [data, 'bench', DATE, join(root, 'bare'), memory, threads]);
  const project = step('project', [data, 'bench', DATE, join(root, 'project'), memory, threads]);
  if (project.rows !== staged.expectedRows || bare.rows !== staged.expectedRows) {
    throw new Error(`row counts differ: expected ${staged.expectedRows}, project ${project.rows}, bare ${bare.rows}`);
  }
  const rows = [
    ['run', 'messages', 'ms', 'msg/s', 'MB/s in', 'peak RSS MB', 'out MB'],
    ...[
      ['bare DuckDB COPY', bare],
      ['makoto-lake compact', project],
    ].map(([name, r]) => {
      const m = r as Record<string, number>;
      return [
        name as string,
        messages,
        m.ms as number,
        Math.round((messages / (m.ms as number)) * 1000),
        Number((staged.bytes / 1e6 / ((m.ms as number) / 1000)).toFixed(1)),
        m.maxRssMB as number,
        Number(((m.bytesWritten as number) / 1e6).toFixed(1)),
      ];
    }),
  ];
  console.log(`\nscenario single: one tenant-day, ${messages} messages, DuckDB ${memory} / ${threads} threads`);
  console.log(table(rows));
  const ratio = (project.ms as number) / (bare.ms as number);
  console.log(
    `ratio project/bare: time ${ratio.toFixed(2)}, peak RSS ${((project.maxRssMB as number) / (bare.maxRssMB as number)).toFixed(2)}`,
  );
  console.log(`project phases (ms): ${JSON.stringify(project.timings)}`);
  return { staged, bare, project, ratio };
}
