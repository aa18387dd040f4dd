/**
 * The compactor's door to the table: one DeltaTable per (DuckDB instance, store), shared by every partition
 * of a run so the snapshot is read once and brought forward by the commits after it; the table's metadata
 * from the one schema; and the conversion of a lake written by the previous release.
 */
import { randomUUID } from 'node:crypto';
import type { DuckDBInstance } from '@duckdb/node-api';
import { deltaSchemaString, PARTITION_COLUMNS } from '../core/schema/messageSchema.js';
import {
  COMPACTION_QUARANTINE_ROOT,
  COMPACTION_WORK_ROOT,
  MANIFEST_ROOT,
  partitionDateOf,
  TOMBSTONE_ROOT,
} from '../core/staging/layout.js';
import { PreconditionFailedError } from '../ports/store/errors.js';
import { getBytes, listAll, type ObjectStore } from '../ports/store/ObjectStore.js';
import { parseManifest } from './manifest.js';
import type { AddAction, DeltaAction, MetadataAction, PartitionValues } from './table/actions.js';
import { commitFileName, serialiseActions } from './table/actions.js';
import {
  DeltaTable,
  PROTOCOL,
  TABLE_ROOT,
  TAG_DELETES,
  TAG_MANIFEST,
  TAG_RUN,
  type TableSnapshot,
  tablePath,
} from './table/deltaTable.js';
import { type VacuumOptions, type VacuumReport, vacuum } from './table/vacuum.js';

export interface LakeTableDeps {
  readonly store: ObjectStore;
  readonly db: DuckDBInstance;
  readonly workDirectory: string;
  readonly log?: (event: string, fields: Record<string, unknown>) => void;
  readonly now?: () => number;
  /** A checkpoint every this many commits (Delta's default 10). */
  readonly checkpointInterval?: number;
  /** At most this many partitions in one table version (group commit; DeltaTable's default 1,000; 1 = one each). */
  readonly commitBatch?: number;
}

const tables = new WeakMap<DuckDBInstance, WeakMap<ObjectStore, DeltaTable>>();

/** The table of `deps.store`, shared by every caller with the same DuckDB instance and store. */
export function lakeTable(deps: LakeTableDeps): DeltaTable {
  const byStore = tables.get(deps.db) ?? new WeakMap<ObjectStore, DeltaTable>();
  tables.set(deps.db, byStore);
  let table = byStore.get(deps.store);
  if (!table) {
    table = new DeltaTable(deps.store, {
      db: deps.db,
      workDirectory: deps.workDirectory,
      ...(deps.checkpointInterval === undefined ? {} : { checkpointInterval: deps.checkpointInterval }),
      ...(deps.commitBatch === undefined ? {} : { maxBatch: deps.commitBatch }),
      ...(deps.now === undefined ? {} : { now: deps.now }),
      ...(deps.log === undefined ? {} : { log: deps.log }),
    });
    byStore.set(deps.store, table);
  }
  return table;
}

/** The table's metaData action for its first version: the one schema, partitioned by tenant and day. */
export function tableMetadata(now: number = Date.now()): MetadataAction {
  return {
    id: randomUUID(),
    name: 'messages',
    format: { provider: 'parquet', options: {} },
    schemaString: deltaSchemaString(),
    partitionColumns: PARTITION_COLUMNS.map((c) => c.name),
    createdTime: now,
    configuration: {},
  };
}

/**
 * The current snapshot (or, with `partition`, DeltaTable.partitionSnapshot); a lake written by the previous release (manifests, no log) is converted to the
 * table's version 0 first (convertLegacyLake).
 */
export async function currentSnapshot(deps: LakeTableDeps, partition?: PartitionValues): Promise<TableSnapshot> {
  const table = lakeTable(deps);
  const read = () => (partition ? table.partitionSnapshot(partition) : table.snapshot());
  const snapshot = await read();
  if (snapshot.version >= 0) return snapshot;
  if (await convertLegacyLake(deps.store, deps.now?.() ?? Date.now())) return read();
  return snapshot;
}

/**
 * Makes a lake of the previous release (per-partition manifests naming their parts and remembered-deletes
 * file) version 0 of the table, in place: no data file is rewritten; each partition's files are the ones its
 * manifest names. Idempotent and crash-safe: the only write is the put-if-absent of version 0, so a
 * second conversion (or a first compaction racing it) finds it there. Returns whether there was anything to
 * convert.
 */
export async function convertLegacyLake(store: ObjectStore, now: number): Promise<boolean> {
  const legacy = (await listAll(store, MANIFEST_ROOT)).filter((o) => /\/dt=\d{4}-\d{2}-\d{2}\.json$/.test(o.key));
  if (legacy.length === 0) return false;
  const adds: AddAction[] = [];
  for (const info of legacy) {
    const manifest = parseManifest(info.key, await getBytes(store, info.key));
    const tenant = manifest.tenant_id;
    const date = partitionDateOf(info.key) ?? manifest.dt;
    const tags: Record<string, string> = { [TAG_RUN]: manifest.run_id, [TAG_MANIFEST]: info.key };
    if (manifest.tombstones) tags[TAG_DELETES] = manifest.tombstones.key;
    for (const output of manifest.outputs) {
      adds.push({
        path: tablePath(output.key),
        partitionValues: { tenant_id: tenant, dt: date },
        size: output.size,
        modificationTime: Date.parse(manifest.finished_at) || now,
        dataChange: true,
        // per-file row counts are known only for a one-part partition; readers treat missing stats as unknown
        stats: manifest.outputs.length === 1 ? JSON.stringify({ numRecords: manifest.rows_written }) : null,
        tags,
      });
    }
  }
  const actions: DeltaAction[] = [
    { commitInfo: { timestamp: now, operation: 'CONVERT', engineInfo: 'makoto-lake', partitions: legacy.length } },
    { protocol: PROTOCOL },
    { metaData: tableMetadata(now) },
    ...adds.map((add) => ({ add })),
  ];
  try {
    await store.putBytes(`${TABLE_ROOT}${commitFileName(0)}`, serialiseActions(actions), {
      ifNoneMatch: '*',
      contentType: 'application/json',
    });
  } catch (error) {
    if (!(error instanceof PreconditionFailedError)) throw error;
  }
  return true;
}

/**
 * The lake's vacuum: the table's unreferenced files, plus, beside the table, run manifests, remembered-deletes
 * files and compaction quarantine files no retained version names and abandoned split work, all older than the
 * retention.
 * The planner's caches (`_index.json`) are kept: they are rebuilt from the log.
 */
export function vacuumLake(deps: LakeTableDeps, options: Omit<VacuumOptions, 'sideRoots' | 'keep'> = {}): Promise<VacuumReport> {
  return vacuum(deps.store, lakeTable(deps), {
    ...options,
    sideRoots: [TOMBSTONE_ROOT, MANIFEST_ROOT, COMPACTION_WORK_ROOT, COMPACTION_QUARANTINE_ROOT],
    keep: (key) => key.endsWith('/_index.json'),
  });
}
