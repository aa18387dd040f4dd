import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyResult } from '../../src/engine/compactPartition.js';
import { type CompactionJob, recordJobResult } from '../../src/jobs/fanOut.js';
import {
  decideAbandon,
  markAbandoned,
  nextInWindow,
  reportTaskDone,
  splitEnd,
  splitStage,
  stageStartedBy,
} from '../../src/jobs/splitStages.js';
import type { SplitTask } from '../../src/jobs/splitTasks.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { listAll } from '../../src/ports/store/ObjectStore.js';
import { tempDir } from '../kit/tempDir.js';

const run = { runId: '20250811T170000000Z-1a2b3c4d', date: '2025-08-11' };
const job: CompactionJob = { tenant: 'acme', date: '2025-08-11', stagingBytes: 1000 };
const ref = { tenant: 'acme', date: '2025-08-11', splitId: 's1', ranges: 4, buckets: 3 };
const NOW = Date.parse('2025-08-11T17:05:00Z');
const map = (range: number): SplitTask & { action: 'map' } => ({ action: 'map', job, ref, range });
const reduce = (bucket: number): SplitTask & { action: 'reduce' } => ({ action: 'reduce', job, ref, bucket });
const prefix = `runs/2025-08-11/${run.runId}/splits/tenant_id=acme/dt=2025-08-11/s1/`;

let dir: Awaited<ReturnType<typeof tempDir>>;
let store: LocalStore;
beforeAll(async () => {
  dir = await tempDir();
});
afterAll(async () => dir?.cleanup());

describe('split stages through the store', () => {
  it('of K map reporters finishing at once exactly one starts the reduce stage, then exactly one of B the commit', async () => {
    store = new LocalStore(`${dir.path}/race`);
    expect(await reportTaskDone(store, run, map(2), NOW)).toBe(undefined);
    // the other three finish together: each sees all four reports, one creates the marker
    const last = await Promise.all([0, 1, 3].map((r) => reportTaskDone(store, run, map(r), NOW)));
    expect(last.filter((n) => n === 'reduce')).toStrictEqual(['reduce']);
    const reduced = await Promise.all([0, 1, 2].map((b) => reportTaskDone(store, run, reduce(b), NOW)));
    expect(reduced.filter((n) => n === 'commit')).toStrictEqual(['commit']);
    expect((await listAll(store, prefix)).map((o) => o.key.slice(prefix.length))).toStrictEqual([
      'end.json',
      'map/range=0.json',
      'map/range=1.json',
      'map/range=2.json',
      'map/range=3.json',
      'reduce.json',
      'reduce/bucket=0.json',
      'reduce/bucket=1.json',
      'reduce/bucket=2.json',
    ]);
    expect((await splitEnd(store, run, ref))?.outcome).toBe('commit');
  });

  it('a retry of the task that created the marker starts the stage again (its enqueue may have failed); a late duplicate does not', async () => {
    store = new LocalStore(`${dir.path}/retry`);
    for (const r of [0, 1, 2]) expect(await reportTaskDone(store, run, map(r), NOW)).toBe(undefined);
    expect(await reportTaskDone(store, run, map(3), NOW)).toBe('reduce');
    expect(await reportTaskDone(store, run, map(3), NOW + 1)).toBe('reduce');
    expect(await reportTaskDone(store, run, map(1), NOW + 2)).toBe(undefined);
  });

  it('the first task given up on abandons the split once; a split past its reduce stage is not abandoned by a map task', async () => {
    store = new LocalStore(`${dir.path}/abandon`);
    expect(await splitEnd(store, run, ref)).toBe(undefined);
    expect(await decideAbandon(store, run, map(1), 'range 1 failed 5 times: boom', NOW)).toBe(true);
    expect(await decideAbandon(store, run, reduce(0), 'bucket 0 failed', NOW)).toBe(false);
    // the same task poisoned after it abandoned and recorded the job: nothing left to do
    expect(await decideAbandon(store, run, map(1), 'range 1 moved to the poison queue', NOW)).toBe(true);
    await recordJobResult(store, run, emptyResult({ tenant: 'acme', date: job.date, runId: '' }, 'failed', 0, {}, 'abandoned'));
    expect(await decideAbandon(store, run, map(1), 'range 1 moved to the poison queue', NOW)).toBe(false);
    expect(await splitEnd(store, run, ref)).toStrictEqual({
      by: 'range 1',
      at: '2025-08-11T17:05:00.000Z',
      outcome: 'abandon',
      reason: 'range 1 failed 5 times: boom',
    });

    const committing = new LocalStore(`${dir.path}/committing`);
    for (const r of [0, 1, 2, 3]) await reportTaskDone(committing, run, map(r), NOW);
    for (const b of [0, 1, 2]) await reportTaskDone(committing, run, reduce(b), NOW);
    expect(await decideAbandon(committing, run, map(0), 'a stale duplicate', NOW)).toBe(false);
    // a commit given up on abandons unless the job reported
    expect(await decideAbandon(committing, run, { action: 'commit', job, ref }, 'commit died', NOW)).toBe(true);
    await recordJobResult(committing, run, emptyResult({ tenant: 'acme', date: job.date, runId: 'r' }, 'compacted', 0, {}));
    expect(await decideAbandon(committing, run, { action: 'commit', job, ref }, 'commit died', NOW)).toBe(false);
  });

  it('tells the stage from the markers, and lets only the task that started the next stage start it again', async () => {
    store = new LocalStore(`${dir.path}/stages`);
    expect(await splitStage(store, run, ref)).toBe('map');
    for (const r of [0, 1, 2, 3]) await reportTaskDone(store, run, map(r), NOW);
    expect(await splitStage(store, run, ref)).toBe('reduce');
    expect([await stageStartedBy(store, run, map(3)), await stageStartedBy(store, run, map(0))]).toStrictEqual([
      'reduce',
      undefined,
    ]);
    for (const b of [0, 1, 2]) await reportTaskDone(store, run, reduce(b), NOW);
    expect(await splitStage(store, run, ref)).toBe('commit');
    expect([await stageStartedBy(store, run, reduce(2)), await stageStartedBy(store, run, reduce(1))]).toStrictEqual([
      'commit',
      undefined,
    ]);
    const abandoned = new LocalStore(`${dir.path}/stages-abandoned`);
    await decideAbandon(abandoned, run, map(0), 'gave up', NOW);
    expect(await splitStage(abandoned, run, ref)).toBe('abandon');
    // compact_job could not enqueue every map task: the ones sent find the split abandoned, and leave it to start
    const unsent = new LocalStore(`${dir.path}/stages-unsent`);
    expect((await markAbandoned(unsent, run, ref, 'start', 'enqueueing its map tasks failed', NOW)).created).toBe(true);
    expect([await splitStage(unsent, run, ref), await decideAbandon(unsent, run, map(0), 'poisoned', NOW)]).toStrictEqual([
      'abandon',
      false,
    ]);
  });

  it('keeps at most C tasks of a stage in flight: task i enqueues i + C, once (again for a retry of i), none past the end', async () => {
    store = new LocalStore(`${dir.path}/window`);
    expect(await Promise.all([0, 1, 2, 3].map((r) => nextInWindow(store, run, map(r), 2, NOW)))).toStrictEqual([
      2,
      3,
      undefined,
      undefined,
    ]);
    expect(await nextInWindow(store, run, map(0), 2, NOW + 1)).toBe(2); // a retry of range 0: its enqueue may have failed
    expect(await nextInWindow(store, run, reduce(0), 1, NOW)).toBe(1);
    expect(await nextInWindow(store, run, reduce(2), 1, NOW)).toBe(undefined);
  });
});
