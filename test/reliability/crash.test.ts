import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CRASH_DATE,
  CRASH_POINTS,
  CRASH_TENANT,
  type CrashBase,
  type CrashOutcome,
  prepareCrashBase,
  runCrash,
  runForeignHostCrash,
  survived,
} from '../kit/crashScenario.js';
import { duplicateIds } from '../kit/readParquet.js';
import { tempDir } from '../kit/tempDir.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
let base: CrashBase;

beforeAll(async () => {
  dir = await tempDir('makoto-lake-crash-');
  base = await prepareCrashBase(dir.path);
});
afterAll(() => dir.cleanup());

/**
 * What a reader globbing the folder sees right after the kill. The partition has several parts: from the first
 * new part uploaded until the stale ones are deleted the folder holds both (readers that follow the manifest's
 * `outputs` never see a mix); the nightly run repairs it.
 */
const READER_AFTER_CRASH: Record<(typeof CRASH_POINTS)[number], 'old' | 'new' | 'other'> = {
  locked: 'old',
  downloading: 'old',
  compacting: 'old',
  'mid-write': 'old',
  verifying: 'old',
  uploading: 'old',
  'mid-upload': 'other',
  committing: 'other',
  cleaning: 'other',
  done: 'new',
};

describe('crash safety: the compactor SIGKILLed at each point, then the nightly run (compact NEXT_DAY T --late)', () => {
  it('the base: several parts per partition, the late staging changes it, the reference run holds exactly the generated day', () => {
    expect(base.newRows.map((r) => ({ message_id: r.message_id, content: r.content }))).toStrictEqual(base.expected);
    expect(duplicateIds(base.newRows)).toStrictEqual([]);
    expect(base.oldRows.length).toBeGreaterThan(1000);
    expect(base.newRows.length).toBeGreaterThan(base.oldRows.length);
    expect(base.parts).toBeGreaterThanOrEqual(3);
  });

  it.each(CRASH_POINTS)(
    'killed at %s: the nightly run takes the dead lease over at once and leaves exactly the expected rows',
    async (point) => {
      const outcome: CrashOutcome = await runCrash(base, point, dir.path);
      expect(outcome).toStrictEqual({
        point,
        killed: true,
        readerAfterCrash: READER_AFTER_CRASH[point],
        leaseLeft: true,
        nightly: { status: point === 'done' ? 'not planned' : 'compacted' },
        recovered: {
          rowsExact: true,
          duplicates: [],
          filesMatchManifest: true,
          tempFiles: [],
          lockLeft: false,
          manifestCurrent: true,
        },
        leftoverWorkEntries: point === 'locked' ? 0 : 1,
      });
      expect(survived(outcome)).toBe(true);
    },
  );

  it('a run on another host killed holding the lease: the nightly run is locked out until the lease lapses, then takes it over', async () => {
    const outcome = await runForeignHostCrash(base, dir.path);
    expect(outcome).toStrictEqual({
      lease: outcome.lease,
      beforeLapse: {
        status: 'locked',
        error: `tenant ${CRASH_TENANT} for ${CRASH_DATE} is already being compacted by run ${outcome.lease.run_id} on other-host:${outcome.lease.pid} (lease until ${outcome.lease.expires_at})`,
      },
      afterLapse: {
        status: 'compacted',
        rowsExact: true,
        duplicates: [],
        filesMatchManifest: true,
        tempFiles: [],
        lockLeft: false,
        manifestCurrent: true,
      },
    });
  });
});
