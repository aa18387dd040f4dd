import { join } from 'node:path';
import { ingestBatch } from '../../src/capture/ingest/ingestBatch.js';
import { dynamodbEventChanges } from '../../src/capture/ingest/sources.js';
import { table } from '../../src/ops/report.js';
import { openDuckDb } from '../../src/ports/duckdb/openDuckDb.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { type Reconciliation, reconciles, runBadInputCatalogue } from './badInputCatalogue.js';
import { type PublishedFile, runConcurrentCompactions, runStalledCommit } from './concurrentRuns.js';
import { CRASH_POINTS, type CrashOutcome, runCrashScenario, runForeignHostCrash, survived } from './crashScenario.js';
import { BROKEN_TENANT, runFaultScenario } from './faultScenario.js';
import type { PipelineOutcome } from './pipeline.js';
import { prepareSignalBase, runClosedStdout, runStopped, type SignalOutcome } from './signalScenario.js';

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
  readonly concurrency: {
    readonly compacted: number;
    readonly locked: number;
    /** A commit stalled past its lease: runs that wrote (must be 1: the one that took over) and that wrote nothing. */
    readonly stalledCommit: { readonly wrote: number; readonly wroteNothing: number };
    /**
     * A commit in flight past its lease (the stalled run's table commit reaches the store after the taker's):
     * runs compacted (must be 1: the taker) and failed (1: the stalled one, its lease lost), commits the store
     * refused (1: the stalled one), files of the stalled run the current version names (0), and files of the
     * taker's version changed or removed once the stalled run resumed (0).
     */
    readonly commitInFlight: {
      readonly compacted: number;
      readonly failed: number;
      readonly refused: number;
      readonly stalledFilesPublished: number;
      readonly publishedFilesChanged: number;
    };
  };
  /** Undefined when the crash section was not run. */
  readonly crashes:
    | {
        readonly tried: number;
        readonly survived: number;
        /** Kills after which a reader of the table saw neither exactly the old nor exactly the new partition (a mix). */
        readonly mixedReads: number;
        /** The outcomes of the crash points not survived (empty when all were). */
        readonly notSurvived: CrashOutcome[];
        /** Nightly runs right after a kill that reported `locked` (the dead run's lease on this host). */
        readonly lockedAfterKill: number;
        /** A killed run on another host: the nightly run is locked out until its lease lapses, then compacts. */
        readonly foreignHost: { readonly beforeLapse: string; readonly afterLapse: string; readonly rowsExact: boolean };
      }
    | undefined;
  /** The real CLI with a closed stdout and under SIGTERM/SIGINT; undefined when the crash section was not run. */
  readonly signals: Record<'closedStdout' | 'SIGTERM' | 'SIGINT', SignalSummary> | undefined;
}

