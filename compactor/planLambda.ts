/**
 * First step of the nightly Step Functions run (template.yaml `NightlyCompaction`, docs/AWS.md): plans the
 * run's jobs – the target day for TENANT_ID (`*` = every tenant in staging) plus every earlier partition
 * whose staging changed – writes them to `runs/<date>/<run>/jobs.json` (largest first) for the Distributed
 * Map's ItemReader, and returns where they are. Takes the schedule's event or a manual
 * `{"target_date": …, "tenants": …, "late": …}`, read as the compactor reads them.
 */
import { planRun } from '../src/app/jobs.js';
import { lateLookbackDays } from '../src/compaction/lateData.js';
import { createStore } from '../stores/createStore.js';
import { type CompactorDeps, compactionRequest, defaultLogger, lambdaConfig } from './lambda.js';

/** What the plan step returns (the state machine's input to the Map and the summary). */
export interface PlanOutput {
  readonly run: { readonly run_id: string; readonly target_date: string };
  readonly jobs: number;
  readonly staging_bytes: number;
  /** Jobs the plan split (past SPLIT_THRESHOLD_BYTES). */
  readonly split_jobs: number;
  readonly jobs_key: string;
}

export async function runPlanEvent(event: unknown, deps: CompactorDeps): Promise<PlanOutput> {
  const now = deps.now ?? Date.now;
  const logger = deps.logger ?? defaultLogger();
  const { date, tenants, late } = compactionRequest(event, deps.config, now());
  const { splitThresholdBytes } = deps.config.compaction; // a job past it gets `split`: the state machine's split branch
  const { run, jobs, key } = await planRun(
    deps.store,
    { date, tenants, lateLookbackDays: lateLookbackDays(deps.config.compaction.lateDataLookbackDays, late), splitThresholdBytes },
    now(),
  );
  const output: PlanOutput = {
    run: { run_id: run.runId, target_date: date },
    jobs: jobs.length,
    staging_bytes: jobs.reduce((n, j) => n + j.stagingBytes, 0),
    split_jobs: jobs.filter((j) => j.split).length,
    jobs_key: key,
  };
  logger.info('run planned', {
    run_id: run.runId,
    dt: date,
    jobs: output.jobs,
    split_jobs: output.split_jobs,
    staging_bytes: output.staging_bytes,
  });
  return output;
}

export async function handler(event: unknown): Promise<PlanOutput> {
  const config = lambdaConfig(process.env);
  return runPlanEvent(event, { config, store: await createStore(config) });
}
