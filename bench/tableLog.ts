/**
 * `--scenario table`: the Delta log at the scale of the nightly fan-out and of a year.
 *
 * - night: `partitions` tenant-days committed by `writers` concurrent writers, each with its own DeltaTable
 *   (as separate Lambda invocations have), each commit replacing one partition's file: commits, commits that
 *   met a newer version and were retried at the next one, conflicts, checkpoints, wall time.
 * - year: the snapshot a reader loads after 365 nights × `partitions` tenants (one live file per tenant-day,
 *   the last 7 nights' replaced files kept as removes): a checkpoint of that state, written with the table's
 *   own codec, plus the 9 commits after it; load time of a cold snapshot against a bare DuckDB count of the
 *   same checkpoint file in the same run; log size per night.
 */
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { quoteLiteral } from '../src/core/sql/quote.js';
import { addDays } from '../src/core/time/jst.js';
import { tableMetadata } from '../src/lake/lakeTable.js';
import {
  type AddAction,
  checkpointFileName,
  commitFileName,
  type DeltaAction,
  LAST_CHECKPOINT_NAME,
  serialiseActions,
} from '../src/lake/table/actions.js';
import { writeCheckpointFile } from '../src/lake/table/checkpointFile.js';
import { DeltaTable, PROTOCOL, partitionFiles, TABLE_ROOT } from '../src/lake/table/deltaTable.js';
import { openDuckDb, withConnection } from '../src/ports/duckdb/openDuckDb.js';
import { LocalStore } from '../src/ports/store/LocalStore.js';
import { listAll } from '../src/ports/store/ObjectStore.js';

type Row = Record<string, unknown>;

const add = (tenant: string, date: string, name: string, at: number): AddAction => ({
  path: `tenant_id=${tenant}/dt=${date}/part-0-${name}.parquet`,
  partitionValues: { tenant_id: tenant, dt: date },
  size: 40_000,
  modificationTime: at,
  dataChange: true,
  stats: JSON.stringify({
    numRecords: 1000,
    minValues: { created_at: `${date}T00:00:00.000Z`, message_id: 'm0000', conversation_id: 'c0', sender_id: 'u0' },
    maxValues: { created_at: `${date}T14:59:59.999Z`, message_id: 'm0999', conversation_id: 'c9', sender_id: 'u9' },
    nullCount: { created_at: 0, message_id: 0, conversation_id: 0, sender_id: 0 },
  }),
  tags: {
    'makoto.run_id': name,
    'makoto.manifest': `manifests/messages/tenant_id=${tenant}/dt=${date}/${name}.json`,
  },
});

const tenantName = (i: number) => `t${String(i).padStart(4, '0')}`;

/** One night: `partitions` commits by `writers` concurrent writers into the table under `root`. */
export async function night(root: string, partitions: number, writers: number, checkpointInterval: number): Promise<Row> {
  const store = new LocalStore(root);
  const date = '2025-08-11';
  let retried = 0;
  let conflicts = 0;
  let checkpoints = 0;
  const log = (event: string) => {
    if (event === 'table.commit_retried') retried++;
    if (event === 'table.checkpointed') checkpoints++;
  };
  const queue = Array.from({ length: partitions }, (_, i) => tenantName(i));
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: writers }, async () => {
      const table = new DeltaTable(store, { checkpointInterval, log });
      for (let tenant = queue.shift(); tenant !== undefined; tenant = queue.shift()) {
        const snapshot = await table.snapshot();
        try {
          await table.commit(
            {
              partitions: [`tenant_id=${tenant}/dt=${date}`],
              adds: [add(tenant, date, `night-${tenant}`, Date.now())],
              removes: partitionFiles(snapshot, tenant, date).map((f) => ({
                path: f.path,
                deletionTimestamp: Date.now(),
                dataChange: true,
              })),
              txns: [],
              info: {},
            },
            snapshot.version,
            () => tableMetadata(),
          );
        } catch {
          conflicts++;
        }
      }
    }),
  );
  const wallS = (performance.now() - t0) / 1000;
  const logFiles = await listAll(store, `${TABLE_ROOT}_delta_log/`);
  return {
    partitions,
    writers,
    checkpointInterval,
    commits: logFiles.filter((o) => o.key.endsWith('.json') && !o.key.endsWith('_last_checkpoint')).length,
    retriedAtNextVersion: retried,
    conflicts,
    checkpoints,
    wallS: Number(wallS.toFixed(2)),
    commitsPerS: Number((partitions / wallS).toFixed(1)),
    logBytes: logFiles.reduce((n, o) => n + o.size, 0),
  };
}

