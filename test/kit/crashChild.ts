/**
 * A compaction that kills itself: `node bin/run-ts.mjs test/kit/crashChild.ts ROOT WORK TENANT DATE
 * POINT NOW_MS` compacts one tenant-day of the LocalStore at ROOT (settings from CRASH_ENV: small Parquet
 * files, so the partition has several parts) and SIGKILLs its own process when the compaction reaches POINT:
 * a CompactionPhase, `mid-write` (while DuckDB is writing the Parquet), `mid-upload` (once the first new
 * part is in the store, the others not all) or `mid-commit` (every new file, the run manifest last, is in the
 * store; the table commit that would publish them is not written). Exit code 3 means the point was never
 * reached (the crash test must then fail, not pass silently).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { compactionSettings, loadConfig } from '../../src/core/config.js';
import { type CompactionPhase, compactPartition } from '../../src/engine/compactPartition.js';
import { openDuckDb } from '../../src/ports/duckdb/openDuckDb.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import type { ObjectInfo, PutOptions } from '../../src/ports/store/ObjectStore.js';

export const MISSED_EXIT_CODE = 3;

/** The environment of every crash-test run (child and nightly re-run). */
export const CRASH_ENV = { DUCKDB_MEMORY_LIMIT: '1GB', DUCKDB_THREADS: '1', COMPACT_CONCURRENCY: '1' };
/**
 * Parts far smaller than PARQUET_TARGET_FILE_MB's 1 MB minimum (the demo content compresses well), so every
 * partition has several: 32 KiB files of 250-row groups.
 */
export const CRASH_SETTINGS = {
  ...compactionSettings(loadConfig(CRASH_ENV)),
  targetFileBytes: 32 * 1024,
  rowGroupSize: 250,
};

/**
 * Dies right after the first object under `prefix` lands in the store: a new part (`analytics/`, only parts are
 * put from files there) or the run's manifest (`manifests/`, the last write before the table commit).
 */
class DyingStore extends LocalStore {
  constructor(
    root: string,
    private readonly prefix: string,
    private readonly die: () => void,
  ) {
    super(root);
  }
  override async putFile(key: string, path: string, options?: PutOptions): Promise<ObjectInfo> {
    const info = await super.putFile(key, path, options);
    if (key.startsWith(this.prefix)) this.die();
    return info;
  }
  override async putBytes(key: string, body: Uint8Array | string, options?: PutOptions): Promise<ObjectInfo> {
    const info = await super.putBytes(key, body, options);
    if (key.startsWith(this.prefix)) this.die();
    return info;
  }
}

/** Where the store itself kills the process (after the first write under the prefix). */
const DIE_AFTER_WRITE: Readonly<Record<string, string>> = { 'mid-upload': 'analytics/', 'mid-commit': 'manifests/' };

export async function main(argv: readonly string[]): Promise<number> {
  const [root, work, tenant, date, point, nowText] = argv;
  if (!root || !work || !tenant || !date || !point || !nowText) {
    process.stderr.write('usage: crashChild.ts ROOT WORK TENANT DATE POINT NOW_MS\n');
    return 2;
  }
  const now = Number(nowText);
  const db = await openDuckDb({ memoryLimit: '1GB', threads: 1, workDirectory: join(work, 'duckdb') });
  const partitions = join(work, 'partitions');
  const die = () => process.kill(process.pid, 'SIGKILL');
  await compactPartition(
    {
      store: DIE_AFTER_WRITE[point] ? new DyingStore(root, DIE_AFTER_WRITE[point], die) : new LocalStore(root),
      db,
      workDirectory: partitions,
      settings: CRASH_SETTINGS,
      now: () => now,
      onPhase: (phase: CompactionPhase) => {
        if (phase === point) die();
        if (point === 'mid-write' && phase === 'compacting') watchForParquet(partitions, die);
        if (point === 'mid-write' && phase === 'uploading') process.exit(MISSED_EXIT_CODE);
      },
    },
    tenant,
    date,
  );
  return MISSED_EXIT_CODE;
}

/** Kills the process as soon as DuckDB has created an output file in the partition's work folder. */
function watchForParquet(partitions: string, die: () => void): void {
  const timer = setInterval(async () => {
    try {
      for (const run of await readdir(partitions)) {
        const out = await readdir(join(partitions, run, 'out')).catch(() => []);
        if (out.length > 0) {
          clearInterval(timer);
          die();
        }
      }
    } catch {
      // the folder is being created; look again
    }
  }, 1);
}
