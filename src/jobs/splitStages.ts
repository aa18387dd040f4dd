/**
 * How a queue orchestrator (Azure: `compact_task`) moves a split job from one stage to the next without a
 * coordinator, deciding "the last task of the stage" race-free through the store. Under
 * `runs/<date>/<run>/splits/tenant_id=<t>/dt=<d>/<split>/`:
 *
 * - each map or reduce task that finished writes its report `map/range=<i>.json` / `reduce/bucket=<b>.json`
 *   (a retried task replaces its own), then lists its stage's reports;
 * - a reporter that sees all K (or B) creates the next stage's marker – `reduce.json` after the map stage,
 *   `end.json` (`outcome: commit`) after the reduce stage – with `ifNoneMatch: '*'`: of any number of
 *   reporters that see the stage complete, exactly one creates it, and only that one enqueues the next
 *   stage. The marker names its creator, so a retry of that same task (its enqueue failed after the marker
 *   was written) enqueues again; nobody else does.
 * - `end.json` also decides an abandon: a task given up on creates it with `outcome: abandon`. Whichever is
 *   created first decides whether the split commits or is abandoned; a task that finds `abandon` skips its work.
 * - At most C tasks of a stage are queued or running at once (the window): the stage's starter enqueues tasks
 *   0 … C-1, and task i, when it finished, enqueues task i + C – claimed once through `enqueued/<stage>-<i+C>.json`
 *   (named after the claimer, so a retry of i enqueues it again and nobody else does).
 */

import { runSplitPrefix } from '../core/staging/layout.js';
import type { SplitRef } from '../engine/splitPartition.js';
import { PreconditionFailedError } from '../ports/store/errors.js';
import { listAll, type ObjectStore } from '../ports/store/ObjectStore.js';
import { readJson } from '../ports/store/readJson.js';
import { jobResultKey, type RunRef } from './fanOut.js';
import { type SplitTask, splitTaskName } from './splitTasks.js';

/** A stage marker: which task created it, when, and for `end.json` how the split ends. */
export interface StageMarker {
  readonly by: string;
  readonly at: string;
  readonly outcome?: 'commit' | 'abandon';
  readonly reason?: string;
}

type StageTask = Extract<SplitTask, { action: 'map' | 'reduce' }>;

/** Where a split is: running its map or reduce stage, committing, or abandoned. */
export type SplitStage = 'map' | 'reduce' | 'commit' | 'abandon';

const prefixOf = (run: RunRef, ref: SplitRef) => runSplitPrefix(run.date, run.runId, ref.tenant, ref.date, ref.splitId);
const endKey = (run: RunRef, ref: SplitRef) => `${prefixOf(run, ref)}end.json`;

/**
 * Reports a finished map or reduce task and says whether this reporter starts the next stage: `reduce`
 * (enqueue the B reduce tasks), `commit` (enqueue the commit), or undefined (tasks of the stage are still
 * running, or another reporter started the next stage).
 */
export async function reportTaskDone(
  store: ObjectStore,
  run: RunRef,
  task: StageTask,
  now: number,
): Promise<'reduce' | 'commit' | undefined> {
  const { ref } = task;
  const at = new Date(now).toISOString();
  const [folder, total, name] =
    task.action === 'map' ? ['map/', ref.ranges, `range=${task.range}`] : ['reduce/', ref.buckets, `bucket=${task.bucket}`];
  const by = splitTaskName(task);
  await store.putBytes(`${prefixOf(run, ref)}${folder}${name}.json`, JSON.stringify({ task: by, at }), {
    contentType: 'application/json',
  });
  const reports = await listAll(store, `${prefixOf(run, ref)}${folder}`);
  if (reports.length < total) return undefined;
  const next = task.action === 'map' ? 'reduce' : 'commit';
  const marker: StageMarker = next === 'reduce' ? { by, at } : { by, at, outcome: 'commit' };
  const { holder } = await createMarker(store, next === 'reduce' ? `${prefixOf(run, ref)}reduce.json` : endKey(run, ref), marker);
  return holder.by === by && holder.outcome === marker.outcome ? next : undefined;
}

