import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyticsPrefix } from '../../src/staging/layout.js';
import { filesUnder, runCli, stageDay } from '../kit/cliRun.js';
import { readPartitionFolder } from '../kit/readParquet.js';
import { tempDir } from '../kit/tempDir.js';

const DATE = '2025-08-11';
let dir: Awaited<ReturnType<typeof tempDir>>;
let expected: Record<string, string[]>;
let n = 0;

beforeAll(async () => {
  dir = await tempDir('makoto-lake-signals-');
  // b is large so that it is still running when the signal arrives
  expected = await stageDay(join(dir.path, 'base'), DATE, { a: 300, b: 30_000, c: 300 });
});
afterAll(() => dir?.cleanup());

/** A fresh copy of the staged store and an empty TEMP_DIR. */
async function fresh() {
  const { cp, mkdir } = await import('node:fs/promises');
  const root = join(dir.path, `data-${++n}`);
  const temp = join(dir.path, `tmp-${n}`);
  await cp(join(dir.path, 'base'), root, { recursive: true });
  await mkdir(temp);
  return { root, temp, env: { DATA_DIR: root, TEMP_DIR: temp, COMPACT_CONCURRENCY: '1', DUCKDB_THREADS: '1' } };
}

const ids = async (root: string, tenant: string) =>
  (await readPartitionFolder(join(root, analyticsPrefix(tenant, DATE))).catch(() => [])).map((r) => r.message_id).sort();

/** What a run must never leave: leases, temporary files in the store, work folders in TEMP_DIR. */
const leftovers = async (root: string, temp: string) => ({
  leases: (await filesUnder(root)).filter((f) => f.startsWith('locks/')),
  storeTemp: (await filesUnder(root)).filter((f) =>
    f.startsWith('.tmp/') && !f.startsWith('.tmp/locks/') ? true : f.includes('/.tmp-'),
  ),
  workFolders: await readdir(temp),
});

describe('the compact CLI under signals and a closed stdout (the real process)', () => {
  it('`compact D a,c,a | true`: stdout closed (EPIPE) stops the output only; every tenant compacts, exit 0, stderr says so', async () => {
    const { root, temp, env } = await fresh();
    const run = await runCli(`$CLI compact ${DATE} a,c,a | true; echo "exit=\${PIPESTATUS[0]}" >&2`, env);
    expect(run.stderr).toContain('makoto-lake: stdout was closed by its reader (EPIPE); output stopped, the work goes on');
    expect(run.stderr.trim().split('\n').at(-1)).toBe('exit=0');
    expect(run.stderr.match(/^✓ \w /gm)).toStrictEqual(['✓ a ', '✓ c ']);
    expect(await ids(root, 'a')).toStrictEqual(expected.a);
    expect(await ids(root, 'c')).toStrictEqual(expected.c);
    expect(await leftovers(root, temp)).toStrictEqual({ leases: [], storeTemp: [], workFolders: [] });
  });

  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)(
    '%s while b runs: a stays compacted, b stops before writing, c never starts; no lease, no temp folder; exit %i',
    async (signal, code) => {
      const { root, temp, env } = await fresh();
      let sent = false;
      const run = await runCli(`exec $CLI compact ${DATE} a,b,c`, env, (text, child) => {
        if (!sent && /^✓ a /m.test(text)) {
          sent = true;
          // b has started (concurrency 1); give it a moment to be inside its work
          setTimeout(() => child.kill(signal), 300);
        }
      });
      expect([run.code, run.signal]).toStrictEqual([code, null]);
      const lines = run.stderr.trim().split('\n');
      expect(lines.filter((l) => l.startsWith('makoto-lake:'))).toStrictEqual([
        `makoto-lake: ${signal} received: stopping (no new partition starts; running ones stop and release their leases)`,
        `makoto-lake: stopped by ${signal}: 1 compacted, 2 failed or not started; leases released, work folder removed`,
      ]);
      expect(lines.filter((l) => /^[✓✗]/.test(l)).map((l) => l.replace(/ in \d+ ms$/, '').slice(0, 60))).toStrictEqual([
        expect.stringMatching(/^✓ a 2025-08-11 read/),
        expect.stringMatching(/^✗ b 2025-08-11 failed: /),
        `✗ c 2025-08-11 failed: not started: the run was stopped by ${signal}`.slice(0, 60),
      ]);
      expect(await ids(root, 'a')).toStrictEqual(expected.a);
      expect(await ids(root, 'b')).toStrictEqual([]);
      expect(await ids(root, 'c')).toStrictEqual([]);
      expect(await leftovers(root, temp)).toStrictEqual({ leases: [], storeTemp: [], workFolders: [] });
    },
  );
});
