/**
 * What a job needs on this machine, created and released in one place: a work folder under TEMP_DIR (stale
 * ones of killed runs removed first) and one DuckDB instance. Every task that reads or writes the table runs
 * in it – a one-process run, a fan-out job or split task, the privacy step, erase and the table commands.
 */
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type Config, compactionSettings } from '../core/config.js';
import type { CompactionDeps } from '../engine/compactPartition.js';
import { openDuckDb } from '../ports/duckdb/openDuckDb.js';
import type { ObjectStore } from '../ports/store/ObjectStore.js';

export const WORK_PREFIX = 'makoto-lake-';
/** Far longer than any run: a Lambda lasts 15 minutes. */
const STALE_WORK_MS = 6 * 60 * 60 * 1000;

/**
 * Runs `work` with a work folder and a DuckDB instance, both released whatever happens. The deps carry the
 * config's compaction settings; a caller adds what only it has (a stop signal, an engine log, table options).
 */
export async function withCompactionDeps<T>(
  config: Config,
  store: ObjectStore,
  now: () => number,
  work: (deps: CompactionDeps) => Promise<T>,
): Promise<T> {
  await mkdir(config.tempDir, { recursive: true });
  await removeStaleWorkFolders(config.tempDir, now());
  const folder = await mkdtemp(join(config.tempDir, WORK_PREFIX));
  try {
    const db = await openDuckDb({ ...config.duckdb, workDirectory: folder });
    try {
      return await work({ store, db, workDirectory: join(folder, 'partitions'), settings: compactionSettings(config), now });
    } finally {
      db.closeSync();
    }
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

/**
 * A killed run (SIGKILL, OOM killer, a host that stopped) cannot remove its work folder; on a VM or a
 * laptop they would pile up with downloaded staging and spill files. Each run removes the ones older than
 * six hours.
 */
export async function removeStaleWorkFolders(tempDir: string, now: number): Promise<void> {
  const names = await readdir(tempDir).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.startsWith(WORK_PREFIX))) {
    const path = join(tempDir, name);
    const modified = await stat(path).then(
      (s) => s.mtimeMs,
      () => now,
    );
    if (now - modified > STALE_WORK_MS) await rm(path, { recursive: true, force: true });
  }
}
