/**
 * `backfill`: a JST day's messages per tenant re-read straight from the source (a Cosmos DB container, a
 * DynamoDB table, or a DynamoDB export to S3) into staging.
 *
 *   makoto-lake backfill --source cosmos|dynamodb DATE [TENANTS] [--restart] [--data-dir DIR] [--json]
 *   makoto-lake backfill --source dynamodb [DATE] [TENANTS] --from-export PREFIX [--data-dir DIR] [--json]
 */
import { parseArgs } from 'node:util';
import { DynamoExportReader } from '../../src/capture/backfill/DynamoExportReader.js';
import {
  type BackfillProgress,
  runBackfill,
  runExportBackfill,
  type TenantBackfillResult,
} from '../../src/capture/backfill/runBackfill.js';
import { quarantineLines } from '../../src/capture/ingest/quarantineSummary.js';
import { stagedDaysLines } from '../../src/capture/ingest/stagedDays.js';
import { type Config, parseTenantList } from '../../src/core/config.js';
import { ConfigError, UsageError } from '../../src/core/errors.js';
import { parseDate } from '../../src/core/time/jst.js';
import { offboardedTenants } from '../../src/lake/offboarded.js';
import { table } from '../../src/ops/report.js';
import { isStreamingReader, type SourceReader } from '../../src/ports/SourceReader.js';
import type { ObjectStore } from '../../src/ports/store/ObjectStore.js';
import { createStore } from '../../stores/createStore.js';
import { chosenStore, type Out } from './args.js';

export async function backfillCommand(args: readonly string[], loaded: Config, out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      source: { type: 'string' },
      json: { type: 'boolean' },
      'from-export': { type: 'string' },
      restart: { type: 'boolean' },
      'data-dir': { type: 'string' },
    },
  });
  // From an export, DATE is optional (every day the export holds): a first positional that is no date is TENANTS.
  const fromExport = values['from-export'] !== undefined;
  const dated = !fromExport || /^\d{4}-\d{2}-\d{2}$/.test(positionals[0] ?? '');
  if (fromExport && !dated && positionals.length > 1) throw new UsageError('backfill takes [DATE] and optional TENANTS');
  if (dated && (positionals.length < 1 || positionals.length > 2))
    throw new UsageError('backfill takes DATE and optional TENANTS');
  const date = dated ? parseDate(positionals[0] as string, 'DATE') : undefined;
  const tenantArg = dated ? positionals[1] : positionals[0];
  const tenants = tenantArg === undefined ? loaded.tenants : parseTenantList(tenantArg, 'TENANTS');
  // A table or container is read per tenant; an export is read whole anyway, so it can stage every tenant.
  if (tenants === 'all' && !fromExport) {
    throw new UsageError('backfill needs tenant ids (TENANTS or TENANT_ID), not * (every tenant: only with --from-export)');
  }
  if (values.source !== 'cosmos' && values.source !== 'dynamodb') {
    throw new UsageError(`backfill --source must be cosmos or dynamodb, got ${JSON.stringify(values.source ?? null)}`);
  }
  if (fromExport && values.source !== 'dynamodb') throw new UsageError('--from-export needs --source dynamodb');
  const config = chosenStore(
    loaded,
    values['data-dir'],
    `backfill stages what it reads from ${backfillSourceName(values.source, values['from-export'], loaded)}`,
  );
  const store = await createStore(config);
  const reader = await sourceReader(values.source, values['from-export'], config, store);
  out.stderr(
    `backfilling ${date ?? 'every day'} for ${tenants === 'all' ? 'every tenant' : tenants.join(', ')} from ${reader.location} into ${store.location}`,
  );
  const options = {
    store,
    mapping: config.fieldMapping,
    refused: await offboardedTenants(store),
    concurrency: config.compaction.concurrency,
    workDirectory: config.tempDir,
    onProgress: (p: BackfillProgress) =>
      out.stderr(
        `… ${p.tenant} ${p.date}: read ${p.read}, matched ${p.matched}, staged ${p.staged}${noTenantNote(p.noTenant)}${p.consumedCapacity > 0 ? `, ${p.consumedCapacity} RCU` : ''}`,
      ),
    onResult: (r: TenantBackfillResult) =>
      out.stderr(
        r.status === 'ok'
          ? `✓ ${r.tenant} ${r.date} read ${r.read}, matched ${r.matched} → staged ${r.staged} in ${r.objects.length} objects, ${r.quarantined} quarantined${r.noTenant > 0 ? ` (${r.noTenant} matched no tenant)` : ''}, ${r.outside} outside the day${r.resumedAfterObject === undefined ? '' : ` (resumed after object ${r.resumedAfterObject})`}`
          : `✗ ${r.tenant} ${r.date} failed: ${r.error} (run the same command again to resume)`,
      ),
  };
  // An export is read in one streamed pass for every tenant-day; a table or container per tenant-day.
  const summary = isStreamingReader(reader)
    ? await runExportBackfill({ ...options, tenants, reader, date })
    : await runBackfill({
        ...options,
        tenants: tenants as readonly string[],
        reader,
        date: date as string,
        restart: values.restart === true,
      });
  if (values.json) out.stdout(JSON.stringify(summary, null, 2));
  else {
    out.stdout(
      table([
        ['tenant', 'dt', 'status', 'read', 'matched', 'staged', 'quarantined', 'no tenant', 'outside', 'objects', 'replaced'],
        ...summary.results.map((r) => [
          r.tenant,
          r.date,
          r.status,
          r.read,
          r.matched,
          r.staged,
          r.quarantined,
          r.noTenant,
          r.outside,
          r.objects.length,
          r.removed,
        ]),
      ]),
    );
  }
  for (const line of stagedDaysLines(summary.days)) out.stderr(line);
  for (const line of quarantineLines(summary.quarantine)) out.stderr(line);
  return summary.ok && summary.quarantined === 0 ? 0 : 1;
}

