/**
 * A tenant-day made to be split, for the orchestration tests (Step Functions, Azure queues): re-deliveries
 * and newer versions of one message in different staging objects, and the rows one single pass over the same
 * staging publishes – what the split must give exactly.
 */
import { join } from 'node:path';
import { loadConfig } from '../../src/core/config.js';
import { stagingKey } from '../../src/core/staging/layout.js';
import { gzipNdjson } from '../../src/core/staging/ndjson.js';
import { compactPartition, type PartitionResult } from '../../src/engine/compactPartition.js';
import { withCompactionDeps } from '../../src/jobs/workspace.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import type { ObjectStore } from '../../src/ports/store/ObjectStore.js';
import { stagedRecord } from './factories.js';
import { readPartition } from './pipeline.js';
import type { LakeRow } from './readParquet.js';

/** Message ids `m<from>` … `m<to - 1>`, each at sequence number `seq`. */
export const ids = (from: number, to: number, seq: number): [string, number][] =>
  Array.from({ length: to - from }, (_, i) => [`m${String(from + i).padStart(2, '0')}`, seq]);

/** One staging object of the given versions (message id, sequence number), into each store; returns its size. */
export async function stageVersions(
  stores: readonly ObjectStore[],
  tenant: string,
  date: string,
  name: string,
  versions: readonly [string, number][],
): Promise<number> {
  const body = gzipNdjson(
    versions.map(([id, seq], i) =>
      stagedRecord({
        tenant_id: tenant,
        dt: date,
        message_id: id,
        content: `${id} at ${seq}`,
        created_at: Date.parse(`${date}T03:00:00.000Z`) + i,
        source_seq: String(seq),
      }),
    ),
  );
  for (const store of stores) await store.putBytes(stagingKey(tenant, date, name), body);
  return body.length;
}

/**
 * Four staging objects: m00–m09 at 100; m05–m14 at 100 (m05–m09 delivered again); m00–m04 at 200 (newer);
 * m12–m14 at 150 and m00–m01 at 200 again. 30 rows read: 15 written, 7 duplicates, 8 superseded. Returns the
 * staging bytes (half of it as SPLIT_THRESHOLD_BYTES gives K = B = 4).
 */
export async function stageSplitDay(stores: readonly ObjectStore[], tenant: string, date: string): Promise<number> {
  const sizes = [
    await stageVersions(stores, tenant, date, 'a', ids(0, 10, 100)),
    await stageVersions(stores, tenant, date, 'b', ids(5, 15, 100)),
    await stageVersions(stores, tenant, date, 'c', ids(0, 5, 200)),
    await stageVersions(stores, tenant, date, 'd', [...ids(12, 15, 150), ...ids(0, 2, 200)]),
  ];
  return sizes.reduce((n, b) => n + b, 0);
}

/** The rows (message_id, source_seq) the split day publishes, in message order. */
export const SPLIT_DAY_VERSIONS = [...ids(0, 5, 200), ...ids(5, 12, 100), ...ids(12, 15, 150)].map(([id, seq]) => [
  id,
  String(seq),
]);

/** The same day staged in a local store and compacted in one pass (no split): its result and rows. */
export async function singlePassOfSplitDay(
  tenant: string,
  date: string,
  folder: string,
): Promise<{ result: PartitionResult; rows: LakeRow[] }> {
  const local = new LocalStore(join(folder, `single-${tenant}`));
  await stageSplitDay([local], tenant, date);
  const config = loadConfig({ DATA_DIR: local.root, TEMP_DIR: folder, DUCKDB_THREADS: '1' });
  const result = await withCompactionDeps(config, local, Date.now, (deps) => compactPartition(deps, tenant, date));
  return { result, rows: await readPartition(local, tenant, date, join(folder, `read-single-${tenant}`)) };
}
