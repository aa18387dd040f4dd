import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import { UsageError } from '../../src/core/errors.js';
import type { PartitionResult } from '../../src/engine/compactPartition.js';
import type { CompactionJob } from '../../src/jobs/fanOut.js';
import { isSplitTaskPayload, parseSplitTaskPayload, runSplitTask, splitTaskWire, stageTasks } from '../../src/jobs/splitTasks.js';
import { withCompactionDeps } from '../../src/jobs/workspace.js';
import { readManifest } from '../../src/lake/manifest.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { listAll } from '../../src/ports/store/ObjectStore.js';
import { stageSplitDay } from '../kit/splitDay.js';
import { tempDir } from '../kit/tempDir.js';

const run = { runId: '20250811T170000000Z-1a2b3c4d', date: '2025-08-11' };
const wireRun = { run_id: run.runId, target_date: run.date };
const job: CompactionJob = { tenant: 'acme', date: '2025-08-11', reason: 'late', stagingBytes: 1000 };
const ref = { tenant: 'acme', date: '2025-08-11', splitId: 's-1', ranges: 2, buckets: 3 };

describe('split task payloads', () => {
  it('tells a split task from a job or a manual payload', () => {
    expect([
      isSplitTaskPayload({ split_task: {}, run: {} }),
      isSplitTaskPayload({ job: {}, run: {} }),
      isSplitTaskPayload({ target_date: '2025-08-11' }),
      isSplitTaskPayload(null),
    ]).toStrictEqual([true, false, false, false]);
  });

  it('parses each stage’s tasks as the orchestrators carry them, and writes them back the same', () => {
    const tasks = [
      ...stageTasks('map', job, ref, run),
      ...stageTasks('reduce', job, ref, run),
      ...stageTasks('commit', job, ref, run),
    ];
    const wire = tasks.map(splitTaskWire);
    expect(wire).toStrictEqual([
      { split_task: { action: 'map', job, ref, range: 0 }, run: wireRun },
      { split_task: { action: 'map', job, ref, range: 1 }, run: wireRun },
      { split_task: { action: 'reduce', job, ref, bucket: 0 }, run: wireRun },
      { split_task: { action: 'reduce', job, ref, bucket: 1 }, run: wireRun },
      { split_task: { action: 'reduce', job, ref, bucket: 2 }, run: wireRun },
      { split_task: { action: 'commit', job, ref }, run: wireRun },
    ]);
    expect(wire.map((w) => parseSplitTaskPayload(JSON.parse(JSON.stringify(w))))).toStrictEqual(tasks);
    // a window of 2: the first two tasks of a stage
    expect(stageTasks('reduce', job, ref, run, 2).map((t) => splitTaskWire(t).split_task)).toStrictEqual([
      { action: 'reduce', job, ref, bucket: 0 },
      { action: 'reduce', job, ref, bucket: 1 },
    ]);
  });

  it('starts a job the plan split, with its shape', () => {
    const split = { ...job, split: { ranges: 4, buckets: 4 } };
    const payload = { split_task: { action: 'start', job: split }, run: wireRun };
    expect(parseSplitTaskPayload(payload)).toStrictEqual({
      task: { action: 'start', job: split, shape: { ranges: 4, buckets: 4 } },
      run,
    });
    expect(splitTaskWire(parseSplitTaskPayload(payload))).toStrictEqual(payload);
  });

  it('takes an abandon’s reason, or the Step Functions Catch output with a Lambda error as its Cause', () => {
    const cause = JSON.stringify({ errorType: 'TransientStoreError', errorMessage: 'the store refused', trace: ['at x'] });
    const parse = (extra: object) =>
      parseSplitTaskPayload({ split_task: { action: 'abandon', job, ref, ...extra }, run: wireRun }).task;
    expect([
      parse({ reason: 'range 1 moved to the poison queue' }),
      parse({ failure: { Error: 'TransientStoreError', Cause: cause } }),
      parse({ failure: { Error: 'States.Timeout', Cause: 'Task timed out' } }),
    ]).toStrictEqual([
      { action: 'abandon', job, ref, reason: 'range 1 moved to the poison queue' },
      { action: 'abandon', job, ref, reason: 'TransientStoreError: the store refused' },
      { action: 'abandon', job, ref, reason: 'States.Timeout: Task timed out' },
    ]);
  });

  it('refuses a task that does not fit its split, naming the field', () => {
    const problem = (splitTask: object, runRef: object = wireRun) => {
      try {
        parseSplitTaskPayload({ split_task: splitTask, run: runRef });
        return 'parsed';
      } catch (error) {
        return error instanceof UsageError ? error.message : `unexpected ${error}`;
      }
    };
    expect([
      problem({ action: 'split', job, ref }),
      problem({ action: 'map', job, ref, range: 2 }),
      problem({ action: 'reduce', job, ref, bucket: -1 }),
      problem({ action: 'map', job, ref, range: 0, bucket: 1 }),
      problem({ action: 'commit', job, ref: { ...ref, tenant: 'other' } }),
      problem({ action: 'commit', job, ref: { ...ref, ranges: 0 } }),
      problem({ action: 'commit', job, ref: { ...ref, splitId: '../x' } }),
      problem({ action: 'start', job }),
      problem({ action: 'abandon', job, ref }),
      problem({ action: 'commit', job, ref }, { run_id: 'a/b', target_date: '2025-08-11' }),
    ]).toStrictEqual([
      'split_task.action must be one of start, map, reduce, commit, abandon, got "split"',
      'split_task.range must be a whole number from 0 to 1, got 2',
      'split_task.bucket must be a whole number from 0 to 2, got -1',
      'split_task (map): unknown field(s) bucket',
      'split_task.ref is for "other" "2025-08-11", the job for acme 2025-08-11',
      'split_task.ref.ranges must be a whole number from 1, got 0',
      'split_task.ref.splitId: invalid split id "../x"',
      'split_task (start): job acme 2025-08-11 has no split shape',
      'split_task (abandon) needs a "reason" string or a "failure" {Error, Cause}',
      'run_id: invalid run id "a/b"',
    ]);
  });
});

