/**
 * `npm run bench -- --scenario night`: a night through the fan-out driver, locally. The plan (planRun) is
 * written as the Step Functions Map reads it; `--workers W` processes (bench/step.ts `fanout`) each run
 * `--job-concurrency C` jobs at a time, every job as one compactor invocation runs it (its own DuckDB
 * instance and table object: withCompactionDeps → runJob → recordJobResult), so W × C jobs are in flight as
 * the Map's MaxConcurrency allows; then the run summary. Prints one JSON line.
 *
 * Staging: `--tenants` tenants whose day sizes follow Zipf's law (s = `--zipf`, default 1.1; `--messages`
 * in all), or with `--zipf 0` every tenant `--tenant-messages` messages (the small-tenants night).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { randomSource } from '../../src/jobs/demo/chatDay.js';
import { planRun, readJobResults, writeRunSummary } from '../../src/jobs/fanOut.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { generateStaging, textPool } from '../../tools/generateStaging.js';
import { stepEnv } from '../runStep.js';

export interface NightOptions {
  readonly root: string;
  readonly dataDir: string | undefined;
  readonly date: string;
  readonly tenants: number;
  /** Messages in all (Zipf), or per tenant when `zipf` is 0. */
  readonly messages: number;
  readonly zipf: number;
  readonly workers: number;
  readonly jobConcurrency: number;
  readonly latencyMs: number;
  readonly threads: string;
  readonly memory: string;
  readonly say: (text: string) => void;
}

/** Day sizes of `tenants` tenants under Zipf's law with exponent `s`, `total` messages in all (each at least 1). */
export function zipfSizes(tenants: number, total: number, s: number): number[] {
  const weights = Array.from({ length: tenants }, (_, i) => 1 / (i + 1) ** s);
  const sum = weights.reduce((n, w) => n + w, 0);
  return weights.map((w) => Math.max(1, Math.round((w / sum) * total)));
}

export async function nightScenario(options: NightOptions): Promise<Record<string, unknown>> {
  const source = await nightDay(options);
  const data = join(options.root, 'night-lake');
  await rm(data, { recursive: true, force: true });
  await cp(source.dir, data, { recursive: true });
  const store = new LocalStore(data);
  const load0 = loadavg()[0] ?? 0;
  const t0 = performance.now();
  const plan = await planRun(store, { date: options.date, tenants: 'all', lateLookbackDays: 0 }, Date.now());
  const planMs = Math.round(performance.now() - t0);
  // largest first (planRun's order), dealt round-robin: each worker gets a like share of the big ones
  const shares = Array.from({ length: options.workers }, (_, w) => plan.jobs.filter((_, i) => i % options.workers === w));
  const workers = await Promise.all(
    shares.map((jobs, w) =>
      worker(join(options.root, `night-worker-${w}`), {
        root: data,
        run: plan.run,
        jobs,
        concurrency: options.jobConcurrency,
        latencyMs: options.latencyMs,
        threads: options.threads,
        memory: options.memory,
      }),
    ),
  );
  const summary = await writeRunSummary(store, plan.run, { whenComplete: true });
  const wallMs = Math.round(performance.now() - t0);
  const results = await readJobResults(store, plan.run);
  const rows = [...results.values()].reduce((n, r) => n + r.rowsWritten, 0);
  const sum = (field: string) => workers.reduce((n, w) => n + Number(w[field] ?? 0), 0);
  const requests = Object.fromEntries(
    ['LIST', 'HEAD', 'GET', 'PUT', 'DELETE'].map((k) => [
      k,
      workers.reduce((n, w) => n + Number((w.operations as Record<string, number>)[k] ?? 0), 0),
    ]),
  );
  const jobRss = workers.flatMap((w) => w.jobRssMB as number[]).sort((a, b) => a - b);
  const line = {
    scenario: 'night',
    tenants: options.tenants,
    messages: source.messages,
    sizes: options.zipf > 0 ? { zipf: options.zipf, largest: source.sizes[0], smallest: source.sizes.at(-1) } : 'uniform',
    expectedRows: source.expected,
    rows,
    exact: rows === source.expected,
    jobs: plan.jobs.length,
    failed: summary ? summary.summary.totals.failed : null,
    errors: workers.flatMap((w) => w.errors as string[]).slice(0, 5),
    workers: options.workers,
    jobConcurrency: options.jobConcurrency,
    inFlight: options.workers * options.jobConcurrency,
    latencyMs: options.latencyMs,
    wallMs,
    planMs,
    jobMs: percentiles(workers.flatMap((w) => w.jobMs as number[])),
    workerPeakRssMB: workers.map((w) => w.maxRssMB),
    jobRssMB: { p50: pct(jobRss, 0.5), max: jobRss.at(-1) ?? 0 },
    requests,
    requestsPerJob: Object.fromEntries(Object.entries(requests).map(([k, v]) => [k, Number((v / plan.jobs.length).toFixed(2))])),
    commits: sum('commits'),
    commitRetries: sum('commitRetries'),
    conflicts: sum('conflicts'),
    load1: [Number(load0.toFixed(2)), Number((loadavg()[0] ?? 0).toFixed(2))],
  };
  await rm(data, { recursive: true, force: true });
  options.say(JSON.stringify(line));
  return line;
}

/** One worker process (bench/step.ts `fanout`): its result line. */
function worker(out: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/run-ts.mjs', 'bench/step.ts', 'fanout', out, JSON.stringify(args)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: stepEnv(),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`fan-out worker failed (${code}):\n${stderr}`));
      else resolve(JSON.parse(stdout.trim().split('\n').pop() as string) as Record<string, unknown>);
    });
  });
}

/** The night's staging, generated once into --data DIR (a marker file says so). */
async function nightDay(options: NightOptions): Promise<{ dir: string; expected: number; messages: number; sizes: number[] }> {
  const name =
    options.zipf > 0
      ? `night-${options.tenants}-zipf${options.zipf}-${options.messages}`
      : `tenants-${options.tenants}x${options.messages}`;
  const dir = join(options.dataDir ?? options.root, name);
  const marker = join(dir, '..', `_bench-${name}.json`);
  const sizes =
    options.zipf > 0 ? zipfSizes(options.tenants, options.messages, options.zipf) : Array(options.tenants).fill(options.messages);
  const messages = sizes.reduce((n, s) => n + s, 0);
  if (existsSync(marker)) {
    const known = JSON.parse(await readFile(marker, 'utf8')) as { expected: number };
    options.say(`reusing ${options.tenants} tenants, ${messages} messages from ${dir}`);
    return { dir, expected: known.expected, messages, sizes };
  }
  const t0 = performance.now();
  const pool = textPool(randomSource(7));
  let expected = 0;
  for (const [i, size] of sizes.entries()) {
    const staged = await generateStaging({
      root: dir,
      tenant: `t${String(i).padStart(4, '0')}`,
      date: options.date,
      messages: size,
      seed: 1000 + i,
      // small tenants arrive in small stream batches, big ones in Lambda-sized ones
      batch: size < 10_000 ? [50, 500] : [100, 10_000],
      pool,
    });
    expected += staged.expectedRows;
  }
  await writeFile(marker, JSON.stringify({ expected }));
  options.say(`generated ${options.tenants} tenants, ${messages} messages in ${Math.round(performance.now() - t0)} ms`);
  return { dir, expected, messages, sizes };
}

function pct(sorted: readonly number[], p: number): number {
  return sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number);
}

function percentiles(values: readonly number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: pct(sorted, 0.5), p95: pct(sorted, 0.95), max: sorted.at(-1) ?? 0 };
}
