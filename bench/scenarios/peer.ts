/** Scenario `peer`: the same day through a pure-JavaScript Parquet writer. */
import { join } from 'node:path';
import { table } from '../../src/ops/report.js';
import { type Context, cleanLake, DATE, day, type Row, stagingDir, TENANT } from '../context.js';
import { runStep } from '../runStep.js';

export async function peerScenario(context: Context) {
  const { dir, staged } = await day(context);
  const single = context.report.single as { project: Row } | undefined;
  const project =
    single?.project ?? runStep('project', [dir, TENANT, DATE, join(context.root, 'project'), context.memory, context.threads]);
  await cleanLake(dir);
  // A Lambda at 10 GB lets its Node heap grow to ~8 GB; the peer keeps the whole day on the heap.
  const r = runStep(
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
