import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  prepareSignalBase,
  runClosedBoth,
  runClosedStderr,
  runClosedStdout,
  runFullStderr,
  runStopped,
  SIGNAL_DATE,
  type SignalBase,
} from '../kit/signalScenario.js';
import { tempDir } from '../kit/tempDir.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
let base: SignalBase;

beforeAll(async () => {
  dir = await tempDir('makoto-lake-signals-');
  base = await prepareSignalBase(dir.path);
});
afterAll(() => dir?.cleanup());

const NOTHING_LEFT = { leases: [], storeTemp: [], workFolders: [] };

describe('the compact CLI under signals and a closed stdout (the real process)', () => {
  it('`compact D a,c,a | true`: the closed stdout (EPIPE) stops the output only; each tenant compacts once, exit 0', async () => {
    expect(await runClosedStdout(base)).toStrictEqual({
      code: 0,
      messages: ['makoto-lake: stdout was closed by its reader (EPIPE); output stopped, the work goes on'],
      progress: ['✓ a', '✓ c'],
      exact: ['a', 'c'],
      empty: ['b'],
      leftovers: NOTHING_LEFT,
    });
  });

  it('`compact D a,c,a 2>&1 | head -1`: stdout and stderr closed together stop the output only; each tenant compacts once, exit 0', async () => {
    expect(await runClosedBoth(base)).toStrictEqual({
      code: 0,
      messages: [],
      progress: [],
      exact: ['a', 'c'],
      empty: ['b'],
      leftovers: NOTHING_LEFT,
    });
  });

  it.each([
    ['a closed stderr (EPIPE: `2>&1 1>&3 | true`)', runClosedStderr],
    ['a full stderr (ENOSPC: `2>/dev/full`)', runFullStderr],
  ])('%s stops the progress lines only: the --json summary is whole, each tenant compacts once, exit 0', async (_, runIt) => {
    const { outcome, stdout } = await runIt(base);
    expect(outcome).toStrictEqual({
      code: 0,
      messages: [],
      progress: [],
      exact: ['a', 'c'],
      empty: ['b'],
      leftovers: NOTHING_LEFT,
    });
    const summary = JSON.parse(stdout);
    expect(summary.tenants.map((t: Record<string, unknown>) => [t.tenant_id, t.dt, t.status, t.rows_written])).toStrictEqual([
      ['a', SIGNAL_DATE, 'compacted', base.expected.a?.length],
      ['c', SIGNAL_DATE, 'compacted', base.expected.c?.length],
    ]);
  });

  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)(
    '%s while b runs: a stays compacted, b stops without writing, c never starts; nothing left behind; exit %i',
    async (signal, code) => {
      const outcome = await runStopped(base, signal);
      expect({ ...outcome, progress: outcome.progress.map((p) => p.slice(0, 14)) }).toStrictEqual({
        code,
        messages: [
          `makoto-lake: ${signal} received: stopping (no new partition starts; running ones stop and release their leases)`,
          `makoto-lake: stopped by ${signal}: 1 compacted, 2 failed or not started; leases released, work folder removed`,
        ],
        progress: ['✓ a', '✗ b failed: co', '✗ c failed: no'],
        exact: ['a'],
        empty: ['b', 'c'],
        leftovers: NOTHING_LEFT,
      });
      expect(outcome.progress[2]).toBe(`✗ c failed: not started: the run was stopped by ${signal}`);
    },
  );
});
