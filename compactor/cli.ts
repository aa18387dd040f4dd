/**
 * `makoto-lake`: the command line. Thin: parse arguments, build the store from config, call src/.
 *
 *   makoto-lake compact [DATE] [TENANTS] [--all-tenants] [--late] [--allow-empty] [--json]
 *   makoto-lake ingest --source dynamodb|cosmos FILE
 *   makoto-lake demo [--date DATE] [--tenants a,b,c] [--messages N]
 *   makoto-lake sql --target athena|synapse [--out DIR]
 *   makoto-lake backfill --source cosmos DATE [TENANTS] [--json]
 *
 * Exit codes: 0 success, 1 some tenant or record failed (the rest completed), 2 usage error,
 * 3 a partition was locked by another run (none failed), 4 `compact` found no staging for the day,
 * 130 / 143 compact stopped by SIGINT / SIGTERM (no new partition started, running ones stopped before
 * their next write, leases released, work folder removed). A closed stdout (EPIPE, `compact … | head -2`)
 * stops the output only: the work goes on and the exit status is the work's.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { progressLine, summaryJson, summaryTable, table } from '../src/app/report.js';
import { runCompaction } from '../src/app/runCompaction.js';
import { runBackfill } from '../src/backfill/runBackfill.js';
import type { SourceReader } from '../src/backfill/SourceReader.js';
import type { RunSummary } from '../src/compaction/compactTenants.js';
import { type Config, type Env, loadConfig, parseTenantList } from '../src/config.js';
import { runDemo } from '../src/demo/runDemo.js';
import { ConfigError, errorMessage, RunAbortedError, UsageError } from '../src/errors.js';
import { describeFailures, ingestBatch } from '../src/ingest/ingestBatch.js';
import { cosmosDocumentChanges, dynamodbEventChanges } from '../src/ingest/sources.js';
import { writeSqlFiles } from '../src/sqlgen/generateSql.js';
import { SQL_TARGETS, type SqlTarget } from '../src/sqlgen/placeholders.js';
import { renderSql } from '../src/sqlgen/renderSql.js';
import { parseDate, targetDate } from '../src/time/jst.js';
import { createStore } from '../stores/createStore.js';

const USAGE = `usage:
  makoto-lake compact [DATE] [TENANTS] [--all-tenants] [--late] [--allow-empty] [--json]
      Compact one JST day (default: today in JST + TARGET_DATE_OFFSET) for TENANTS
      (comma list; default TENANT_ID, '*' or --all-tenants = every tenant in staging).
      --late also compacts every partition of TENANTS whose staging or analytics folder differs
      from its manifest, at any age (LATE_DATA_LOOKBACK_DAYS, default 0 = no bound, may limit
      the days checked): what the nightly Lambda / daily_batch always do.
      Exit 130/143 when stopped by SIGINT/SIGTERM (leases released, work folder removed).
      A named tenant with no staging for DATE (or no tenant at all with --all-tenants) exits 4,
      as capture may be broken; --allow-empty accepts an empty day (exit 0).
  makoto-lake ingest --source dynamodb|cosmos FILE [--lease NAME]
      Push a captured DynamoDB Streams event ({"Records":[...]}) or a JSON array of Cosmos
      change-feed documents into staging, through the same code as the cloud handlers.
  makoto-lake demo [--date DATE] [--tenants a,b,c] [--messages N]
      Generate a day of chat for three tenants, ingest, compact and show what the lake holds.
  makoto-lake sql --target athena|synapse [--out DIR]
      Print (or write to DIR) the Athena / Synapse DDL with \${S3_BUCKET_NAME} or
      \${AZURE_STORAGE_ACCOUNT}/\${AZURE_STORAGE_CONTAINER} filled in from the environment (docs/SQL.md).
  makoto-lake backfill --source cosmos DATE [TENANTS] [--json]
      Re-read a JST day's messages per tenant straight from the source (COSMOS_ENDPOINT, COSMOS_KEY,
      COSMOS_DATABASE, COSMOS_CONTAINER) into staging, when staging was lost or capture started late;
      then run compact. Captured versions always win over backfilled ones.

Storage: S3_BUCKET_NAME (S3), AZURE_STORAGE_CONNECTION_STRING (Blob), else DATA_DIR (default ./data).
Exit codes: 0 success; 1 some tenant or record failed (the others completed); 2 usage error;
  3 a partition is locked by another run (none failed; run again later); 4 no staging to compact.`;

/** The CLI's exit codes; a failure outranks a lock, a lock outranks an empty day. */
export const EXIT = { ok: 0, failed: 1, usage: 2, locked: 3, empty: 4 } as const;

