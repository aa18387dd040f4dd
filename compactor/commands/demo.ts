/**
 * `demo`: a generated day of chat for three tenants, ingested and compacted, and what the lake then holds.
 *
 *   makoto-lake demo [--date DATE] [--tenants a,b,c] [--messages N]
 */
import { parseArgs } from 'node:util';
import { type Config, parseTenantList } from '../../src/core/config.js';
import { UsageError } from '../../src/core/errors.js';
import { parseDate, targetDate } from '../../src/core/time/jst.js';
import { runDemo } from '../../src/jobs/demo/runDemo.js';
import { summaryTable, table } from '../../src/ops/report.js';
import { createStore } from '../../stores/createStore.js';
import type { Out } from './args.js';

export async function demoCommand(args: readonly string[], config: Config, out: Out): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: { date: { type: 'string' }, tenants: { type: 'string' }, messages: { type: 'string' } },
  });
  const date = values.date === undefined ? targetDate(Date.now(), config.targetDateOffset) : parseDate(values.date, '--date');
  const tenantList = parseTenantList(values.tenants ?? 'sakura-shop,fuji-bank,default_tenant', '--tenants');
  if (tenantList === 'all') throw new UsageError('--tenants needs tenant ids, not *');
  const messages = Number(values.messages ?? '200');
  if (!Number.isInteger(messages) || messages < 2 || messages > 1_000_000) {
    throw new UsageError(`--messages must be an integer from 2 to 1000000, got ${JSON.stringify(values.messages)}`);
  }
  const store = await createStore(config);
  out.stderr(`demo: ${messages} messages for each of ${tenantList.join(', ')} on ${date} (JST) in ${store.location}`);
  const result = await runDemo({ store, config, date, tenants: tenantList, messagesPerTenant: messages });
  const i = result.ingest;
  out.stdout(
    `ingested ${i.records} stream records in ${i.batches} batches → ${i.staged} staged in ${i.objects} objects, ${i.quarantined} quarantined\n`,
  );
  out.stdout(summaryTable(result.summary));
  if (result.perTenant.length > 0) {
    out.stdout('\nread back from Parquet with DuckDB:');
    out.stdout(rowsTable(result.perTenant));
    out.stdout('');
    out.stdout(rowsTable(result.sample));
  }
  return result.summary.ok ? 0 : 1;
}

function rowsTable(rows: Record<string, unknown>[]): string {
  const header = Object.keys(rows[0] ?? {});
  return table([
    header,
    ...rows.map((r) => header.map((h) => (typeof r[h] === 'number' ? (r[h] as number) : String(r[h] ?? '')))),
  ]);
}
