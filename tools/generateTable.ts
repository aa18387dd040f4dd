/**
 * A table of many tenant-days made fast, for the erase tests and the erase benchmark: one DuckDB
 * `COPY … PARTITION_BY (tenant_id, dt)` writes every partition's part at once (the compactor's Parquet options
 * and projection), then each part is published as the compactor publishes it — uploaded put-if-absent under
 * the attempt's name with its statistics (`partStats`), a run manifest per partition, and one table change per
 * partition with the same tags, txn and commit info as `commitPartition`'s, all handed to the table at once so
 * group commit writes them as a few versions. The result reads back through the product's snapshot reader
 * like a lake the compactor made (test/erase/eraseYear.test.ts checks it against a compacted partition).
 *
 * @example
 * await commitGeneratedTable({ store, db, workDirectory }, [ndjsonSource('rows.ndjson', "dt < '2025-02-01'"), ...]);
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MESSAGE_COLUMNS } from '../src/core/schema/messageSchema.js';
import { quoteIdent, quoteLiteral } from '../src/core/sql/quote.js';
import { analyticsKey, runManifestKey } from '../src/core/staging/layout.js';
import { newRunId } from '../src/core/time/runId.js';
import { mapLimit } from '../src/core/util/concurrency.js';
import { parquetProjectionSql } from '../src/engine/compactionSql.js';
import { DEFAULT_COMPACTION_SETTINGS } from '../src/engine/compactPartition.js';
import { partStats } from '../src/engine/partStats.js';
import { type LakeTableDeps, lakeTable, tableMetadata } from '../src/lake/lakeTable.js';
import type { PartitionManifest } from '../src/lake/manifest.js';
import { addOf, partitionId, TAG_MANIFEST, TAG_RUN } from '../src/lake/table/deltaTable.js';
import { withConnection } from '../src/ports/duckdb/openDuckDb.js';
import { createOnce, type ObjectInfo } from '../src/ports/store/ObjectStore.js';

/** The columns a source statement gives: the staging types of the schema, plus `tenant_id` and `dt` (VARCHAR). */
export const SOURCE_COLUMNS: Record<string, string> = {
  tenant_id: 'VARCHAR',
  dt: 'VARCHAR',
  ...Object.fromEntries(MESSAGE_COLUMNS.map((c) => [c.name, c.staging])),
};

/** `read_ndjson` of staged lines (StagedRecord) as a source statement, optionally only the rows `where` keeps. */
export function ndjsonSource(file: string, where?: string): string {
  const columns = Object.entries(SOURCE_COLUMNS)
    .map(([name, type]) => `${quoteLiteral(name)}: ${quoteLiteral(type)}`)
    .join(', ');
  const read = `SELECT * FROM read_ndjson(${quoteLiteral(file)}, columns = {${columns}}, format = 'newline_delimited')`;
  return where ? `${read} WHERE ${where}` : read;
}

export interface GeneratedTable {
  /** The table versions written (group commit: ceil(partitions / 1,000) + 1 for the first). */
  readonly versions: number[];
  /** Partitions published, `tenant_id=<t>/dt=<d>`, sorted. */
  readonly partitions: string[];
  readonly rows: number;
  readonly bytes: number;
}

export interface GenerateOptions {
  /** Staging objects each partition's run folded in (its manifest's `inputs`), by `partitionId`. */
  readonly inputs?: ReadonlyMap<string, readonly ObjectInfo[]>;
  readonly now?: number;
  /** Parallel uploads (default 8). */
  readonly concurrency?: number;
}

/**
 * Writes every (tenant_id, dt) of `sources` (SELECTs with SOURCE_COLUMNS, no partition in two of them; the rows
 * are taken as the current versions, one per message id) as the partition's one part, and commits them to the
 * table of `deps.store`.
 */