/** What a backfill reads, for the refusal without a store. */
function backfillSourceName(source: string | undefined, fromExport: string | undefined, config: Config): string {
  if (fromExport !== undefined) return `the DynamoDB export ${fromExport}`;
  if (source === 'cosmos') return `the Cosmos DB container ${config.azure.cosmosContainer}`;
  if (source === 'dynamodb') return `the DynamoDB table ${config.aws.tableName ?? '(DYNAMODB_TABLE_NAME)'}`;
  return 'a cloud source';
}

/** `, N matched no tenant (quarantined)` when a backfill read such items (only the first tenant's pass does). */
function noTenantNote(count: number): string {
  return count > 0 ? `, ${count} matched no tenant (quarantined)` : '';
}

/** The backfill source named by --source, built from config (the SDK is imported only when chosen). */
async function sourceReader(
  source: string | undefined,
  fromExport: string | undefined,
  config: Config,
  store: ObjectStore,
): Promise<SourceReader> {
  if (fromExport !== undefined && source !== 'dynamodb') throw new UsageError('--from-export needs --source dynamodb');
  if (source === 'cosmos') {
    const { cosmosEndpoint, cosmosKey, cosmosDatabase, cosmosContainer } = config.azure;
    if (!cosmosEndpoint)
      throw new ConfigError('backfill --source cosmos needs COSMOS_ENDPOINT (and COSMOS_KEY or an Azure identity)');
    const { CosmosSourceReader } = await import('../../stores/cosmos/CosmosSourceReader.js');
    return new CosmosSourceReader(
      { endpoint: cosmosEndpoint, key: cosmosKey, database: cosmosDatabase, container: cosmosContainer },
      { mapping: config.fieldMapping },
    );
  }
  if (source === 'dynamodb') {
    if (fromExport !== undefined) {
      if (fromExport.trim() === '') throw new UsageError('--from-export needs the export PREFIX in the store');
      return new DynamoExportReader(store, fromExport, { mapping: config.fieldMapping });
    }
    if (!config.aws.tableName)
      throw new ConfigError('backfill --source dynamodb needs DYNAMODB_TABLE_NAME (or --from-export PREFIX)');
    const { DynamoTableReader } = await import('../../stores/dynamodb/DynamoTableReader.js');
    return new DynamoTableReader({
      table: config.aws.tableName,
      region: config.aws.region,
      endpoint: config.aws.dynamodbEndpoint,
      mapping: config.fieldMapping,
      maxRcu: config.aws.backfillMaxRcu,
    });
  }
  throw new UsageError(`backfill --source must be cosmos or dynamodb, got ${JSON.stringify(source ?? null)}`);
}
