/** Scenario `table`: the Delta log at the fan-out's concurrency and after a simulated year. */
import { join } from 'node:path';
import { type Context, load } from '../context.js';
import { night, year } from '../tableLog.js';

/** The Delta log at the fan-out's concurrency and after a simulated year (bench/tableLog.ts). */
export async function tableScenario(context: Context, partitions: number) {
  context.say(`\nscenario table: the Delta log, ${partitions} tenant-days a night (${load()})`);
  const rows: Record<string, unknown>[] = [];
  for (const [writers, interval] of [
    [1, 10],
    [8, 10],
    [50, 10],
    [50, 100],
  ] as const) {
    const row = await night(join(context.root, `night-${writers}-${interval}`), partitions, writers, interval);
    context.say(`night: ${JSON.stringify(row)}`);
    rows.push(row);
  }
  const simulated = await year(join(context.root, 'year'), partitions, join(context.root, 'year-work'));
  context.say(`year: ${JSON.stringify(simulated)} (${load()})`);
  return { nights: rows, year: simulated };
}