export async function commitGeneratedTable(
  deps: LakeTableDeps,
  sources: readonly string[],
  options: GenerateOptions = {},
): Promise<GeneratedTable> {
  const settings = DEFAULT_COMPACTION_SETTINGS;
  const out = join(deps.workDirectory, `generated-${process.pid}-${Date.now()}`);
  await mkdir(out, { recursive: true });
  try {
    // one statement per source: DuckDB's partitioned write keeps blocks for every partition a statement has
    // open at once (11 columns × 256 KB each), so a year of days for three tenants is written a few weeks at a time
    for (const [n, source] of sources.entries()) {
      await withConnection(deps.db, (c) =>
        c
          .run(
            `COPY (SELECT ${parquetProjectionSql()}, tenant_id, dt FROM (${source})) TO ${quoteLiteral(join(out, String(n)))}
          (FORMAT parquet, COMPRESSION ${settings.compression}, ROW_GROUP_SIZE ${settings.rowGroupSize},
           ROW_GROUP_SIZE_BYTES ${settings.rowGroupBytes}, PARTITION_BY (${quoteIdent('tenant_id')}, ${quoteIdent('dt')}),
           FILENAME_PATTERN 'part-{i}')`,
          )
          .then(() => undefined),
      );
    }
    const parts: { tenant: string; date: string; file: string }[] = [];
    for (const [t, d, folder] of await partitionFolders(out)) {
      const files = (await readdir(folder)).filter((f) => f.endsWith('.parquet'));
      if (files.length !== 1) throw new Error(`expected one part in ${t}/${d}, got ${files.length}`);
      parts.push({ tenant: t.slice('tenant_id='.length), date: d.slice('dt='.length), file: join(folder, files[0] as string) });
    }
    parts.sort((a, b) =>
      partitionId({ tenant_id: a.tenant, dt: a.date }).localeCompare(partitionId({ tenant_id: b.tenant, dt: b.date })),
    );

    const at = options.now ?? Date.now();
    const signal = new AbortController().signal;
    const table = lakeTable(deps);
    const readVersion = (await table.snapshot()).version;
    let rows = 0;
    let bytes = 0;
    // every part uploaded first, then every change handed over at once (group commit batches them)
    const changes = await mapLimit(parts, options.concurrency ?? 8, async ({ tenant, date, file }) => {
      const runId = newRunId(at);
      const stats = await partStats(deps.db, file);
      const key = analyticsKey(tenant, date, runId, 0);
      const info = await createOnce(deps.store, key, signal, (o) =>
        deps.store.putFile(key, file, { ...o, contentType: 'application/vnd.apache.parquet' }),
      );
      const n = (JSON.parse(stats) as { numRecords: number }).numRecords;
      rows += n;
      bytes += info.size;
      const partitionValues = { tenant_id: tenant, dt: date };
      const id = partitionId(partitionValues);
      const inputs = options.inputs?.get(id) ?? [];
      const manifestKey = runManifestKey(tenant, date, runId);
      const manifest: PartitionManifest = {
        version: 1,
        run_id: runId,
        tenant_id: tenant,
        dt: date,
        started_at: new Date(at).toISOString(),
        finished_at: new Date(at).toISOString(),
        inputs: inputs.map((i) => ({ key: i.key, size: i.size, etag: i.etag, last_modified: i.lastModified.toISOString() })),
        rows_read: n,
        rows_rejected: 0,
        objects_rejected: 0,
        duplicates_removed: 0,
        versions_superseded: 0,
        deletes_applied: 0,
        rows_written: n,
        outputs: [{ key: info.key, size: info.size, etag: info.etag }],
        quarantine: null,
        settings: { compression: settings.compression, target_file_bytes: settings.targetFileBytes },
        previous_run_id: null,
        rows_carried: 0,
        deletes_remembered: 0,
        published_inputs: [],
        tombstones: null,
      };
      await deps.store.putBytes(manifestKey, `${JSON.stringify(manifest, null, 2)}\n`, {
        contentType: 'application/json',
        ifNoneMatch: '*',
      });
      const add = addOf(info, partitionValues, stats, { [TAG_RUN]: runId, [TAG_MANIFEST]: manifestKey });
      return {
        partitions: [id],
        adds: [add],
        removes: [],
        txns: [{ appId: `makoto-lake/${id}`, version: at, lastUpdated: at }],
        info: {
          operationParameters: { mode: 'ReplacePartition', partition: id },
          makoto: { run_id: runId, tenant_id: tenant, dt: date, rows_written: n },
        },
      };
    });
    const versions = await Promise.all(changes.map((change) => table.commit(change, readVersion, () => tableMetadata(at))));
    return {
      versions: [...new Set(versions)].sort((a, b) => a - b),
      partitions: changes.map((c) => c.partitions[0] as string),
      rows,
      bytes,
    };
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

/** `[tenant folder, dt folder, path]` of every partition folder the statements wrote (`<n>/tenant_id=…/dt=…/`). */
async function partitionFolders(out: string): Promise<[string, string, string][]> {
  const found: [string, string, string][] = [];
  for (const n of await readdir(out))
    for (const t of await readdir(join(out, n)))
      for (const d of await readdir(join(out, n, t))) found.push([t, d, join(out, n, t, d)]);
  return found;
}
