/**
 * `npm run reliability`: runs the reliability scenarios (faults, bad inputs, concurrent runs, crashes) in a
 * temporary folder and prints what was injected and how every message is accounted for (docs/RELIABILITY.md).
 *
 *   node bin/run-ts.mjs scripts/reliability.ts [--no-crashes] [--json]
 *
 * Exit 0 when everything reconciles and every crash was survived, 1 otherwise.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatReliabilityReport, reliabilityOk, runReliability } from '../test/kit/reliabilityReport.js';

export async function main(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Promise<number> {
  const { values } = parseArgs({ args: [...argv], options: { 'no-crashes': { type: 'boolean' }, json: { type: 'boolean' } } });
  const dir = await mkdtemp(join(env.TEMP_DIR ?? tmpdir(), 'makoto-lake-reliability-'));
  try {
    const started = Date.now();
    const report = await runReliability(dir, { crashes: !values['no-crashes'] });
    if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else process.stdout.write(`${formatReliabilityReport(report)}\n\nfinished in ${Date.now() - started} ms\n`);
    return reliabilityOk(report) ? 0 : 1;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
