/**
 * A compaction that kills itself: `node bin/run-ts.mjs test/kit/crashChild.ts ROOT WORK TENANT DATE
 * POINT NOW_MS` compacts one tenant-day of the LocalStore at ROOT and SIGKILLs its own process when the
 * compaction reaches POINT (a CompactionPhase, or `mid-write`: while DuckDB is writing the Parquet).
 * Exit code 3 means the point was never reached (the crash test must then fail, not pass silently).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type CompactionPhase, compactPartition } from '../../src/compaction/compactPartition.js';
import { openDuckDb } from '../../src/duckdb/openDuckDb.js';
import { LocalStore } from '../../src/store/LocalStore.js';

export const MISSED_EXIT_CODE = 3;

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
      store: new LocalStore(root),
      db,
      workDirectory: partitions,
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