describe('running split tasks', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    dir = await tempDir();
  });
  afterAll(async () => dir?.cleanup());

  it('a commit or an abandon after the commit went through returns the committed result from the manifest, undoing nothing', async () => {
    const store = new LocalStore(`${dir.path}/lake`);
    await stageSplitDay([store], 'acme', '2025-08-11');
    const config = loadConfig({ DATA_DIR: store.root, TEMP_DIR: dir.path, DUCKDB_THREADS: '1' });
    const split: CompactionJob = { tenant: 'acme', date: '2025-08-11', stagingBytes: 1000, split: { ranges: 2, buckets: 2 } };
    const { committed, again, abandoned } = await withCompactionDeps(config, store, Date.now, async (deps) => {
      const started = await runSplitTask(deps, { action: 'start', job: split, shape: { ranges: 2, buckets: 2 } });
      if (!('ref' in started)) throw new Error('expected a split');
      const { ref: splitRef } = started;
      for (const range of [0, 1]) await runSplitTask(deps, { action: 'map', job: split, ref: splitRef, range });
      for (const bucket of [0, 1]) await runSplitTask(deps, { action: 'reduce', job: split, ref: splitRef, bucket });
      const result = async (task: Promise<unknown>) => ((await task) as { result: PartitionResult }).result;
      return {
        committed: await result(runSplitTask(deps, { action: 'commit', job: split, ref: splitRef })),
        // the commit's attempt died after it committed: the retry, or the abandon that follows its failures
        again: await result(runSplitTask(deps, { action: 'commit', job: split, ref: splitRef })),
        abandoned: await result(runSplitTask(deps, { action: 'abandon', job: split, ref: splitRef, reason: 'timed out' })),
      };
    });
    const { durationMs: _d, timingsMs: _t, ...counts } = committed;
    expect([committed.status, committed.rowsWritten, committed.duplicatesRemoved, committed.versionsSuperseded]).toStrictEqual([
      'compacted',
      15,
      7,
      8,
    ]);
    for (const later of [again, abandoned]) {
      const { durationMs: _ld, timingsMs, ...laterCounts } = later;
      expect([laterCounts, timingsMs]).toStrictEqual([counts, {}]);
    }
    expect((await readManifest(store, 'acme', '2025-08-11'))?.run_id).toBe(committed.runId);
    expect([await listAll(store, 'locks/'), await listAll(store, 'compaction-work/')]).toStrictEqual([[], []]);
  });
});
