import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Bytes of every file below `dir` (0 when it does not exist); files vanishing mid-walk are skipped. */
export async function diskUsage(dir: string): Promise<number> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  let total = 0;
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += await diskUsage(path);
    else
      total += await stat(path).then(
        (s) => s.size,
        () => 0,
      );
  }
  return total;
}
