/**
 * The night's privacy step (src/jobs/erase/nightly.ts: recent erases re-applied, offboarded tenants offboarded
 * again, LAKE_RETENTION_DAYS applied) as the run summary records it, `"privacy"`, whichever driver ran it:
 * the one-process run before it compacts, the Step Functions `Privacy` state (its report, or the error its
 * Catch took), Azure's daily_batch before it plans (kept under the run for whichever job reports last).
 */

import { runJobsKey } from '../core/staging/layout.js';
import type { PrivacyOutcome } from '../ops/privacyOutcome.js';
import type { ObjectStore } from '../ports/store/ObjectStore.js';
import { readJson } from '../ports/store/readJson.js';
import { catchCauseMessage } from './catchCause.js';
import type { NightlyErasureReport } from './erase/nightly.js';

/** What a run summary records of the step: src/jobs/erase/nightly.ts, next to the report it is made from. */

/** A one-line description of a report's failures, or undefined when it has none. */
export function privacyFailure(report: NightlyErasureReport): string | undefined {
  return report.errors.length === 0 ? undefined : `nightly privacy step: ${report.errors.join('; ')}`;
}

/** The outcome of a step that reported. */
export function privacyOutcome(report: NightlyErasureReport): PrivacyOutcome {
  const failure = privacyFailure(report);
  return {
    reapplied: report.reapplied.length,
    offboarded: report.offboarded.length,
    retention: report.retention.length,
    ...(failure === undefined ? {} : { failure }),
  };
}

/** The failure an outcome records, if any. */
export const outcomeFailure = (outcome: PrivacyOutcome | undefined): string | undefined =>
  outcome && 'failure' in outcome ? outcome.failure : undefined;

/**
 * What the state machine's `Privacy` state handed the summary: `{"report": {…}}` when the compactor returned,
 * or the `{"Error", "Cause"}` its Catch took (a PrivacyStepFailedError, a timeout); undefined when the summary
 * was invoked without it.
 */
export function caughtPrivacyOutcome(value: unknown): PrivacyOutcome | undefined {
  if (value === undefined || value === null || typeof value !== 'object') return undefined;
  const { report, Error: name, Cause: cause } = value as { report?: unknown; Error?: unknown; Cause?: unknown };
  if (name === undefined) return isReport(report) ? privacyOutcome(report) : undefined;
  const message = catchCauseMessage(cause);
  return { failure: message ? `${String(name)}: ${message}` : String(name) };
}

const isReport = (value: unknown): value is NightlyErasureReport =>
  typeof value === 'object' &&
  value !== null &&
  ['reapplied', 'offboarded', 'retention', 'errors'].every((k) => Array.isArray((value as Record<string, unknown>)[k]));

/** Where a fan-out run keeps its privacy step's outcome until the summary: `runs/<date>/<run>/privacy.json`. */
export const runPrivacyKey = (date: string, runId: string): string =>
  runJobsKey(date, runId).replace(/jobs\.json$/, 'privacy.json');

/** Keeps the outcome under the run (Azure: daily_batch, before it enqueues the jobs). */
export async function recordPrivacyOutcome(
  store: ObjectStore,
  run: { readonly runId: string; readonly date: string },
  outcome: PrivacyOutcome,
): Promise<void> {
  await store.putBytes(runPrivacyKey(run.date, run.runId), JSON.stringify(outcome), { contentType: 'application/json' });
}

/** The outcome kept under the run, or undefined when the run had no privacy step. */
export async function readPrivacyOutcome(
  store: ObjectStore,
  run: { readonly runId: string; readonly date: string },
): Promise<PrivacyOutcome | undefined> {
  return readJson<PrivacyOutcome>(store, runPrivacyKey(run.date, run.runId), 'privacy outcome');
}