export interface SignalSummary {
  readonly exit: number | null;
  readonly compacted: number;
  readonly untouched: number;
  readonly leftovers: number;
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
  const foreignHost = crashes && (await runForeignHostCrash(crashes.base, join(dir, 'crashes')));
  const signals = options.crashes === false ? undefined : await signalScenarios(join(dir, 'signals'));

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
    crashes: crashes &&
      foreignHost && {
        tried: crashes.outcomes.length,
        survived: crashes.outcomes.filter(survived).length,
        mixedReads: crashes.outcomes.filter((o) => o.readerAfterCrash === 'other').length,
        notSurvived: crashes.outcomes.filter((o) => !survived(o)),
        lockedAfterKill: crashes.outcomes.filter((o) => o.nightly.status === 'locked').length,
        foreignHost: {
          beforeLapse: foreignHost.beforeLapse.status,
          afterLapse: foreignHost.afterLapse.status,
          rowsExact: foreignHost.afterLapse.rowsExact,
        },
      },
    signals,
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

async function signalScenarios(dir: string): Promise<ReliabilityReport['signals']> {
  const { mkdir } = await import('node:fs/promises');
  await mkdir(dir, { recursive: true });
  const base = await prepareSignalBase(dir);
  const summary = (o: SignalOutcome): SignalSummary => ({
    exit: o.code,
    compacted: o.exact.length,
    untouched: o.empty.length,
    leftovers: o.leftovers.leases.length + o.leftovers.storeTemp.length + o.leftovers.workFolders.length,
  });
  return {
    closedStdout: summary(await runClosedStdout(base)),
    SIGTERM: summary(await runStopped(base, 'SIGTERM')),
    SIGINT: summary(await runStopped(base, 'SIGINT')),
  };
}

async function concurrentOnLocalStore(dir: string): Promise<ReliabilityReport['concurrency']> {
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
    const stalled = await runStalledCommit(store, db, join(dir, 'stalled'), 'acme', '2025-08-11', 300);
    const wrote = [stalled.stalledWrote, stalled.otherWrote];
    // a fresh store: the in-flight commit is of the partition's first version
    const inFlightStore = new LocalStore(join(dir, 'in-flight'));
    await ingestBatch(inFlightStore, changes, { source: 'dynamodb', batchId, now });
    const inFlight = await runStalledCommit(
      inFlightStore,
      db,
      join(dir, 'in-flight-work'),
      'acme',
      '2025-08-11',
      300,
      'commit-in-flight',
    );
    const before = inFlight.afterTaker.files;
    const after = inFlight.atEnd.files;
    const unchanged = (f: PublishedFile) => JSON.stringify(f) === JSON.stringify(after.find((g) => g.key === f.key));
    return {
      compacted: statuses.filter((s) => s === 'compacted').length,
      locked: statuses.filter((s) => s === 'locked').length,
      stalledCommit: {
        wrote: wrote.filter((w) => w.length > 0).length,
        wroteNothing: wrote.filter((w) => w.length === 0).length,
      },
      commitInFlight: {
        compacted: [inFlight.stalled, inFlight.other].filter((r) => r.status === 'compacted').length,
        failed: [inFlight.stalled, inFlight.other].filter((r) => r.status === 'failed').length,
        refused: inFlight.stalledRefused.length,
        stalledFilesPublished: after.filter((f) => inFlight.stalledWrote.includes(f.key)).length,
        publishedFilesChanged:
          before.filter((f) => !unchanged(f)).length + after.filter((g) => !before.some((f) => f.key === g.key)).length,
      },
    };
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
    report.concurrency.stalledCommit.wrote === 1 &&
    report.concurrency.stalledCommit.wroteNothing === 1 &&
    report.concurrency.commitInFlight.compacted === 1 &&
    report.concurrency.commitInFlight.failed === 1 &&
    report.concurrency.commitInFlight.refused === 1 &&
    report.concurrency.commitInFlight.stalledFilesPublished === 0 &&
    report.concurrency.commitInFlight.publishedFilesChanged === 0 &&
    (report.crashes === undefined ||
      (report.crashes.survived === report.crashes.tried &&
        report.crashes.mixedReads === 0 &&
        report.crashes.lockedAfterKill === 0 &&
        report.crashes.foreignHost.beforeLapse === 'locked' &&
        report.crashes.foreignHost.afterLapse === 'compacted' &&
        report.crashes.foreignHost.rowsExact)) &&
    (report.signals === undefined ||
      (report.signals.closedStdout.exit === 0 &&
        report.signals.SIGTERM.exit === 143 &&
        report.signals.SIGINT.exit === 130 &&
        Object.values(report.signals).every((s) => s.leftovers === 0)))
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
      ['commit stalled past its lease: runs that wrote', report.concurrency.stalledCommit.wrote],
      ['  runs that wrote nothing', report.concurrency.stalledCommit.wroteNothing],
      ['commit in flight past its lease: runs compacted', report.concurrency.commitInFlight.compacted],
      ['  runs failed (lease lost)', report.concurrency.commitInFlight.failed],
      ['  commits refused by the store', report.concurrency.commitInFlight.refused],
      ["  the stalled run's files in the table", report.concurrency.commitInFlight.stalledFilesPublished],
      ["  files of the taker's version changed", report.concurrency.commitInFlight.publishedFilesChanged],
      ['crash points tried (each then the nightly run)', report.crashes?.tried ?? 'skipped'],
      ['  readers that saw a mix of old and new', report.crashes?.mixedReads ?? 'skipped'],
      ['  crashes survived', report.crashes?.survived ?? 'skipped'],
      ['  nightly runs locked out by the dead run (same host)', report.crashes?.lockedAfterKill ?? 'skipped'],
      ['killed on another host: nightly before the lease lapses', report.crashes?.foreignHost.beforeLapse ?? 'skipped'],
      ['  after it lapses', report.crashes?.foreignHost.afterLapse ?? 'skipped'],
    ]),
    '',
    `crash points: ${CRASH_POINTS.join(', ')}`,
    ...(report.crashes?.notSurvived ?? []).map((o) => `NOT survived: ${JSON.stringify(o)}`),
    '',
    'The real CLI: `compact D a,c,a | true` (closed stdout) and `compact D a,b,c` stopped while b runs',
    report.signals
      ? table([
          ['case', 'exit', 'tenants compacted', 'untouched', 'leases/temp files/work folders left'],
          ...(['closedStdout', 'SIGTERM', 'SIGINT'] as const).map((k) => {
            const s = (report.signals as NonNullable<ReliabilityReport['signals']>)[k];
            return [k === 'closedStdout' ? 'closed stdout (EPIPE)' : k, s.exit ?? 'none', s.compacted, s.untouched, s.leftovers];
          }),
        ])
      : 'skipped',
  ].join('\n');
}
