import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import { quoteLiteral } from '../../src/core/sql/quote.js';
import { analyticsPrefix, stagingPrefix } from '../../src/core/staging/layout.js';
import type { RunSummary } from '../../src/engine/compactTenants.js';
import { runCompaction } from '../../src/jobs/runCompaction.js';
import { DeltaTable, partitionFiles, tableKey } from '../../src/lake/table/deltaTable.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { listAll, type ObjectInfo } from '../../src/ports/store/ObjectStore.js';
import { generateStaging, type StagingStats } from '../kit/generateStaging.js';
import { tempDir } from '../kit/tempDir.js';

const DATE = '2025-08-11';
const TENANT = 'big-tenant';

let dir: Awaited<ReturnType<typeof tempDir>>;
let stats: StagingStats;
let store: LocalStore;

beforeAll(async () => {
  dir = await tempDir('makoto-lake-bounds-');
  store = new LocalStore(join(dir.path, 'data'));
  // more than 150 MB of NDJSON (gzip about 40 MB): more than the memory limits below
  stats = await generateStaging({
    root: store.root,
    tenant: TENANT,
    date: DATE,
    messages: 75_000,
    contentBytes: [1600, 2400],
    batch: [5_000, 10_000],
  });
}, 240_000); // 150 MB of NDJSON: minutes on a loaded machine
afterAll(() => dir.cleanup());

/**
 * The memory limit is set on the loaded config: DUCKDB_MEMORY_LIMIT refuses less than 128MB at start-up, but a
 * limit derived at run time (the Lambda's, from its memory size) can still be too small.
 */
const compact = (memory: string, tempDirName: string, threads = 2) => {
  const config = loadConfig({ DATA_DIR: store.root, TEMP_DIR: join(dir.path, tempDirName), DUCKDB_THREADS: String(threads) });
  return runCompaction({
    store,
    config: { ...config, duckdb: { ...config.duckdb, memoryLimit: memory } },
    date: DATE,
    tenants: [TENANT],
  });
};

const entries = (path: string) => readdir(path).catch(() => [] as string[]);

/** The partition's files in the table's current version (what a Delta reader reads). */
const versionFiles = async () => partitionFiles(await new DeltaTable(store, {}).snapshot(), TENANT, DATE);

/**
 * Rows and distinct message ids in the partition as the table's current version names it, counted by DuckDB
 * (no 150 MB read into JS). A re-compaction leaves the replaced parts in the folder until the vacuum.
 */
async function partitionCounts(): Promise<{ rows: number; ids: number }> {
  const files = (await versionFiles()).map((a) => join(store.root, tableKey(a.path)));
  if (files.length === 0) return { rows: 0, ids: 0 };
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    const reader = await c.runAndReadAll(
      `SELECT count(*)::INTEGER AS rows, count(DISTINCT message_id)::INTEGER AS ids FROM read_parquet([${files.map(quoteLiteral).join(', ')}])`,
    );
    return reader.getRowObjectsJS()[0] as { rows: number; ids: number };
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

async function stagingBytes(): Promise<number> {
  let bytes = 0;
  for (const o of await listAll(store, stagingPrefix(TENANT, DATE)))
    bytes += gunzipSync(await readFile(join(store.root, o.key))).length;
  return bytes;
}

describe('resource bounds', () => {
  it('the staging day is larger than 150 MB of NDJSON', async () => {
    expect(await stagingBytes()).toBeGreaterThan(150 * 1024 * 1024);
  });

  it('a day compacts exactly with a bounded DuckDB (512MB, 2 threads) and the per-run temp folder is removed', async () => {
    await mkdir(join(dir.path, 'tmp-ok'), { recursive: true });
    const summary = await compact('512MB', 'tmp-ok');
    expect(summary.results.map((r) => [r.status, r.rowsWritten, r.error])).toStrictEqual([
      ['compacted', stats.expectedRows, undefined],
    ]);
    expect(await partitionCounts()).toStrictEqual({ rows: stats.expectedRows, ids: stats.expectedRows });
    expect(await entries(join(dir.path, 'tmp-ok'))).toStrictEqual([]);
  });

  // DuckDB needs roughly 64-100 MB per thread whatever the day's size (JSON reader buffers, one Parquet
  // row group written and one read back, window blocks); past that, a day of any size spills to TEMP_DIR.
  describe('under a 128MB memory limit with one thread, smaller than the day', () => {
    let first: RunSummary;
    let again: RunSummary;
    let afterFirst: { rows: number; ids: number };
    let firstFiles: string[];
    beforeAll(async () => {
      await mkdir(join(dir.path, 'tmp-small'), { recursive: true });
      // a first compaction of the day, then a re-compaction: it merges the published rows with the whole
      // staging day again (every staging row becomes a duplicate of a published one)
      for (const prefix of ['analytics/', 'manifests/', 'tombstones/']) {
        for (const o of await listAll(store, prefix)) await store.delete(o.key);
      }
      first = await compact('128MB', 'tmp-small', 1);
      afterFirst = await partitionCounts();
      firstFiles = (await versionFiles()).map((a) => tableKey(a.path));
      again = await compact('128MB', 'tmp-small', 1);
    }, 120_000);

    it('a day larger than the limit completes by spilling, rows exact', async () => {
      expect(first.results.map((r) => [r.status, r.rowsWritten, r.error])).toStrictEqual([
        ['compacted', stats.expectedRows, undefined],
      ]);
      expect(afterFirst).toStrictEqual({ rows: stats.expectedRows, ids: stats.expectedRows });
      expect(await entries(join(dir.path, 'tmp-small'))).toStrictEqual([]);
    });

    it('re-compacting it over its published parts also fits, rows exact', async () => {
      expect(again.results.map((r) => [r.status, r.rowsWritten, r.rowsCarried, r.error])).toStrictEqual([
        ['compacted', stats.expectedRows, stats.expectedRows, undefined],
      ]);
      expect(await partitionCounts()).toStrictEqual({ rows: stats.expectedRows, ids: stats.expectedRows });
      // the re-compaction published new parts in one commit; the first run's stay in the folder, unread, until the vacuum
      const againFiles = (await versionFiles()).map((a) => tableKey(a.path));
      expect(againFiles.filter((key) => firstFiles.includes(key))).toStrictEqual([]);
      expect((await listAll(store, analyticsPrefix(TENANT, DATE))).map((o) => o.key).sort()).toStrictEqual(
        [...firstFiles, ...againFiles].sort(),
      );
    });
  });

  describe('under a 16MB memory limit, too small for DuckDB to run at all', () => {
    let summary: RunSummary;
    let before: ObjectInfo[];
    let versionBefore: number;
    beforeAll(async () => {
      await mkdir(join(dir.path, 'tmp-tiny'), { recursive: true });
      before = await listAll(store, analyticsPrefix(TENANT, DATE));
      versionBefore = (await new DeltaTable(store, {}).snapshot()).version;
      summary = await compact('16MB', 'tmp-tiny');
    }, 60_000);

    it('the failure is reported clearly (not taken for bad input), the partition is untouched and the temp folder removed', async () => {
      expect(summary.results.map((r) => [r.status, r.rowsRejected])).toStrictEqual([['failed', 0]]);
      expect(summary.results[0]?.error).toMatch(/^compaction of tenant big-tenant for 2025-08-11 failed: Out of Memory Error: /);
      expect(await listAll(store, analyticsPrefix(TENANT, DATE))).toStrictEqual(before);
      expect((await new DeltaTable(store, {}).snapshot()).version).toBe(versionBefore);
      expect(await entries(join(dir.path, 'tmp-tiny'))).toStrictEqual([]);
    });
  });
});