/** The snapshot after a simulated year: a checkpoint of 365 × `partitions` live files, and 9 commits after it. */
export async function year(root: string, partitions: number, workDirectory: string): Promise<Row> {
  const store = new LocalStore(root);
  const at = Date.now();
  const nights = 365;
  const version = nights * partitions - 9;
  const actions: DeltaAction[] = [{ protocol: PROTOCOL }, { metaData: tableMetadata(at) }];
  for (let d = 0; d < nights; d++) {
    const date = addDays('2025-01-01', d);
    for (let t = 0; t < partitions; t++) actions.push({ add: add(tenantName(t), date, `y${d}-${t}`, at) });
  }
  // the last 7 nights' replaced files: still referenced for time travel
  for (let d = nights - 7; d < nights; d++) {
    const date = addDays('2025-01-01', d);
    for (let t = 0; t < partitions; t++) {
      actions.push({
        remove: {
          path: `tenant_id=${tenantName(t)}/dt=${date}/part-0-old-${d}-${t}.parquet`,
          deletionTimestamp: at,
          dataChange: true,
        },
      });
    }
  }
  await mkdir(join(root, TABLE_ROOT, '_delta_log'), { recursive: true });
  const checkpoint = join(root, TABLE_ROOT, checkpointFileName(version));
  const db = await openDuckDb({ memoryLimit: '1GB', threads: 2, workDirectory });
  try {
    const w0 = performance.now();
    await writeCheckpointFile(db, actions, checkpoint);
    const writeS = (performance.now() - w0) / 1000;
    await store.putBytes(`${TABLE_ROOT}${LAST_CHECKPOINT_NAME}`, JSON.stringify({ version, size: actions.length }));
    for (let v = version + 1; v <= version + 9; v++) {
      const tenant = tenantName(v % partitions);
      await store.putBytes(
        `${TABLE_ROOT}${commitFileName(v)}`,
        serialiseActions([{ commitInfo: { timestamp: at } }, { add: add(tenant, '2025-12-31', `late-${v}`, at) }]),
      );
    }
    const l0 = performance.now();
    const snapshot = await new DeltaTable(store, { db, workDirectory }).snapshot();
    const loadS = (performance.now() - l0) / 1000;
    const p0 = performance.now();
    // a tenant in the middle of the table (any `--tenants`, 1 included)
    const probe = tenantName(Math.floor(partitions / 2));
    const one = await new DeltaTable(store, { db, workDirectory }).partitionSnapshot({ tenant_id: probe, dt: '2025-06-01' });
    const partitionLoadS = (performance.now() - p0) / 1000;
    if (partitionFiles(one, probe, '2025-06-01').length !== 1) throw new Error('the partition snapshot lost its file');
    const b0 = performance.now();
    await withConnection(db, (c) => c.run(`SELECT count(*) FROM read_parquet(${quoteLiteral(checkpoint)})`));
    const bareS = (performance.now() - b0) / 1000;
    return {
      nights,
      partitions,
      version: snapshot.version,
      liveFiles: snapshot.files.size,
      checkpointActions: actions.length,
      checkpointMB: Number(((await stat(checkpoint)).size / 1e6).toFixed(1)),
      checkpointWriteS: Number(writeS.toFixed(2)),
      snapshotLoadS: Number(loadS.toFixed(2)),
      partitionSnapshotLoadS: Number(partitionLoadS.toFixed(2)),
      bareCountS: Number(bareS.toFixed(3)),
      loadVsBareCount: Number((loadS / bareS).toFixed(1)),
    };
  } finally {
    db.closeSync();
  }
}
