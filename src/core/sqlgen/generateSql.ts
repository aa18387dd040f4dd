/**
 * Every generated SQL file, and the check that the committed copies under sql/ are what the generator
 * produces today (so SQL and Parquet cannot drift apart).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { athenaDdlFiles } from './athenaDdl.js';
import type { GeneratedSqlFile } from './generatedSqlFile.js';
import type { SqlTarget } from './placeholders.js';
import { synapseDdlFiles } from './synapseDdl.js';

/** The generated DDL of one target, or of both, in the order it is run. */
export function generatedSqlFiles(target?: SqlTarget): GeneratedSqlFile[] {
  if (target === 'athena') return athenaDdlFiles();
  if (target === 'synapse') return synapseDdlFiles();
  return [...athenaDdlFiles(), ...synapseDdlFiles()];
}

export interface StaleSqlFile {
  readonly path: string;
  readonly problem: 'missing' | 'differs';
}

/** Generated files whose committed copy under `sqlDir` is missing or different (empty when up to date). */
export async function staleSqlFiles(
  sqlDir: string,
  files: readonly GeneratedSqlFile[] = generatedSqlFiles(),
): Promise<StaleSqlFile[]> {
  const stale: StaleSqlFile[] = [];
  for (const file of files) {
    let committed: string | undefined;
    try {
      committed = await readFile(join(sqlDir, file.path), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (committed === undefined) stale.push({ path: file.path, problem: 'missing' });
    else if (committed !== file.text) stale.push({ path: file.path, problem: 'differs' });
  }
  return stale;
}

/** Writes `files` below `dir` (creating folders); returns the paths written. */
export async function writeSqlFiles(dir: string, files: readonly GeneratedSqlFile[]): Promise<string[]> {
  const written: string[] = [];
  for (const file of files) {
    const path = join(dir, file.path);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, file.text);
    written.push(path);
  }
  return written;
}
