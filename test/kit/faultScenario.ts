import { join } from 'node:path';
import { stagingPrefix } from '../../src/core/staging/layout.js';
import { DeltaTable } from '../../src/lake/table/deltaTable.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { listAll, type ObjectStore } from '../../src/ports/store/ObjectStore.js';
import { type FaultCounts, FaultInjectingStore, type FaultPlan } from './FaultInjectingStore.js';
import { FAST_RETRY, type PipelineOutcome, runPipeline } from './pipeline.js';
import { RetryingStore } from './RetryingStore.js';

export const FAULT_DATE = '2025-08-11';
export const FAULT_TENANTS = ['sakura-shop', 'fuji-bank', 'default_tenant'] as const;
/** The tenant whose first staging object is made unreadable for good in the permanent-fault run. */
export const BROKEN_TENANT = 'fuji-bank';
const NOW = Date.parse('2025-08-11T17:00:00Z');

/** Transient faults: throttling and 503s on a fifth of all calls, and a third of all downloads cut short. */
export const TRANSIENT_PLAN: FaultPlan = { transientRate: 0.2, truncatedReadRate: 0.3, seed: 20250811 };

export interface FaultScenarioResult {
  readonly clean: PipelineOutcome;
  readonly transient: PipelineOutcome;
  readonly transientFaults: FaultCounts;
  readonly permanent: PipelineOutcome;
  readonly permanentFaults: FaultCounts;
  /** The object the permanent fault was injected on. */
  readonly brokenObject: string;
  /**
   * The table's current version after each run (read without faults): one commit per compacted tenant, so a
   * retried or refused write never made a second version.
   */
  readonly versions: { readonly clean: number; readonly transient: number; readonly permanent: number };
}

/**
 * The same generated day three times, each in a fresh local store: without faults; through
 * RetryingStore(FaultInjectingStore(LocalStore)) with transient faults and truncated downloads (must give
 * identical rows); and with a permanent read failure on one object of one tenant (that tenant fails with
 * an error naming the object, the others complete).
 */
export async function runFaultScenario(root: string, messagesPerTenant = 200): Promise<FaultScenarioResult> {
  const base = { date: FAULT_DATE, tenants: [...FAULT_TENANTS], messagesPerTenant, now: NOW };

  const cleanStore = new LocalStore(join(root, 'clean', 'data'));
  const clean = await runPipeline({ ...base, store: cleanStore, workDirectory: join(root, 'clean', 'work') });

  const transientLocal = new LocalStore(join(root, 'transient', 'data'));
  const transientFaulty = new FaultInjectingStore(transientLocal, TRANSIENT_PLAN);
  const transient = await runPipeline({
    ...base,
    store: new RetryingStore(transientFaulty, FAST_RETRY),
    readStore: transientLocal,
    workDirectory: join(root, 'transient', 'work'),
  });

  // the staging object names are deterministic, so the clean run tells which object to break
  const brokenObject = (await listAll(cleanStore, stagingPrefix(BROKEN_TENANT, FAULT_DATE)))[0]?.key ?? '';
  const permanentLocal = new LocalStore(join(root, 'permanent', 'data'));
  const permanentFaulty = new FaultInjectingStore(permanentLocal, {
    permanent: [{ operation: 'getToFile', keyContains: brokenObject }],
  });
  const permanent = await runPipeline({
    ...base,
    store: new RetryingStore(permanentFaulty, FAST_RETRY),
    readStore: permanentLocal,
    workDirectory: join(root, 'permanent', 'work'),
  });

  const version = async (store: ObjectStore) => (await new DeltaTable(store, {}).snapshot()).version;
  return {
    clean,
    transient,
    transientFaults: { ...transientFaulty.counts },
    permanent,
    permanentFaults: { ...permanentFaulty.counts },
    brokenObject,
    versions: {
      clean: await version(cleanStore),
      transient: await version(transientLocal),
      permanent: await version(permanentLocal),
    },
  };
}
