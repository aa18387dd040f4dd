/**
 * A CLI split that kills itself: `node bin/run-ts.mjs test/kit/splitCrashChild.ts ROOT TEMP DATE TENANT
 * THRESHOLD POINT` runs the real `makoto-lake compact DATE TENANT` on the LocalStore at ROOT with
 * SPLIT_THRESHOLD_BYTES=THRESHOLD (so the day is compacted as a split, all its tasks in this process) and
 * SIGKILLs its own process right after the first write of POINT: `map` (a range's report: the maps are under
 * way) or `reduce` (a reduce's part placed in the partition's folder, before its report). The store the CLI
 * builds is a LocalStore; its writes are watched through the class. Exit code 3: the point was never reached.
 */
import { main as cli } from '../../compactor/cli.js';
import { ANALYTICS_ROOT, COMPACTION_WORK_ROOT } from '../../src/core/staging/layout.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import type { ObjectInfo, PutOptions } from '../../src/ports/store/ObjectStore.js';

export const MISSED_EXIT_CODE = 3;

const POINTS: Readonly<Record<string, (key: string) => boolean>> = {
  map: (key) => key.startsWith(COMPACTION_WORK_ROOT) && /\/range=\d+\/report\.json$/.test(key),
  reduce: (key) => key.startsWith(ANALYTICS_ROOT) && key.endsWith('.parquet'),
};

export async function main(argv: readonly string[]): Promise<number> {
  const [root, temp, date, tenant, threshold, point] = argv;
  const dies = point === undefined ? undefined : POINTS[point];
  if (!root || !temp || !date || !tenant || !threshold || !dies) {
    process.stderr.write('usage: splitCrashChild.ts ROOT TEMP DATE TENANT THRESHOLD map|reduce\n');
    return 2;
  }
  const putBytes = LocalStore.prototype.putBytes;
  const putFile = LocalStore.prototype.putFile;
  const die = (key: string) => {
    if (dies(key)) process.kill(process.pid, 'SIGKILL');
  };
  LocalStore.prototype.putBytes = async function (
    this: LocalStore,
    key: string,
    body: Uint8Array | string,
    options?: PutOptions,
  ) {
    const info: ObjectInfo = await putBytes.call(this, key, body, options);
    die(key);
    return info;
  };
  LocalStore.prototype.putFile = async function (this: LocalStore, key: string, path: string, options?: PutOptions) {
    const info: ObjectInfo = await putFile.call(this, key, path, options);
    die(key);
    return info;
  };
  await cli(
    ['compact', date, tenant],
    {
      DATA_DIR: root,
      TEMP_DIR: temp,
      SPLIT_THRESHOLD_BYTES: threshold,
      DUCKDB_THREADS: '1',
      DUCKDB_MEMORY_LIMIT: '512MB',
    },
    { stdout: () => {}, stderr: (text) => process.stderr.write(`${text}\n`) },
  );
  return MISSED_EXIT_CODE;
}
