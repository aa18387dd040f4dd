import { createHash, randomUUID } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { copyFile, link, mkdir, open, readdir, readFile, rename, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { processExists } from '../util/processExists.js';
import { ObjectNotFoundError, PreconditionFailedError, StoreError } from './errors.js';
import type { DeleteOptions, ObjectInfo, ObjectStore, PutOptions } from './ObjectStore.js';

/** Old versions wrote `.tmp-*` files beside the object; listings skip them and remove them once stale. */
const LEGACY_TEMP_MARK = '.tmp-';
/** Temporary files and key locks live here, outside every key's folder, on the same filesystem as the objects. */
const TEMP_FOLDER = '.tmp';
/** A temporary file of a process that still runs is left alone this long (a killed run's after its pid is gone). */
const TEMP_STALE_MS = 10 * 60 * 1000;

/**
 * A plain directory as the object store: the embedded default (`DATA_DIR`). Writes go to a temporary
 * file in `<root>/.tmp/` (outside every partition folder, so a reader's glob never matches one; same
 * filesystem, so the rename into place is atomic) and a reader sees the old or the new object, never half.
 * Every write and delete of a key holds that key's lock (an exclusively created file in `<root>/.tmp/locks/`),
 * so ifNoneMatch and ifMatch are exact across the processes of this host: the condition is checked and the
 * rename done with no other writer of the key in between.
 */
export class LocalStore implements ObjectStore {
  readonly location: string;
  private swept: Promise<void> | undefined;

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
      .filter((e) => e.isDirectory() && !(prefix === '' && e.name === TEMP_FOLDER))
      .map((e) => e.name)
      .sort())
      yield name;
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      return this.info(key, await stat(this.path(key), { bigint: true }));
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

  async delete(key: string, options: DeleteOptions = {}): Promise<void> {
    const target = this.path(key);
    try {
      await this.withKeyLock(key, async () => {
        if (options.ifMatch !== undefined) {
          const current = await this.head(key);
          if (!current) return;
          if (current.etag !== options.ifMatch) {
            throw new PreconditionFailedError(`${key} changed (ifMatch ${options.ifMatch})`, { context: { key } });
          }
        }
        await unlink(target);
      });
    } catch (error) {
      if (error instanceof StoreError) throw error;
      if (!isNotFound(error)) throw new StoreError(`cannot delete ${key}`, { cause: error, context: { key } });
    }
  }

  /**
   * Removes temporary files and key locks left by killed processes: those of a process of this host that is
   * gone at once, any other after 10 minutes. Runs once per store before its first write.
   */
  async sweepTemporaryFiles(): Promise<void> {
    for (const folder of [this.tempPath(), this.tempPath('locks')]) {
      let names: string[];
      try {
        names = await readdir(folder);
      } catch (error) {
        if (isNotFound(error)) continue;
        throw error;
      }
      for (const name of names) {
        const full = join(folder, name);
        const pid = folder.endsWith('locks') ? await lockHolder(full) : Number(name.split('-')[0]);
        const stats = await stat(full).catch(() => undefined);
        if (!stats?.isFile()) continue;
        const stale = Date.now() - stats.mtimeMs > TEMP_STALE_MS || (pid !== undefined && !processExists(pid));
        if (stale) await rm(full, { force: true });
      }
    }
  }

  private async commit(key: string, options: PutOptions, write: (tmp: string) => Promise<void>): Promise<ObjectInfo> {
    const target = this.path(key);
    this.swept ??= this.sweepTemporaryFiles().catch(() => undefined);
    await this.swept;
    const tmp = this.tempPath(`${process.pid}-${randomUUID()}`);
    try {
      await mkdir(dirname(tmp), { recursive: true });
      await write(tmp);
      await mkdir(dirname(target), { recursive: true });
      // the version written is read inside the lock: after it another writer may replace it
      return await this.withKeyLock(key, async () => {
        const current = await this.head(key);
        if (options.ifNoneMatch === '*' && current) {
          throw new PreconditionFailedError(`${key} already exists`, { context: { key } });
        }
        if (options.ifMatch !== undefined && current?.etag !== options.ifMatch) {
          throw new PreconditionFailedError(`${key} changed (ifMatch ${options.ifMatch})`, { context: { key } });
        }
        if (current && this.info(key, await stat(tmp, { bigint: true })).etag === current.etag) {
          // same size, inode and (coarse) mtime as the version it replaces: move the mtime so the ETag changes
          const bumped = new Date(current.lastModified.getTime() + 1);
          await utimes(tmp, bumped, bumped);
        }
        await rename(tmp, target);
        const info = await this.head(key);
        if (!info) throw new StoreError(`object vanished after write: ${key}`, { context: { key } });
        return info;
      });
    } catch (error) {
      if (error instanceof StoreError) throw error;
      throw new StoreError(`cannot write ${key}`, { cause: error, context: { key } });
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /**
   * Holds the key's lock across processes: `<root>/.tmp/locks/<hash of key>`, created atomically (a hard
   * link of a file naming our pid, which fails with EEXIST while another holds it). A lock whose process
   * is gone (killed inside the few milliseconds it is held) is broken.
   */
  private async withKeyLock<T>(key: string, work: () => Promise<T>): Promise<T> {
    const locks = this.tempPath('locks');
    const lock = join(locks, createHash('sha1').update(key).digest('hex'));
    const mine = this.tempPath(`${process.pid}-${randomUUID()}`);
    await mkdir(locks, { recursive: true });
    await writeFile(mine, `${process.pid}\n`);
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          await link(mine, lock);
          break;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
          const holder = await lockHolder(lock);
          if (holder !== undefined && !processExists(holder)) await rm(lock, { force: true });
          else if (attempt > 3000) throw new StoreError(`timed out waiting for the lock of ${key}`, { cause: error });
          else await new Promise((r) => setTimeout(r, attempt < 50 ? 1 : 10));
        }
      }
    } finally {
      await rm(mine, { force: true });
    }
    try {
      return await work();
    } finally {
      await rm(lock, { force: true });
    }
  }

  private tempPath(name?: string): string {
    return name === undefined ? join(this.root, TEMP_FOLDER) : join(this.root, TEMP_FOLDER, name);
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
      if (entry.isDirectory()) {
        if (!(dir === this.root && entry.name === TEMP_FOLDER)) await this.walk(full, out);
      } else if (entry.name.startsWith(LEGACY_TEMP_MARK)) {
        const age = await stat(full).then(
          (s) => Date.now() - s.mtimeMs,
          () => 0,
        );
        if (age > TEMP_STALE_MS) await rm(full, { force: true });
      } else if (entry.isFile()) {
        out.push(relative(this.root, full).split(sep).join('/'));
      }
    }
  }

  private info(key: string, stats: BigIntStats): ObjectInfo {
    const etag = createHash('sha1').update(`${stats.size}:${stats.mtimeNs}:${stats.ino}`).digest('hex');
    return { key, size: Number(stats.size), etag, lastModified: stats.mtime };
  }

  /** Maps a key to a path under the root; keys that could escape it are refused. */
  private path(key: string, folder = false): string {
    const parts = key.split('/').filter((p, i, all) => p !== '' || (folder && i === all.length - 1));
    if (key.includes('\0') || key.startsWith('/') || parts.some((p) => p === '..' || (p === '.' && key !== '.'))) {
      throw new StoreError(`invalid object key ${JSON.stringify(key)}`, { context: { key } });
    }
    if (parts[0] === TEMP_FOLDER && !folder) {
      throw new StoreError(`invalid object key ${JSON.stringify(key)} (${TEMP_FOLDER}/ is the store's own)`, {
        context: { key },
      });
    }
    return key === '.' ? this.root : join(this.root, ...parts.filter((p) => p !== ''));
  }

  private readError(key: string, error: unknown): Error {
    if (isNotFound(error)) return new ObjectNotFoundError(`object not found: ${key}`, { cause: error, context: { key } });
    return new StoreError(`cannot read ${key}`, { cause: error, context: { key } });
  }
}

/** The pid a key lock names, or undefined while it is being written or unreadable. */
async function lockHolder(lock: string): Promise<number | undefined> {
  const text = await readFile(lock, 'utf8').catch(() => '');
  const pid = Number.parseInt(text, 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException)?.code === 'ENOENT';
}