type Out = { stdout: (text: string) => void; stderr: (text: string) => void };

let stdoutClosed = false;
const defaultOut: Out = {
  stdout: (t) => {
    if (!stdoutClosed) process.stdout.write(`${t}\n`);
  },
  stderr: (t) => process.stderr.write(`${t}\n`),
};

/**
 * A reader that goes away (`| head -2`) makes stdout writes fail with EPIPE, asynchronously. Unhandled,
 * that error ends the process mid-run; here it only stops the output, and stderr says so.
 */
let stdoutGuarded = false;
function guardStdout(): void {
  if (stdoutGuarded) return;
  stdoutGuarded = true;
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (stdoutClosed) return;
    stdoutClosed = true;
    if (error.code === 'EPIPE') {
      process.stderr.write('makoto-lake: stdout was closed by its reader (EPIPE); output stopped, the work goes on\n');
    } else {
      process.stderr.write(`makoto-lake: cannot write to stdout: ${error.message}\n`);
      process.exitCode = 1;
    }
  });
}

/** Runs the CLI; returns the exit code. */
export async function main(argv: readonly string[], env: Env, out: Out = defaultOut): Promise<number> {
  if (out === defaultOut) guardStdout();
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'compact':
        return await compact(rest, loadConfig(env), out);
      case 'ingest':
        return await ingest(rest, loadConfig(env), out);
      case 'demo':
        return await demo(rest, loadConfig(env), out);
      case 'sql':
        return await sql(rest, loadConfig(env), out);
      case 'backfill':
        return await backfill(rest, loadConfig(env), out);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        out.stdout(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (error) {
    if (error instanceof UsageError || error instanceof ConfigError) {
      out.stderr(`makoto-lake: ${error.message}\n\n${USAGE}`);
      return 2;
    }
    if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      out.stderr(`makoto-lake: ${(error as Error).message}\n\n${USAGE}`);
      return 2;
    }
    out.stderr(`makoto-lake: ${errorMessage(error)}`);
    return 1;
  }
}

async function compact(args: readonly string[], config: Config, out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      'all-tenants': { type: 'boolean' },
      json: { type: 'boolean' },
      late: { type: 'boolean' },
      'allow-empty': { type: 'boolean' },
    },
  });
  if (positionals.length > 2) throw new UsageError(`compact takes at most DATE and TENANTS, got ${positionals.length} arguments`);
  const [dateArg, tenantsArg] = positionals;
  const date = dateArg === undefined ? targetDate(Date.now(), config.targetDateOffset) : parseDate(dateArg, 'DATE');
  if (values['all-tenants'] && tenantsArg !== undefined) throw new UsageError('give TENANTS or --all-tenants, not both');
  const tenants = values['all-tenants']
    ? 'all'
    : tenantsArg === undefined
      ? config.tenants
      : parseTenantList(tenantsArg, 'TENANTS');
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
      onResult: (r) => out.stderr(progressLine(r)),
      signal: stop.signal,
    });
    if (values.json) out.stdout(JSON.stringify(summaryJson(summary), null, 2));
    else out.stdout(summaryTable(summary));
    const signal = stopped.signal();
    if (signal) {
      const count = (status: string) => summary.results.filter((r) => r.status === status).length;
      out.stderr(
        `makoto-lake: stopped by ${signal}: ${count('compacted')} compacted, ${count('failed') + count('locked')} failed or not started; leases released, work folder removed`,
      );
      return SIGNAL_EXIT[signal];
    }
    return compactExitCode(summary, date, values['allow-empty'] === true, out);
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

async function ingest(args: readonly string[], config: Config, out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: { source: { type: 'string' }, lease: { type: 'string' } },
  });
  if (values.source !== 'dynamodb' && values.source !== 'cosmos') {
    throw new UsageError(`--source must be dynamodb or cosmos, got ${JSON.stringify(values.source ?? null)}`);
  }
  if (positionals.length !== 1) throw new UsageError('ingest takes exactly one FILE');
  const file = positionals[0] as string;
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new UsageError(`cannot read ${file} as JSON: ${(error as Error).message}`, { cause: error });
  }
  const { changes, batchId } =
    values.source === 'dynamodb' ? dynamodbEventChanges(parsed) : cosmosDocumentChanges(parsed, values.lease ?? 'cli');
  const store = await createStore(config);
  const result = await ingestBatch(store, changes, { source: values.source, batchId, mapping: config.fieldMapping });
  out.stdout(
    table([
      ['received', 'staged', 'quarantined', 'objects', 'failed'],
      [result.received, result.staged, result.quarantined, result.written.length, result.failed.length],
    ]),
  );
  for (const w of result.written) out.stderr(`wrote ${w.key} (${w.records} records)`);
  if (result.failed.length > 0) {
    out.stderr(`failed: ${describeFailures(result)}`);
    return 1;
  }
  return 0;
}

