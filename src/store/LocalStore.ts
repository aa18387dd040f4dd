import { createHash, randomUUID } from 'node:crypto';
import type { Stats } from 'node:fs';
import { copyFile, link, mkdir, open, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { ObjectNotFoundError, PreconditionFailedError, StoreError } from './errors.js';
import type { ObjectInfo, ObjectStore, PutOptions } from './ObjectStore.js';

const TEMP_MARK = '.tmp-';

/**
 * A plain directory as the object store: the embedded default (`DATA_DIR`). Writes go to a hidden
 * temporary file and are renamed into place, so a reader sees the old or the new object, never half.
 * Conditional writes are exact for ifNoneMatch (an atomic hard link) and best effort for ifMatch.
 */
export class LocalStore implements ObjectStore {
  readonly location: string;

  constructor(readonly root: string) {
    this.location = `file://${root}`;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const keys: string[] = [];
    const base = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/') + 1) : '';
    await this.walk(this.path(base || '.', true), keys);
    keys.sort();
    for (const key of keys) {
      if (!key.startsWith(prefix)) continue;
      const info = await this.head(key);
      if (info) yield info;
    }
  }

  async *listFolders(prefix: string): AsyncIterable<string> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(this.path(prefix || '.', true), { withFileTypes: true });
    } catch (error) {
      if (isNotFound(error)) return;
      throw error;
    }
    for (const name of entries
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort())
      yield name;
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      return this.info(key, await stat(this.path(key)));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw new StoreError(`cannot stat ${key}`, { cause: error, context: { key } });
    }
  }

  async getStream(key: string): Promise<Readable> {
    const path = this.path(key);
    try {
      const handle = await open(path, 'r');
      return handle.createReadStream();
    } catch (error) {
      throw this.readError(key, error);
    }
  }

  async getToFile(key: string, path: string): Promise<ObjectInfo> {
    try {
      await copyFile(this.path(key), path);
    } catch (error) {
      throw this.readError(key, error);
    }
    const info = await this.head(key);
    if (!info) throw new ObjectNotFoundError(`object not found: ${key}`, { context: { key } });
    return info;
  }

  async putBytes(key: string, body: Uint8Array | string, options: PutOptions = {}): Promise<ObjectInfo> {
    return this.commit(key, options, (tmp) => writeFile(tmp, body));
  }

  async putFile(key: string, path: string, options: PutOptions = {}): Promise<ObjectInfo> {
    return this.commit(key, options, (tmp) => copyFile(path, tmp));
  }

  async delete(key: string): Promise<void> {
    try {
      await unlink(this.path(key));
    } catch (error) {
      if (!isNotFound(error)) throw new StoreError(`cannot delete ${key}`, { cause: error, context: { key } });
    }
  }

  private async commit(key: string, options: PutOptions, write: (tmp: string) => Promise<void>): Promise<ObjectInfo> {
    const target = this.path(key);
    await mkdir(dirname(target), { recursive: true });
    const tmp = join(dirname(target), `${TEMP_MARK}${randomUUID()}`);
    try {
      await write(tmp);
      if (options.ifNoneMatch === '*') {
        try {
          await link(tmp, target); // fails atomically with EEXIST when the key exists
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
            throw new PreconditionFailedError(`${key} already exists`, { cause: error, context: { key } });
          }
          throw error;
        }
      } else if (options.ifMatch !== undefined) {
        const ifMatch = options.ifMatch;
        await withKeyMutex(target, async () => {
          const current = await this.head(key);
          if (!current || current.etag !== ifMatch) {
            throw new PreconditionFailedError(`${key} changed (ifMatch ${ifMatch})`, { context: { key } });
          }
          await rename(tmp, target);
        });
      } else {
        await rename(tmp, target);
      }
    } catch (error) {
      if (error instanceof StoreError) throw error;
      throw new StoreError(`cannot write ${key}`, { cause: error, context: { key } });
    } finally {
      await rm(tmp, { force: true });
    }
    const info = await this.head(key);
    if (!info) throw new StoreError(`object vanished after write: ${key}`, { context: { key } });
    return info;
  }

  private async walk(dir: string, out: string[]): Promise<void> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if (isNotFound(error) || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return;
      throw error;
    }
    for (const entry of entries) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) await this.walk(full, out);
      else if (entry.isFile() && !entry.name.startsWith(TEMP_MARK)) {
        out.push(relative(this.root, full).split(sep).join('/'));
      }
    }
  }

  private info(key: string, stats: Stats): ObjectInfo {
    const etag = createHash('sha1').update(`${stats.size}:${stats.mtimeMs}:${stats.ino}`).digest('hex');
    return { key, size: stats.size, etag, lastModified: stats.mtime };
  }

  /** Maps a key to a path under the root; keys that could escape it are refused. */
  private path(key: string, folder = false): string {
    const parts = key.split('/').filter((p, i, all) => p !== '' || (folder && i === all.length - 1));
    if (key.includes('\0') || key.startsWith('/') || parts.some((p) => p === '..' || (p === '.' && key !== '.'))) {
      throw new StoreError(`invalid object key ${JSON.stringify(key)}`, { context: { key } });
    }
    return key === '.' ? this.root : join(this.root, ...parts.filter((p) => p !== ''));
  }

  private readError(key: string, error: unknown): Error {
    if (isNotFound(error)) return new ObjectNotFoundError(`object not found: ${key}`, { cause: error, context: { key } });
    return new StoreError(`cannot read ${key}`, { cause: error, context: { key } });
  }
}

const MUTEX_STALE_MS = 30_000;

/**
 * Compare-and-swap on a directory needs a lock that holds across processes: an exclusively created
 * `.tmp-cas-<name>` beside the object (open with 'wx' fails atomically when it exists; listings skip
 * `.tmp-` names). A lock older than 30 s was left by a crashed process and is removed.
 */
async function withKeyMutex<T>(target: string, work: () => Promise<T>): Promise<T> {
  const lock = join(dirname(target), `${TEMP_MARK}cas-${basename(target)}`);
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(lock, 'wx');
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const age = await stat(lock).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age > MUTEX_STALE_MS) await rm(lock, { force: true });
      else if (attempt > 200) throw new StoreError(`timed out waiting for ${lock}`, { cause: error });
      else await new Promise((r) => setTimeout(r, 10));
    }
  }
  try {
    return await work();
  } finally {
    await rm(lock, { force: true });
  }
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException)?.code === 'ENOENT';
}
