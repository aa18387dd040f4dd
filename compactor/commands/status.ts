/**
 * `status`: per tenant-day, what staging and the table hold and what needs attention (exit 5 when anything does).
 *
 *   makoto-lake status [DATE] [--days N] [TENANTS] [--all-tenants] [--as-of VERSION|TIMESTAMP] [--json]
 */
import { parseArgs } from 'node:util';
import type { Config } from '../../src/core/config.js';
import { UsageError } from '../../src/core/errors.js';
import { parseDate, targetDate } from '../../src/core/time/jst.js';
import { lakeStatus, statusDates, statusTable } from '../../src/ops/status.js';
import { createStore } from '../../stores/createStore.js';
import { EXIT, type Out, parseAsOf, selectedTenants } from './args.js';

/** `status`: the lake check of src/ops/status.ts as a table (or JSON); exit 5 when something needs attention. */
export async function statusCommand(args: readonly string[], config: Config, out: Out, now: number): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      'all-tenants': { type: 'boolean' },
      days: { type: 'string' },
      json: { type: 'boolean' },
      'as-of': { type: 'string' },
    },
  });
  if (positionals.length > 2) throw new UsageError(`status takes at most DATE and TENANTS, got ${positionals.length} arguments`);
  // a lone positional is DATE when it looks like one, else TENANTS (`status acme --days 7`)
  const [dateArg, tenantsArg] =
    positionals.length === 1 && !/^\d{4}-/.test(positionals[0] as string) ? [undefined, positionals[0]] : positionals;
  const date = dateArg === undefined ? targetDate(now, config.targetDateOffset) : parseDate(dateArg, 'DATE');
  const days = values.days === undefined ? 1 : Number(values.days);
  if (!Number.isInteger(days) || days < 1 || days > 3660) {
    throw new UsageError(`--days must be an integer from 1 to 3660, got ${JSON.stringify(values.days)}`);
  }
  const tenants = selectedTenants(values['all-tenants'] === true, tenantsArg, config);
  const store = await createStore(config);
  const asOf = parseAsOf(values['as-of']);
  const result = await lakeStatus(store, { tenants, dates: statusDates(date, days), now, ...(asOf ? { asOf } : {}) });
  out.stdout(values.json ? JSON.stringify(result, null, 2) : statusTable(result));
  return result.needs_attention > 0 ? EXIT.attention : EXIT.ok;
}
