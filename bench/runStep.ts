/** One measured step of the bench: bench/step.ts in a child process of its own, so its peak RSS is its own. */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Row } from './context.js';

export function runStep(mode: string, args: string[], nodeFlags: string[] = [], cwd = process.cwd()): Row {
  const before = loadavg()[0];
  // GNU time, when the box has it, measures every contender the same way from outside: CPU seconds
  // (user + system, all threads) and peak RSS of the child process.
  const timeFile = join(tmpdir(), `makoto-lake-bench-time-${process.pid}`);
  const command = [process.execPath, ...nodeFlags, 'bin/run-ts.mjs', 'bench/step.ts', mode, ...args];
  const timed = existsSync(GNU_TIME) ? [GNU_TIME, '-f', '%U %S %M', '-o', timeFile, ...command] : command;
  const run = spawnSync(timed[0] as string, timed.slice(1), { encoding: 'utf8', maxBuffer: 1 << 26, cwd, env: stepEnv() });
  if (run.status !== 0) throw new Error(`bench step ${mode} failed:\n${run.stderr}`);
  const result = JSON.parse(run.stdout.trim().split('\n').pop() as string) as Row;
  let outside: Row = {};
  if (timed !== command) {
    const [user, system, maxKB] = readFileSync(timeFile, 'utf8').trim().split('\n').pop()?.split(' ').map(Number) ?? [];
    outside = { cpuS: Number(((user ?? 0) + (system ?? 0)).toFixed(2)), maxRssMB: Math.round((maxKB ?? 0) / 1024) };
  }
  return { ...result, ...outside, load1: [Number(before?.toFixed(2)), Number(loadavg()[0]?.toFixed(2))] };
}

const GNU_TIME = '/usr/bin/time';

/**
 * A bench child's environment: the thread pool as deployed (template.yaml, the CLI's entry), which on Node 20 an
 * ES module entry such as bin/run-ts.mjs cannot size itself.
 */
export function stepEnv(): NodeJS.ProcessEnv {
  return { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '8' };
}
