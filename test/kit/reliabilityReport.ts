import { join } from 'node:path';
import { table } from '../../src/app/report.js';
import { openDuckDb } from '../../src/duckdb/openDuckDb.js';
import { ingestBatch } from '../../src/ingest/ingestBatch.js';
import { dynamodbEventChanges } from '../../src/ingest/sources.js';
import { LocalStore } from '../../src/store/LocalStore.js';
import { type Reconciliation, reconciles, runBadInputCatalogue } from './badInputCatalogue.js';
import { runConcurrentCompactions } from './concurrentRuns.js';
import { CRASH_POINTS, runCrashScenario, survived } from './crashScenario.js';
import { BROKEN_TENANT, runFaultScenario } from './faultScenario.js';
import type { PipelineOutcome } from './pipeline.js';

export interface ReliabilityReport {
  readonly faults: {
    readonly calls: number;
    readonly throttled: number;
    readonly unavailable: number;
    readonly truncatedReads: number;
    readonly permanent: number;
    /** Rows and per-tenant results under transient faults equal the fault-free run's. */
    readonly identicalUnderTransientFaults: boolean;
    /** With a permanent fault: the broken tenant failed naming the object, every other tenant completed. */
    readonly permanentIsolated: boolean;
  };
  readonly badInputs: { readonly tried: number; readonly asExpected: number };
  readonly messages: { readonly pipeline: Reconciliation; readonly catalogue: Reconciliation };
  readonly concurrency: { readonly compacted: number; readonly locked: number };
  /** Undefined when the crash section was not run. */
  readonly crashes: { readonly tried: number; readonly survived: number } | undefined;
}

/**
 * Runs the reliability scenarios in `dir` and gathers the numbers the report prints. The tests call the
 * same scenario functions and assert the same numbers.
 */
export async function runReliability(dir: string, options: { crashes?: boolean } = {}): Promise<ReliabilityReport> {
  const faults = await runFaultScenario(join(dir, 'faults'));
  const catalogue = await runBadInputCatalogue(new LocalStore(join(dir, 'catalogue', 'data')), join(dir, 'catalogue', 'work'));
  const concurrency = await concurrentOnLocalStore(join(dir, 'concurrency'));
  const crashes = options.crashes === false ? undefined : await runCrashScenario(join(dir, 'crashes'));

  const broken = faults.permanent.summary.results.find((r) => r.tenant === BROKEN_TENANT);
  const others = faults.permanent.summary.results.filter((r) => r.tenant !== BROKEN_TENANT);
  return {
    faults: {
      calls: faults.transientFaults.calls,
      throttled: faults.transientFaults.throttled,
      unavailable: faults.transientFaults.unavailable,
      truncatedReads: faults.transientFaults.truncatedReads,
      permanent: faults.permanentFaults.permanent,
      identicalUnderTransientFaults:
        JSON.stringify(faults.transient.rows) === JSON.stringify(faults.clean.rows) &&
        JSON.stringify(faults.transient.ingest) === JSON.stringify(faults.clean.ingest),
      permanentIsolated:
        broken?.status === 'failed' &&
        (broken.error ?? '').includes(faults.brokenObject) &&
        others.every((r) => r.status === 'compacted'),
    },
    badInputs: {
      tried: catalogue.cases.length,
      asExpected: catalogue.cases.filter((c) => {
        const outcome = catalogue.outcomes.find((o) => o.id === c.id);
        return JSON.stringify(outcome?.reasons) === JSON.stringify(c.reasons);
      }).length,
    },
    messages: { pipeline: pipelineReconciliation(faults.clean), catalogue: catalogue.totals },
    concurrency,
    crashes: crashes && { tried: crashes.outcomes.length, survived: crashes.outcomes.filter(survived).length },
  };
}

/** The fault-free pipeline run's counts in the reconciliation's terms. */
export function pipelineReconciliation(run: PipelineOutcome): Reconciliation {
  const results = run.summary.results;
  const sum = (f: (r: (typeof results)[number]) => number) => results.reduce((n, r) => n + f(r), 0);
  return {
    messagesIn: run.delivered,
    rowsOut: Object.values(run.rows).reduce((n, rows) => n + rows.length, 0),
    collapsed: sum((r) => r.duplicatesRemoved + r.versionsSuperseded + r.deletesApplied),
    quarantinedAtIngest: run.ingest.quarantined,
    quarantinedAtCompaction: sum((r) => r.rowsRejected),
    objectsQuarantined: sum((r) => r.objectsRejected),
    linesInUnreadableTails: 0,
  };
}

