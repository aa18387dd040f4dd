/** Scenario `split`: the single pass against a split into K map × B reduce tasks, each in its own process. */
import { cp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readManifest } from '../../src/lake/manifest.js';
import { table } from '../../src/ops/report.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { listAll } from '../../src/ports/store/ObjectStore.js';
import { type Context, DATE, day, type Row, stagingDir, TENANT } from '../context.js';
import { runStep } from '../runStep.js';

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
export async function splitScenario(context: Context, shape: { ranges: number; buckets: number }) {
  const { dir, staged } = await day(context);
  const { messages, memory, threads, root } = context;
  const singleRoot = join(root, 'split-single-data');
  const splitRoot = join(root, 'split-split-data');
  for (const r of [singleRoot, splitRoot]) await cp(stagingDir(dir), stagingDir(r), { recursive: true });
  try {
    const single = runStep('project', [singleRoot, TENANT, DATE, join(root, 'split-single'), memory, threads]);
    const task = (name: string, args: Row) =>
      runStep('split', [
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
    const compared = runStep('compare', [
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
