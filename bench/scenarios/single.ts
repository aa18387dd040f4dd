/** Scenario `single`: one tenant-day compacted by the project and by one bare DuckDB COPY, each in its own process. */
import { join } from 'node:path';
import { table } from '../../src/ops/report.js';
import { type Context, cleanLake, DATE, day, TENANT } from '../context.js';
import { runStep } from '../runStep.js';

export async function singleScenario(context: Context) {
  const { dir, staged } = await day(context);
  const { messages, memory, threads, root } = context;
  // a partition left published in a reused --data folder (an interrupted run) would make this a re-compaction
  await cleanLake(dir);
  const bare = runStep('bare', [dir, TENANT, DATE, join(root, 'bare'), memory, threads]);
  const project = runStep('project', [dir, TENANT, DATE, join(root, 'project'), memory, threads]);
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