async function concurrentOnLocalStore(dir: string): Promise<{ compacted: number; locked: number }> {
  const store = new LocalStore(join(dir, 'data'));
  const { changes, batchId } = dynamodbEventChanges({
    Records: [
      {
        eventName: 'INSERT',
        eventSourceARN: 'arn:aws:dynamodb:ap-northeast-1:000000000000:table/messages/stream/report',
        dynamodb: {
          SequenceNumber: '1',
          NewImage: { tenantId: { S: 'acme' }, messageId: { S: 'm1' }, createdAt: { S: '2025-08-11T01:00:00Z' } },
        },
      },
    ],
  });
  const now = Date.parse('2025-08-11T17:00:00Z');
  await ingestBatch(store, changes, { source: 'dynamodb', batchId, now });
  const db = await openDuckDb({ memoryLimit: '512MB', threads: 1, workDirectory: join(dir, 'duckdb') });
  try {
    const runs = await runConcurrentCompactions(store, db, join(dir, 'work'), 'acme', '2025-08-11', now);
    const statuses = [runs.first.status, runs.second.status];
    return { compacted: statuses.filter((s) => s === 'compacted').length, locked: statuses.filter((s) => s === 'locked').length };
  } finally {
    db.closeSync();
  }
}

/** Everything reconciles and every crash was survived. */
export function reliabilityOk(report: ReliabilityReport): boolean {
  return (
    report.faults.identicalUnderTransientFaults &&
    report.faults.permanentIsolated &&
    report.badInputs.asExpected === report.badInputs.tried &&
    reconciles(report.messages.pipeline) &&
    reconciles(report.messages.catalogue) &&
    report.concurrency.compacted === 1 &&
    report.concurrency.locked === 1 &&
    (report.crashes === undefined || report.crashes.survived === report.crashes.tried)
  );
}

/** The report as fixed-width tables. */
export function formatReliabilityReport(report: ReliabilityReport): string {
  const yes = (ok: boolean) => (ok ? 'yes' : 'NO');
  const f = report.faults;
  const m = (r: Reconciliation) => [
    r.messagesIn,
    r.rowsOut,
    r.collapsed,
    r.quarantinedAtIngest,
    r.quarantinedAtCompaction,
    r.linesInUnreadableTails,
    r.objectsQuarantined,
    yes(reconciles(r)),
  ];
  return [
    'Faults injected (RetryingStore(FaultInjectingStore(LocalStore)), whole pipeline)',
    table([
      ['kind', 'count'],
      ['store calls', f.calls],
      ['throttled (SlowDown)', f.throttled],
      ['unavailable (503)', f.unavailable],
      ['truncated downloads', f.truncatedReads],
      ['permanent (one object)', f.permanent],
    ]),
    `identical rows under transient faults: ${yes(f.identicalUnderTransientFaults)}; permanent fault isolated to its tenant: ${yes(f.permanentIsolated)}`,
    '',
    'Messages (in = out + collapsed + quarantined + lines in unreadable tails)',
    table([
      ['run', 'in', 'out', 'collapsed', 'q. ingest', 'q. compaction', 'lost tails', 'objects q.', 'reconciles'],
      ['pipeline (3 tenants)', ...m(report.messages.pipeline)],
      ['bad-input catalogue', ...m(report.messages.catalogue)],
    ]),
    '',
    table([
      ['check', 'result'],
      ['bad inputs tried', report.badInputs.tried],
      ['  with the expected outcome', report.badInputs.asExpected],
      ['concurrent runs: compacted', report.concurrency.compacted],
      ['concurrent runs: locked', report.concurrency.locked],
      ['crash points tried', report.crashes?.tried ?? 'skipped'],
      ['  crashes survived', report.crashes?.survived ?? 'skipped'],
    ]),
    '',
    `crash points: ${CRASH_POINTS.join(', ')}`,
  ].join('\n');
}
