/** Scenario `profile`: where the time goes, from a CPU profile and DuckDB's operator timings. */
import { join } from 'node:path';
import { table } from '../../src/ops/report.js';
import { type Context, cleanLake, DATE, day, stagingDir, TENANT } from '../context.js';
import { summariseCpuProfile } from '../cpuProfile.js';
import { runStep } from '../runStep.js';

export async function profileScenario(context: Context) {
  const { dir } = await day(context);
  const profDir = join(context.root, 'cpuprof');
  const project = runStep(
    'project',
    [dir, TENANT, DATE, join(context.root, 'project-prof'), context.memory, context.threads],
    ['--cpu-prof', `--cpu-prof-dir=${profDir}`],
  );
  await cleanLake(dir);
  const cpu = await summariseCpuProfile(profDir);
  const explained = runStep('explain', [
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
