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

type Point = (typeof CRASH_POINTS)[number];

/**
 * What a reader of the table (the files of its current version, as Athena or Synapse with FORMAT DELTA read
 * them) sees right after the kill: exactly the old partition until the table commit is written, exactly the
 * new one from then on — never a mix, although the partition has several parts and the folder holds old and
 * new files side by side from the first upload on.
 */
const READER_AFTER_CRASH: Record<Point, 'old' | 'new' | 'other'> = {
  locked: 'old',
  downloading: 'old',
  compacting: 'old',
  'mid-write': 'old',
  verifying: 'old',
  uploading: 'old',
  'mid-upload': 'old',
  committing: 'old',
  'mid-commit': 'old',
  cleaning: 'new',
  done: 'new',
};

/**
 * Whether the folder holds files the current version does not name right after the kill: the dead run's
 * uploads (mid-upload, committing, mid-commit), or the old files its commit replaced (cleaning, done). Nobody
 * reads them; the vacuum removes them once older than its retention.
 */
const STRAY_FILES_AFTER_CRASH: Record<Point, boolean> = {
  locked: false,
  downloading: false,
  compacting: false,
  'mid-write': false,
  verifying: false,
  uploading: false,
  'mid-upload': true,
  committing: true,
  'mid-commit': true,
  cleaning: true,
  done: true,
};

/** Once the commit is written the partition is published: the nightly run finds nothing to do for the day. */
const COMMITTED: ReadonlySet<Point> = new Set(['cleaning', 'done']);

const RECOVERED = {
  rowsExact: true,
  duplicates: [],
  versionMatchesManifest: true,
  previousVersionExact: true,
  tempFiles: [],
  lockLeft: false,
  manifestCurrent: true,
  vacuumedToVersion: true,
};

describe('crash safety: the compactor SIGKILLed at each point, then the nightly run (compact NEXT_DAY T --late)', () => {
  it('the base: several parts per partition, the late staging changes it, the reference run holds exactly the generated day', () => {
    expect(base.newRows.map((r) => ({ message_id: r.message_id, content: r.content }))).toStrictEqual(base.expected);
    expect(duplicateIds(base.newRows)).toStrictEqual([]);
    expect(base.oldRows.length).toBeGreaterThan(1000);
    expect(base.newRows.length).toBeGreaterThan(base.oldRows.length);
    expect(base.parts).toBeGreaterThanOrEqual(3);
    expect(base.version).toBe(0);
  });

  it.each(CRASH_POINTS)(
    'killed at %s: a reader sees exactly the old or the new partition; the nightly run takes the dead lease over at once and leaves exactly the expected rows',
    async (point) => {
      const outcome: CrashOutcome = await runCrash(base, point, dir.path);
      expect(outcome).toStrictEqual({
        point,
        killed: true,
        readerAfterCrash: READER_AFTER_CRASH[point],
        strayFilesAfterCrash: STRAY_FILES_AFTER_CRASH[point],
        leaseLeft: true,
        nightly: { status: COMMITTED.has(point) ? 'not planned' : 'compacted' },
        recovered: RECOVERED,
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
      afterLapse: { status: 'compacted', ...RECOVERED },
    });
  });
});
