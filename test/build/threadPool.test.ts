/**
 * The CLI's entry (bin/makoto-lake.cjs) sizes libuv's thread pool before anything asynchronous runs: each
 * running DuckDB statement holds a pool thread, and at COMPACT_CONCURRENCY 4 the default four left the
 * file-system calls waiting (docs/PERFORMANCE.md 8e). The probe (test/kit/threadPoolProbe.cjs) holds six pool
 * threads in the real CLI process as it is about to exit and checks whether a seventh call still runs.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

function probe(env: Record<string, string>, entry = 'bin/makoto-lake.cjs') {
  const { UV_THREADPOOL_SIZE: _inherited, ...inherited } = process.env;
  const run = spawnSync(process.execPath, ['--require', './test/kit/threadPoolProbe.cjs', entry, '--help'], {
    cwd: REPO,
    env: { ...inherited, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: run.status, last: run.stdout.trim().split('\n').at(-1), usage: run.stdout.startsWith('usage:') };
}

describe('the CLI’s thread pool', () => {
  it('has more than six threads unless UV_THREADPOOL_SIZE says otherwise, which it keeps', () => {
    expect(probe({})).toStrictEqual({ status: 0, last: 'thread pool above 6: true', usage: true });
    expect(probe({ UV_THREADPOOL_SIZE: '4' })).toStrictEqual({ status: 0, last: 'thread pool above 6: false', usage: true });
  });

  it('the entry before it (bin/makoto-lake.mjs, which a stale npx cache still runs) starts the same CLI', () => {
    // its pool: the default on Node 20, which reads an ES module entry through the pool; 8 on Node 22, which does not
    expect(probe({}, 'bin/makoto-lake.mjs')).toMatchObject({ status: 0, usage: true });
  });
});
