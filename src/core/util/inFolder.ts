import { mkdir } from 'node:fs/promises';

/**
 * Runs `work`, which creates something in `folder`; when the folder is not there (ENOENT), makes it (with its
 * parents) and runs `work` once more. Instead of a `mkdir -p` before every write: the folder usually exists.
 */
export async function inFolder<T>(folder: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if ((error as NodeJS.ErrnoException)?.code !== 'ENOENT') throw error;
    await mkdir(folder, { recursive: true });
    return work();
  }
}
