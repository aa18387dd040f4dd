/**
 * `compact`: one JST day (or, with --today, the intraday partitions) for the chosen tenants, through
 * src/jobs/runCompaction.ts; SIGINT / SIGTERM stop the run cleanly (exit 130 / 143).
 *
 *   makoto-lake compact [DATE] [TENANTS] [--all-tenants] [--late] [--allow-empty] [--json]
 *   makoto-lake compact --today [TENANTS] [--all-tenants] [--json]
 *
 * `compact DATE TENANT` is the replacement of `python batch_processor.py DATE TENANT` (README.md).
 */
import { parseArgs } from 'node:util';
import type { Config } from '../../src/core/config.js';
import { RunAbortedError, UsageError } from '../../src/core/errors.js';
import { parseDate, targetDate } from '../../src/core/time/jst.js';
import type { RunSummary } from '../../src/engine/compactTenants.js';
import { resultFailed } from '../../src/engine/resultFailed.js';
import { runCompaction } from '../../src/jobs/runCompaction.js';
import { progressLine, summaryJson, summaryTable } from '../../src/ops/report.js';
import { createStore } from '../../stores/createStore.js';
import { EXIT, type Out, selectedTenants } from './args.js';

export async function compactCommand(args: readonly string[], config: Config, out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      'all-tenants': { type: 'boolean' },
      json: { type: 'boolean' },
      late: { type: 'boolean' },
      'allow-empty': { type: 'boolean' },
      today: { type: 'boolean' },
    },
  });
  if (positionals.length > 2) throw new UsageError(`compact takes at most DATE and TENANTS, got ${positionals.length} arguments`);
  const today = values.today === true;
  // --today: today's (and before 02:00 JST yesterday's) partitions that gained staging; TENANTS is then the only positional
  const [dateArg, tenantsArg] = today ? [undefined, ...positionals] : positionals;
  if (today && (positionals.length > 1 || values.late)) throw new UsageError('compact --today takes no DATE and no --late');
  const date = dateArg === undefined ? targetDate(Date.now(), today ? 0 : config.targetDateOffset) : parseDate(dateArg, 'DATE');
  const tenants = selectedTenants(values['all-tenants'] === true, tenantsArg, config);
  const store = await createStore(config);
  out.stderr(`compacting ${date} for ${tenants === 'all' ? 'every tenant in staging' : tenants.join(', ')} in ${store.location}`);
  const stop = new AbortController();
  const stopped = stopOnSignals(stop, out);
  try {
    const summary = await runCompaction({
      store,
      config,
      date,
      tenants,
      late: values.late === true,
      intraday: today,
      onResult: (r) => out.stderr(progressLine(r)),
      signal: stop.signal,
    });
    if (values.json) out.stdout(JSON.stringify(summaryJson(summary), null, 2));
    else out.stdout(summaryTable(summary));
    const signal = stopped.signal();
    if (signal) {
      const count = (status: string) => summary.results.filter((r) => r.status === status).length;
      out.stderr(
        `makoto-lake: stopped by ${signal}: ${count('compacted')} compacted, ${summary.results.filter(resultFailed).length} failed or not started; leases released, work folder removed`,
      );
      return SIGNAL_EXIT[signal];
    }
    // an intraday run with nothing new to fold in is the normal case, not a sign of broken capture
    return compactExitCode(summary, date, values['allow-empty'] === true || today, out);
  } finally {
    stopped.dispose();
  }
}

const SIGNAL_EXIT = { SIGINT: 130, SIGTERM: 143 } as const;
type StopSignal = keyof typeof SIGNAL_EXIT;

/**
 * SIGINT/SIGTERM abort the run's signal: no partition starts, running ones stop before their next write and
 * release their leases, then the summary and a message are printed and the exit status is 128 + signal.
 * A second signal exits at once (its leases are taken over at once by the next run on this host).
 */
function stopOnSignals(controller: AbortController, out: Out): { signal: () => StopSignal | undefined; dispose: () => void } {
  let received: StopSignal | undefined;
  const handlers = (Object.keys(SIGNAL_EXIT) as StopSignal[]).map((name) => {
    const handler = () => {
      if (received) {
        out.stderr(`makoto-lake: ${name} again: exiting now`);
        process.exit(SIGNAL_EXIT[name]);
      }
      received = name;
      out.stderr(`makoto-lake: ${name} received: stopping (no new partition starts; running ones stop and release their leases)`);
      controller.abort(new RunAbortedError(`the run was stopped by ${name}`, { context: { signal: name } }));
    };
    process.on(name, handler);
    return [name, handler] as const;
  });
  return {
    signal: () => received,
    dispose: () => {
      for (const [name, handler] of handlers) process.off(name, handler);
    },
  };
}

/** Failed → 1, locked → 3, and a day with nothing to compact → 4 (saying which tenants) unless allowed. */
function compactExitCode(summary: RunSummary, date: string, allowEmpty: boolean, out: Out): number {
  if (summary.results.some((r) => r.status === 'failed')) return EXIT.failed;
  if (summary.results.some((r) => r.status === 'locked')) return EXIT.locked;
  const empty = summary.results.filter((r) => r.status === 'no-input' && r.date === date).map((r) => r.tenant);
  if (summary.results.length === 0) out.stderr(`makoto-lake: no tenant has staging objects for ${date}`);
  else if (empty.length > 0) out.stderr(`makoto-lake: no staging objects for ${empty.join(', ')} on ${date}`);
  if (allowEmpty || (summary.results.length > 0 && empty.length === 0)) return EXIT.ok;
  out.stderr('(capture may be broken; --allow-empty accepts an empty day)');
  return EXIT.empty;
}