/**
 * Whether a task that is given up on (its last attempt failed, or it was poisoned) must abandon the split.
 * A map or reduce task creates `end.json` with `outcome: abandon`: it abandons if it created it, or created
 * it before and died before the job's failure was recorded; not if the split already passed to its commit
 * (a stale or duplicate task) or another task decided the abandon. A commit task abandons unless the job
 * already reported (committed, or abandoned by the commit's last attempt).
 */
export async function decideAbandon(
  store: ObjectStore,
  run: RunRef,
  task: Extract<SplitTask, { action: 'map' | 'reduce' | 'commit' }>,
  reason: string,
  now: number,
): Promise<boolean> {
  const reported = async () => (await store.head(jobResultKey(run, task.job))) !== undefined;
  if (task.action === 'commit') return !(await reported());
  const by = splitTaskName(task);
  const { holder, created } = await markAbandoned(store, run, task.ref, by, reason, now);
  if (created) return true;
  return holder.outcome === 'abandon' && holder.by === by && !(await reported());
}

/**
 * Marks the split abandoned (`end.json`, `outcome: abandon`) unless it already ended; returns the marker that
 * holds and whether this call created it. Tasks of the split still queued then do nothing.
 */
export async function markAbandoned(
  store: ObjectStore,
  run: RunRef,
  ref: SplitRef,
  by: string,
  reason: string,
  now: number,
): Promise<{ holder: StageMarker; created: boolean }> {
  return createMarker(store, endKey(run, ref), { by, at: new Date(now).toISOString(), outcome: 'abandon', reason });
}

/** How the split ended so far (its `end.json`), or undefined while it runs. */
export async function splitEnd(store: ObjectStore, run: RunRef, ref: SplitRef): Promise<StageMarker | undefined> {
  return readJson<StageMarker>(store, endKey(run, ref), 'stage marker');
}

/** The stage the split is in, from its markers. */
export async function splitStage(store: ObjectStore, run: RunRef, ref: SplitRef): Promise<SplitStage> {
  const end = await splitEnd(store, run, ref);
  if (end) return end.outcome === 'abandon' ? 'abandon' : 'commit';
  return (await store.head(`${prefixOf(run, ref)}reduce.json`)) ? 'reduce' : 'map';
}

/**
 * For a map or reduce task delivered again after its stage ended: the stage it started itself, if it created
 * the next stage's marker (its enqueue may have failed: it enqueues again), else undefined (nothing to do).
 */
export async function stageStartedBy(store: ObjectStore, run: RunRef, task: StageTask): Promise<'reduce' | 'commit' | undefined> {
  const next = task.action === 'map' ? 'reduce' : 'commit';
  const key = next === 'reduce' ? `${prefixOf(run, task.ref)}reduce.json` : endKey(run, task.ref);
  const marker = await readJson<StageMarker>(store, key, 'stage marker');
  return marker?.by === splitTaskName(task) && (next === 'reduce' || marker.outcome === 'commit') ? next : undefined;
}

/**
 * The window's next task after `task` finished: the number of the task of its stage to enqueue now (i + C),
 * or undefined when there is none or another delivery of `task` enqueued it already (claimed once).
 */
export async function nextInWindow(
  store: ObjectStore,
  run: RunRef,
  task: StageTask,
  concurrency: number,
  now: number,
): Promise<number | undefined> {
  const [index, total] = task.action === 'map' ? [task.range, task.ref.ranges] : [task.bucket, task.ref.buckets];
  const next = index + concurrency;
  if (next >= total) return undefined;
  const by = splitTaskName(task);
  const { holder } = await createMarker(store, `${prefixOf(run, task.ref)}enqueued/${task.action}-${next}.json`, {
    by,
    at: new Date(now).toISOString(),
  });
  return holder.by === by ? next : undefined;
}

/** Creates a marker once; returns it, or the marker another writer created first. */
async function createMarker(
  store: ObjectStore,
  key: string,
  marker: StageMarker,
): Promise<{ holder: StageMarker; created: boolean }> {
  try {
    await store.putBytes(key, JSON.stringify(marker), { ifNoneMatch: '*', contentType: 'application/json' });
    return { holder: marker, created: true };
  } catch (error) {
    if (!(error instanceof PreconditionFailedError)) throw error;
    return { holder: (await readJson<StageMarker>(store, key, 'stage marker')) as StageMarker, created: false };
  }
}
