/**
 * First step of the nightly Step Functions run (template.yaml `NightlyCompaction`, docs/AWS.md): a `plan`
 * task – the target day for TENANT_ID (`*` = every tenant in staging) plus every earlier partition whose
 * staging changed – whose jobs are written to `runs/<date>/<run>/jobs.json` (largest first) for the
 * Distributed Map's ItemReader; returns where they are. Takes the schedule's event or a manual
 * `{"target_date": …, "tenants": …, "late": …}`, read as the compactor reads them.
 */
import type { Context } from 'aws-lambda';
import { runTask } from '../src/jobs/task.js';
import { createStore } from '../stores/createStore.js';
import { type CompactorDeps, compactionRequest, defaultLogger, lambdaConfig, taskEnv, withInvocation } from './lambda.js';

/** What the plan step returns (the state machine's input to the Map and the summary). */
export interface PlanOutput {
  readonly run: { readonly run_id: string; readonly target_date: string };
  readonly jobs: number;
  readonly staging_bytes: number;
  /** Jobs the plan split (past SPLIT_THRESHOLD_BYTES). */
  readonly split_jobs: number;
  readonly jobs_key: string;
}

export async function runPlanEvent(event: unknown, deps: CompactorDeps, context?: Context): Promise<PlanOutput> {
  const now = deps.now ?? Date.now;
  const logger = deps.logger ?? defaultLogger();
  return withInvocation(logger, event, context, async () => {
    const request = compactionRequest(event, deps.config, now());
    // a job past SPLIT_THRESHOLD_BYTES gets `split`: the state machine's split branch
    const { run, jobs, key } = await runTask(taskEnv(deps), { kind: 'plan', request });
    const output: PlanOutput = {
      run: { run_id: run.runId, target_date: request.date },
      jobs: jobs.length,
      staging_bytes: jobs.reduce((n, j) => n + j.stagingBytes, 0),
      split_jobs: jobs.filter((j) => j.split).length,
      jobs_key: key,
    };
    logger.info('run planned', {
      run_id: run.runId,
      dt: request.date,
      jobs: output.jobs,
      split_jobs: output.split_jobs,
      staging_bytes: output.staging_bytes,
    });
    return output;
  });
}

export async function handler(event: unknown, context?: Context): Promise<PlanOutput> {
  const config = lambdaConfig(process.env);
  return runPlanEvent(event, { config, store: await createStore(config) }, context);
}