async function demo(args: readonly string[], config: Config, out: Out): Promise<number> {
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

async function backfill(args: readonly string[], config: Config, out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: { source: { type: 'string' }, json: { type: 'boolean' } },
  });
  if (positionals.length < 1 || positionals.length > 2) throw new UsageError('backfill takes DATE and optional TENANTS');
  const date = parseDate(positionals[0] as string, 'DATE');
  const tenants = positionals[1] === undefined ? config.tenants : parseTenantList(positionals[1], 'TENANTS');
  if (tenants === 'all') throw new UsageError('backfill needs tenant ids (TENANTS or TENANT_ID), not *');
  const reader = await sourceReader(values.source, config);
  const store = await createStore(config);
  out.stderr(`backfilling ${date} for ${tenants.join(', ')} from ${reader.location} into ${store.location}`);
  const summary = await runBackfill({
    store,
    reader,
    date,
    tenants,
    mapping: config.fieldMapping,
    concurrency: config.compaction.concurrency,
    onResult: (r) =>
      out.stderr(
        r.status === 'ok'
          ? `✓ ${r.tenant} ${r.date} read ${r.read} → staged ${r.staged} in ${r.objects.length} objects, ${r.quarantined} quarantined, ${r.outside} outside the day`
          : `✗ ${r.tenant} ${r.date} failed: ${r.error}`,
      ),
  });
  if (values.json) out.stdout(JSON.stringify(summary, null, 2));
  else {
    out.stdout(
      table([
        ['tenant', 'dt', 'status', 'read', 'staged', 'quarantined', 'outside', 'objects', 'replaced'],
        ...summary.results.map((r) => [
          r.tenant,
          r.date,
          r.status,
          r.read,
          r.staged,
          r.quarantined,
          r.outside,
          r.objects.length,
          r.removed,
        ]),
      ]),
    );
  }
  return summary.ok ? 0 : 1;
}

/** The backfill source named by --source, built from config (the SDK is imported only when chosen). */
async function sourceReader(source: string | undefined, config: Config): Promise<SourceReader> {
  if (source === 'cosmos') {
    const { cosmosEndpoint, cosmosKey, cosmosDatabase, cosmosContainer } = config.azure;
    if (!cosmosEndpoint)
      throw new ConfigError('backfill --source cosmos needs COSMOS_ENDPOINT (and COSMOS_KEY or an Azure identity)');
    const { CosmosSourceReader } = await import('../stores/cosmos/CosmosSourceReader.js');
    return new CosmosSourceReader(
      { endpoint: cosmosEndpoint, key: cosmosKey, database: cosmosDatabase, container: cosmosContainer },
      { mapping: config.fieldMapping },
    );
  }
  throw new UsageError(`backfill --source must be cosmos, got ${JSON.stringify(source ?? null)}`);
}

async function sql(args: readonly string[], config: Config, out: Out): Promise<number> {
  const { values } = parseArgs({ args: [...args], options: { target: { type: 'string' }, out: { type: 'string' } } });
  if (!(SQL_TARGETS as readonly string[]).includes(values.target ?? '')) {
    throw new UsageError(`--target must be ${SQL_TARGETS.join(' or ')}, got ${JSON.stringify(values.target ?? null)}`);
  }
  const rendered = renderSql(config, values.target as SqlTarget);
  if (values.out === undefined) {
    out.stdout(rendered.script.trimEnd());
    return 0;
  }
  for (const path of await writeSqlFiles(values.out, rendered.files)) out.stderr(`wrote ${path}`);
  return 0;
}

function rowsTable(rows: Record<string, unknown>[]): string {
  const header = Object.keys(rows[0] ?? {});
  return table([
    header,
    ...rows.map((r) => header.map((h) => (typeof r[h] === 'number' ? (r[h] as number) : String(r[h] ?? '')))),
  ]);
}
