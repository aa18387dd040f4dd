/** Scenario `merge`: a published partition compacted again with 1% late staging. */
import { cp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { table } from '../../src/ops/report.js';
import { generateStaging } from '../../tools/generateStaging.js';
import { type Context, DATE, day, stagingDir, TENANT } from '../context.js';
import { runStep } from '../runStep.js';

/**
 * Re-compaction of a published partition: the first compaction of a day of `messages` messages, then the
 * day's staging expires, 1% as many messages arrive late (edits, replays and new versions of the same ids),
 * and the partition is compacted again — merged into the published rows. Works on a copy of the shared day.
 */
export async function mergeScenario(context: Context) {
  const { messages, memory, threads, root } = context;
  const data = join(root, 'merge');
  const { dir, staged: first } = await day(context);
  await cp(stagingDir(dir), stagingDir(data), { recursive: true });
  const initial = runStep('project', [data, TENANT, DATE, join(root, 'merge-1'), memory, threads]);
  await rm(stagingDir(data), { recursive: true, force: true });
  const late = await generateStaging({ root: data, tenant: TENANT, date: DATE, messages: Math.ceil(messages / 100), seed: 4242 });
  const again = runStep('project', [data, TENANT, DATE, join(root, 'merge-2'), memory, threads]);
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
