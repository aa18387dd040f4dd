/**
 * What every scenario shares: the benchmark day and tenant, the run's context (root folder, options, report,
 * the servers once started), the load average printed next to every number, and the staged days scenarios
 * generate once (or reuse from --data DIR).
 */
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { stagingPrefix } from '../src/core/staging/layout.js';
import { randomSource } from '../src/jobs/demo/chatDay.js';
import { generateStaging, type StagingStats, textPool } from '../tools/generateStaging.js';
import type { Servers } from './localServers.js';

export const DATE = '2025-08-11';
export const TENANT = 'bench';
export type Row = Record<string, unknown>;

export interface Context {
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

/** `load 1.02 0.98 0.75` – the 1/5/15-minute load averages, next to every number. */
export function load(): string {
  return `load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`;
}

/** The one tenant-day of `messages` messages every scenario shares; generated once, or reused from --data. */
export async function day(context: Context): Promise<{ dir: string; staged: StagingStats }> {
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

export const stagingDir = (dataRoot: string, tenant = TENANT) => join(dataRoot, stagingPrefix(tenant, DATE));

/** Compactions through the local store write their lake next to the shared staging; every run starts without it. */
export async function cleanLake(dataRoot: string): Promise<void> {
  for (const folder of ['analytics', 'manifests', 'quarantine', 'locks', 'tombstones']) {
    await rm(join(dataRoot, folder), { recursive: true, force: true });
  }
}

/** The many-tenants day: generated once into --data DIR (a marker file says so) or the run's own folder. */
export async function tenantsDay(context: Context, count: number, perTenant: number): Promise<{ dir: string; expected: number }> {
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
