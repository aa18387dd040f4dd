/**
 * The job model of the nightly run: what a driver is asked to do is a Task, what doing it gives is its
 * Outcome, and each kind of task has one handler. The three drivers only move tasks and outcomes:
 *
 * - one process (the CLI, the compactor Lambda's manual and scheduled payloads, Azure's compact_http and
 *   intraday_batch): one `run` task;
 * - Step Functions (compactor/nightly.asl.json): `privacy`, `plan`, then a `compact` task per job or the `split`
 *   tasks of a big one, then `summary`;
 * - Azure queues: daily_batch runs `privacy` and `plan` and enqueues the jobs; compact_job runs `compact` (or a
 *   split's start), compact_task the `split` tasks; the job that reports last ends the run.
 *
 * Every run ends in endRun (src/jobs/endRun.ts), whichever driver ran it.
 */

import type { Config } from '../core/config.js';
import { targetDate } from '../core/time/jst.js';
import type { PartitionResult } from '../engine/compactPartition.js';
import { lateLookbackDays } from '../lake/lateData.js';
import type { PrivacyOutcome } from '../ops/privacyOutcome.js';
import type { ObjectStore } from '../ports/store/ObjectStore.js';
import { parseCompactionPayload } from './compactionPayload.js';
import type { CompactionRun } from './endRun.js';
import type { NightlyErasureReport } from './erase/nightly.js';
import { type CompactionJob, type FanOutSummary, planRun, type RunPlan, type RunRef, runJob, writeRunSummary } from './fanOut.js';
import { runNightlyPrivacy } from './nightlyPrivacy.js';
import { runCompaction } from './runCompaction.js';
import { runSplitTask, type SplitTask, type SplitTaskOutcome } from './splitTasks.js';
import { withCompactionDeps } from './workspace.js';

/** What a run is asked for: the JST day, the tenants, whether late days are re-checked, whether it is intraday. */
export interface RunRequest {
  readonly date: string;
  readonly tenants: readonly string[] | 'all';
  readonly late: boolean;
  readonly intraday?: boolean;
}

export type Task =
  /** A whole run in this process: privacy (nightly), every partition, vacuum (nightly). */
  | { readonly kind: 'run'; readonly request: RunRequest }
  /** A fan-out run's plan: its jobs, largest first, written for the Map / the queue. */
  | { readonly kind: 'plan'; readonly request: RunRequest }
  /** One job (tenant-day) of a fan-out run. */
  | { readonly kind: 'compact'; readonly job: CompactionJob; readonly run: RunRef }
  /** One task of a split job: start, map, reduce, commit, abandon (src/jobs/splitTasks.ts). */
  | { readonly kind: 'split'; readonly task: SplitTask; readonly run: RunRef }
  /** The night's privacy step (src/jobs/erase/nightly.ts), before the plan. */
  | { readonly kind: 'privacy' }
  /** The fan-out run's summary: its plan paired with its jobs' reports, and its privacy step. */
  | {
      readonly kind: 'summary';
      readonly run: RunRef;
      readonly privacy?: PrivacyOutcome;
      /** Only when every job reported (a queue worker after its report), else undefined. */
      readonly whenComplete?: boolean;
    };

export type TaskKind = Task['kind'];

/** What each kind of task gives back. */
export interface Outcomes {
  readonly run: CompactionRun;
  readonly plan: RunPlan;
  /** The job's result; a failure is the result (failed, locked), never thrown. */
  readonly compact: PartitionResult;
  readonly split: SplitTaskOutcome;
  readonly privacy: NightlyErasureReport;
  /** The summary, and whether this call wrote it; undefined when `whenComplete` and a job has not reported. */
  readonly summary: { readonly summary: FanOutSummary; readonly written: boolean } | undefined;
}

export type Outcome<K extends TaskKind> = Outcomes[K];

/** What a handler runs with: config and store built once at the edge, the clock, and the run's observers. */
export interface TaskEnv {
  readonly config: Config;
  readonly store: ObjectStore;
  readonly now: () => number;
  /** A partition finished (a `run` task: each one as it finishes). */
  readonly onResult?: (result: PartitionResult) => void;
  /** Engine and privacy-step events with their fields. */
  readonly log?: (event: string, fields: Record<string, unknown>) => void;
}

type Handler<K extends TaskKind> = (env: TaskEnv, task: Extract<Task, { kind: K }>) => Promise<Outcome<K>>;

/** One handler per kind of task. */
const HANDLERS: { readonly [K in TaskKind]: Handler<K> } = {
  run: (env, { request }) =>
    runCompaction({
      store: env.store,
      config: env.config,
      date: request.date,
      tenants: request.tenants,
      late: request.late,
      ...(request.intraday ? { intraday: true } : {}),
      now: env.now,
      ...(env.onResult ? { onResult: env.onResult } : {}),
      ...(env.log ? { log: env.log } : {}),
    }),
  plan: (env, { request }) =>
    planRun(
      env.store,
      {
        date: request.date,
        tenants: request.tenants,
        lateLookbackDays: lateLookbackDays(env.config.compaction.lateDataLookbackDays, request.late),
        // a job past SPLIT_THRESHOLD_BYTES gets `split`: the drivers run its tasks
        splitThresholdBytes: env.config.compaction.splitThresholdBytes,
      },
      env.now(),
    ),
  compact: (env, { job }) => withCompactionDeps(env.config, env.store, env.now, (deps) => runJob(deps, job)),
  split: (env, { task }) => withCompactionDeps(env.config, env.store, env.now, (deps) => runSplitTask(deps, task)),
  privacy: (env) => runNightlyPrivacy(env.config, env.store, env.now, env.log),
  summary: (env, { run, privacy, whenComplete }) =>
    writeRunSummary(env.store, run, { whenComplete: whenComplete === true, ...(privacy ? { privacy } : {}) }),
};

/** Runs one task with its kind's handler. */
export function runTask<T extends Task>(env: TaskEnv, task: T): Promise<Outcome<T['kind']>> {
  return (HANDLERS[task.kind] as Handler<T['kind']>)(env, task as never);
}

/**
 * What an invocation asks for: the schedule's event (`source: aws.events`: the day TARGET_DATE_OFFSET from the
 * schedule's own time, so a late retry of the 02:00 event still compacts the same day, for TENANT_ID, late),
 * or a manual payload `{"target_date", "tenants", "late", "intraday"}` (parseCompactionPayload).
 */
export function runRequest(event: unknown, config: Config, now: number): RunRequest {
  const e = event as Record<string, unknown> | null | undefined;
  if (e && typeof e === 'object' && (e.source === 'aws.events' || e['detail-type'] === 'Scheduled Event')) {
    // the nightly run: the day before the schedule's own time, plus any late data of the days before it
    const at = typeof e.time === 'string' ? Date.parse(e.time) : Number.NaN;
    return { date: targetDate(Number.isFinite(at) ? at : now, config.targetDateOffset), tenants: config.tenants, late: true };
  }
  const payload = parseCompactionPayload(event);
  if (payload.intraday)
    return { date: targetDate(now, 0), tenants: payload.tenants ?? config.tenants, late: false, intraday: true };
  return {
    date: payload.date ?? targetDate(now, config.targetDateOffset),
    tenants: payload.tenants ?? config.tenants,
    late: payload.late,
  };
}

/** The night's request, as Azure's daily_batch plans it: the day TARGET_DATE_OFFSET from now, TENANT_ID, late. */
export function nightlyRequest(config: Config, now: number): RunRequest {
  return { date: targetDate(now, config.targetDateOffset), tenants: config.tenants, late: true };
}
