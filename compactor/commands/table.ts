/**
 * `vacuum`, `convert` and `export`: the table's own maintenance. Thin: parse the arguments, open the store and
 * a DuckDB instance, call src/lake/lakeTable.ts or src/lake/table/.
 *
 *   makoto-lake vacuum [--retain HOURS] [--dry-run] [--json]
 *   makoto-lake convert
 *   makoto-lake export DIR [--as-of VERSION|TIMESTAMP] [--tenants a,b]
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Config } from '../../src/core/config.js';
import { UsageError } from '../../src/core/errors.js';
import { withCompactionDeps } from '../../src/jobs/workspace.js';
import { convertLegacyLake, lakeTable, vacuumLake } from '../../src/lake/lakeTable.js';
import { exportSnapshot } from '../../src/lake/table/exportSnapshot.js';
import { createStore } from '../../stores/createStore.js';
import { type Out, parseAsOf } from './args.js';

/** Runs `work` with the configured store, a DuckDB instance and a work folder, all released after (the compaction's own). */
async function withLake<T>(config: Config, work: (deps: Parameters<typeof lakeTable>[0]) => Promise<T>): Promise<T> {
  return withCompactionDeps(config, await createStore(config), Date.now, work);
}

/** The shortest retention vacuum accepts: longer than any compaction runs. */
const MIN_RETAIN_HOURS = 24;

/** `vacuum [--retain HOURS] [--dry-run] [--json]`: deletes what no retained version references (exit 0). */
export async function vacuumCommand(args: readonly string[], config: Config, out: Out): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: { retain: { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } },
  });
  const hours = values.retain === undefined ? 168 : Number(values.retain);
  // a shorter retention could delete the uploads of a compaction still running (a split runs for hours)
  if (!Number.isFinite(hours) || hours < MIN_RETAIN_HOURS)
    throw new UsageError(
      `--retain must be a number of hours, at least ${MIN_RETAIN_HOURS}, got ${JSON.stringify(values.retain)}`,
    );
  const report = await withLake(config, (deps) =>
    vacuumLake(deps, { retainMs: hours * 3_600_000, dryRun: values['dry-run'] ?? false }),
  );
  if (values.json) out.stdout(JSON.stringify(report));
  else {
    for (const key of report.deleted) out.stdout(`${report.dryRun ? 'would delete' : 'deleted'} ${key}`);
    out.stderr(
      `vacuum of table version ${report.version}: ${report.deleted.length} files (${report.deletedBytes} bytes)${report.dryRun ? ' would be' : ''} deleted, ${report.logFilesDeleted.length} log files; retention ${hours} h`,
    );
  }
  return 0;
}

/** `convert`: a lake of the previous release becomes version 0 of the table (idempotent). */
export async function convertCommand(_args: readonly string[], config: Config, out: Out): Promise<number> {
  await withLake(config, async (deps) => {
    const table = lakeTable(deps);
    const before = await table.snapshot();
    if (before.version >= 0) {
      out.stderr(`already a table (version ${before.version}): nothing to convert`);
      return;
    }
    const converted = await convertLegacyLake(deps.store, Date.now());
    const after = await table.snapshot();
    out.stderr(
      converted
        ? `converted: table version ${after.version}, ${after.files.size} files`
        : 'no manifests of the previous release: nothing to convert',
    );
  });
  return 0;
}

/**
 * `export DIR [--as-of VERSION|TIMESTAMP] [--tenants a,b]`: the files of one table version into DIR as
 * `tenant_id=<t>/dt=<d>/…parquet` (read with any Parquet reader, hive partitioning).
 */
export async function exportCommand(args: readonly string[], config: Config, out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: { 'as-of': { type: 'string' }, tenants: { type: 'string' } },
  });
  if (positionals.length !== 1)
    throw new UsageError('export takes one folder: makoto-lake export DIR [--as-of VERSION|TIMESTAMP]');
  const asOf = parseAsOf(values['as-of']);
  const tenants = values.tenants?.split(',').filter(Boolean);
  await withLake(config, async (deps) => {
    const snapshot = await lakeTable(deps).snapshot(asOf);
    const files = await exportSnapshot(deps.store, snapshot, resolve(positionals[0] as string), (add) =>
      tenants ? tenants.includes(add.partitionValues.tenant_id ?? '') : true,
    );
    out.stderr(`exported table version ${snapshot.version}: ${files.length} files to ${resolve(positionals[0] as string)}`);
  });
  return 0;
}
