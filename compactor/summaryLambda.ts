/**
 * Last step of the nightly Step Functions run (docs/AWS.md): a `summary` task – pairs the plan with the
 * jobs' reports and writes the run summary `runs/<date>/<run>.json`, with the night's privacy step (`privacy`:
 * its report, or the error the state machine caught it with) – then the end of the run every driver shares
 * (src/jobs/endRun.ts): the run's metrics (CloudWatch EMF, namespace `MakotoLake`), the status check from the
 * run's own results, `run finished`. Fails the execution when a job failed or never reported, or when the
 * privacy step failed, so alarms fire.
 */
import type { Context } from 'aws-lambda';
import { runStartedAt } from '../src/core/time/runId.js';
import { endRun } from '../src/jobs/endRun.js';
import { type FanOutSummary, parseRunRef, type runSummaryJson } from '../src/jobs/fanOut.js';
import { caughtPrivacyOutcome } from '../src/jobs/privacyOutcome.js';
import { runTask } from '../src/jobs/task.js';
import { createStore } from '../stores/createStore.js';
import {
  CompactionRunFailedError,
  type CompactorDeps,
  defaultLogger,
  defaultMetrics,
  lambdaConfig,
  lambdaSink,
  taskEnv,
  withInvocation,
} from './lambda.js';

export type RunSummaryJson = ReturnType<typeof runSummaryJson>;

export async function runSummaryEvent(event: unknown, deps: CompactorDeps, context?: Context): Promise<RunSummaryJson> {
  const now = deps.now ?? Date.now;
  const logger = deps.logger ?? defaultLogger();
  return withInvocation(logger, event, context, async () => {
    const run = parseRunRef((event as { run?: unknown } | null)?.run);
    const privacy = caughtPrivacyOutcome((event as { privacy?: unknown } | null)?.privacy);
    const written = await runTask(taskEnv(deps), { kind: 'summary', run, ...(privacy ? { privacy } : {}) });
    const { summary } = written as { summary: FanOutSummary };
    const end = await endRun(summary, {
      store: deps.store,
      sink: lambdaSink(logger, deps.metrics ?? defaultMetrics()),
      startedAt: runStartedAt(run.runId, now()),
      now,
    });
    if (end.failure) {
      throw new CompactionRunFailedError(end.failure, {
        context: {
          run: run.runId,
          date: run.date,
          failed: end.failed,
          ...(end.privacyFailure ? { privacy: end.privacyFailure } : {}),
        },
      });
    }
    return end.json;
  });
}

export async function handler(event: unknown, context?: Context): Promise<RunSummaryJson> {
  const config = lambdaConfig(process.env);
  return runSummaryEvent(event, { config, store: await createStore(config) }, context);
}
