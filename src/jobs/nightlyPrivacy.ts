/**
 * The night's privacy work as a step of its own, for the fan-out drivers (docs/PRIVACY.md, docs/SCALING.md):
 * the Step Functions state machine runs it as its first task (the compactor Lambda with `{"privacy": true}`),
 * Azure's daily_batch before it plans. The same `nightlyErasures` the one-process nightly run does before it
 * compacts: recent erases re-applied, offboarded tenants offboarded again, LAKE_RETENTION_DAYS applied.
 */
import type { Config } from '../core/config.js';
import { CompactionError } from '../core/errors.js';
import type { ObjectStore } from '../ports/store/ObjectStore.js';
import { type NightlyErasureReport, nightlyErasures } from './erase/nightly.js';
import { withCompactionDeps } from './workspace.js';

/** The privacy step found something it could not do (its report's errors); the night's compaction still runs. */
export class PrivacyStepFailedError extends CompactionError {}

/** Runs nightlyErasures in a work folder and DuckDB instance of its own; never throws for what it could not erase. */
export async function runNightlyPrivacy(
  config: Config,
  store: ObjectStore,
  now: () => number,
  log?: (event: string, fields: Record<string, unknown>) => void,
): Promise<NightlyErasureReport> {
  return withCompactionDeps(config, store, now, (deps) =>
    nightlyErasures({ ...deps, ...(log ? { log } : {}) }, config.retention, now()),
  );
}
