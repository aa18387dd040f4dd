import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CRASH_DATE,
  CRASH_POINTS,
  CRASH_TENANT,
  type CrashBase,
  type CrashOutcome,
  prepareCrashBase,
  runCrash,
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

/** What a reader sees right after the kill: the old partition until the part file is replaced, then the new one. */
const READER_AFTER_CRASH: Record<(typeof CRASH_POINTS)[number], 'old' | 'new'> = {
  locked: 'old',
  downloading: 'old',
  compacting: 'old',
  'mid-write': 'old',
  uploading: 'old',
  committing: 'new',
  cleaning: 'new',
  done: 'new',
};

describe('crash safety: the compactor SIGKILLed at each phase, then run again', () => {
  it('the base: the late staging changes the partition, and the reference run holds exactly the generated day', () => {
    expect(base.newRows.map((r) => ({ message_id: r.message_id, content: r.content }))).toStrictEqual(base.expected);
    expect(duplicateIds(base.newRows)).toStrictEqual([]);
    expect(base.oldRows.length).toBeGreaterThan(2000);
    expect(base.newRows.length).toBeGreaterThan(base.oldRows.length);
  });

  it.each(CRASH_POINTS)(
    'killed at %s: a reader sees a whole partition, the lease blocks until it expires, the re-run repairs everything',
    async (point) => {
      const outcome: CrashOutcome = await runCrash(base, point, dir.path);
      const lease = outcome.deadLease;
      expect(lease).toBeDefined();
      expect({ ...outcome, deadLease: undefined }).toStrictEqual({
        point,
        killed: true,
        readerAfterCrash: READER_AFTER_CRASH[point],
        deadLease: undefined,
        beforeExpiry: `tenant ${CRASH_TENANT} for ${CRASH_DATE} is already being compacted by run ${lease?.run_id} on ${lease?.holder} (lease until ${lease?.expires_at})`,
        recovered: {
          status: 'compacted',
          rowsExact: true,
          duplicates: [],
          filesMatchManifest: true,
          tempFiles: [],
          lockLeft: false,
          manifestCurrent: true,
        },
        // a killed process cannot clean its local work folder; it exists from 'downloading' on
        leftoverWorkEntries: point === 'locked' ? 0 : 1,
      });
      expect(survived(outcome)).toBe(true);
    },
  );
});
