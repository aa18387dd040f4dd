/** Scenario `intraday`: the tenants day compacted as a night, then one intraday run folds in new messages. */
import { cp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type Context, DATE, tenantsDay } from '../context.js';
import { runStep } from '../runStep.js';

/**
 * An hourly intraday run: the many-tenants day compacted as a night, then every tenant gains `newMessages`
 * messages and one intraday run folds them in (bench/step.ts `intraday`); its wall, CPU and requests.
 */
export async function intradayScenario(
  context: Context,
  options: { count: number; perTenant: number; concurrency: string; latencyMs: number; newMessages: number },
) {
  const source = await tenantsDay(context, options.count, options.perTenant);
  const data = join(context.root, 'intraday-lake');
  await cp(source.dir, data, { recursive: true });
  const r = runStep('intraday', [
    join(context.root, 'intraday-out'),
    JSON.stringify({
      root: data,
      date: DATE,
      memory: context.memory,
      threads: context.threads,
      concurrency: options.concurrency,
      latencyMs: options.latencyMs,
      newMessages: options.newMessages,
    }),
  ]);
  await rm(data, { recursive: true, force: true });
  const expected = source.expected + options.count * options.newMessages;
  if (r.ok !== true || r.nightRows !== source.expected || r.partitions !== options.count || r.rows !== expected) {
    throw new Error(
      `intraday run: ok ${r.ok}, night rows ${r.nightRows}, partitions ${r.partitions}, rows ${r.rows} of ${expected}; failed: ${JSON.stringify(r.failed)}`,
    );
  }
  const line = {
    scenario: 'intraday',
    tenants: options.count,
    newMessagesEach: options.newMessages,
    expectedRows: expected,
    ...r,
  };
  context.say(JSON.stringify(line));
  return line;
}
