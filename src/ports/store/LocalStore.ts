import { createHash, randomUUID } from 'node:crypto';
import { type BigIntStats, statSync } from 'node:fs';
import {
  copyFile,
  link,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  unlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { inFolder } from '../../core/util/inFolder.js';
import { processExists } from '../../core/util/processExists.js';
import { ObjectNotFoundError, PreconditionFailedError, StoreError } from './errors.js';
import type { DeleteOptions, ObjectInfo, ObjectStore, PutOptions } from './ObjectStore.js';

/** Old versions wrote `.tmp-*` files beside the object; listings skip them and remove them once stale. */
const LEGACY_TEMP_MARK = '.tmp-';
/** Temporary files and key locks live here, outside every key's folder, on the same filesystem as the objects. */
const TEMP_FOLDER = '.tmp';
/** Key locks: `<root>/.tmp/locks/<sha1 of the key>/`, a folder holding one file named `<pid>-<token>` (its holder). */
const LOCK_FOLDER = 'locks';
/** A temporary file of a process that still runs is left alone this long (a killed run's after its pid is gone). */
const TEMP_STALE_MS = 10 * 60 * 1000;

/**
 * A plain directory as the object store: the embedded default (`DATA_DIR`). Writes go to a temporary
 * file in `<root>/.tmp/` (outside every partition folder, so a reader's glob never matches one; same
 * filesystem, so the move into place is atomic) and a reader sees the old or the new object, never half.
 *
 * Conditions are exact across any number of processes of this host, also when one is killed at any moment;
 * each winner is decided by one atomic filesystem operation, never by a check and then an act:
 *
 * - **ifNoneMatch '*'** (create only) takes no lock: the temporary file is hard-linked to the key's path,
 *   and `link` fails with EEXIST when the path exists. Of any number of creators exactly one link succeeds,
 *   and a killed process cannot block it.
 * - **Every other write and every delete** holds the key's lock: the condition (ifMatch) is checked and the
 *   file renamed into place (or unlinked) with no other writer of the key in between. The lock is the folder
 *   `<root>/.tmp/locks/<sha1 of key>/` holding one file, `<pid>-<random token>`, naming its holder. A process
 *   takes it by renaming a folder it prepared (with its own such file in it) to that path: `rename` of a folder
 *   succeeds only if the target is absent or an empty folder, atomically, so of any number of takers exactly one
 *   gets it while it is held. The holder releases it by unlinking its own file (then removes the empty folder
 *   if no one took it meanwhile). A lock whose holder's process is gone is broken by unlinking that holder's
 *   file by its name: the name is unique to that one holding (its token), so unlinking it can never remove a
 *   later holder's lock. Any number of processes may break the same dead lock at once: one unlink succeeds,
 *   the others find nothing, and then all of them race to take the (now empty) lock by `rename`, where again
 *   exactly one wins. (Before, the lock was one file path: two breakers could both see the dead holder, and
 *   the second's unlink removed the lock the first had just taken.)
 * - A create (link) needs no lock because every other operation of the key either needs the object present
 *   for its whole critical section (ifMatch write or delete: the path exists from its check to its rename or
 *   unlink, so no create can succeed in between) or overwrites it whatever it is (unconditional write).
 *
 * A holder is "gone" when signal 0 finds no process with its pid (processExists): exact for processes of this
 * host and pid namespace. A lock older than 10 minutes is also broken by the sweep (a lock is held for
 * milliseconds). Old versions' locks (a plain file `<root>/.tmp/locks/<sha1>` naming a pid) are waited on
 * while their pid lives and then unlinked (unlink removes no folder, so never a new-style lock).
 *
 * Looking a file up (`stat`) is one synchronous call: microseconds, where a call through libuv's thread pool
 * costs more CPU in hand-offs and waits behind DuckDB's statements, which run on the same pool threads. Calls
 * that create or remove files stay on the pool: under a busy journal they can take milliseconds.
 */
export class LocalStore implements ObjectStore {
  readonly location: string;
  private swept: Promise<void> | undefined;
  /** `<root>/.tmp/` and its `locks/` folder, made once (made again if removed meanwhile). */
  private tempFolders: Promise<unknown> | undefined;

  constructor(readonly root: string) {
    this.location = `file://${root}`;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const keys: string[] = [];
    const base = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/') + 1) : '';
    await this.walk(this.path(base || '.', true), base, prefix, keys);
    keys.sort();
    for (const key of keys) {
      const info = this.stat(key);
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
    return this.stat(key);
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
    const info = this.stat(key);
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
    let names: string[] = [];
    try {
      names = await readdir(this.tempPath());
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    for (const name of names) {
      if (name === LOCK_FOLDER) continue;
      // a temporary file, or a lock folder being prepared (not yet renamed into locks/): `<pid>-<uuid>`
      const full = this.tempPath(name);
      const stats = await stat(full).catch(() => undefined);
      if (!stats || !(stats.isFile() || (stats.isDirectory() && ownerPid(name) !== undefined))) continue;
      if (stale(stats.mtimeMs, Number(name.split('-')[0]))) await rm(full, { recursive: true, force: true });
    }
    const locks = this.tempPath(LOCK_FOLDER);
    let lockNames: string[] = [];
    try {
      lockNames = await readdir(locks);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    for (const name of lockNames) {
      const lock = join(locks, name);
      const holders = await readdir(lock).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOTDIR') return undefined;
        if (isNotFound(error)) return [];
        throw error;
      });
      if (holders === undefined) {
        // an old version's lock file naming its pid (unlink removes no folder, so never a new lock)
        const stats = await stat(lock).catch(() => undefined);
        if (stats?.isFile() && stale(stats.mtimeMs, (await lockHolder(lock)) ?? Number.NaN)) await unlinkLegacyLock(lock);
        continue;
      }
      for (const holder of holders) {
        const stats = await stat(join(lock, holder)).catch(() => undefined);
        // the holder's own file, unique to that holding: unlinking it frees exactly that (dead) holding
        if (stats && stale(stats.mtimeMs, ownerPid(holder) ?? Number.NaN)) await unlinkIfThere(join(lock, holder));
      }
      await removeIfEmpty(lock);
    }
  }

  private async commit(key: string, options: PutOptions, write: (tmp: string) => Promise<void>): Promise<ObjectInfo> {
    const target = this.path(key);
    this.swept ??= this.sweepTemporaryFiles().catch(() => undefined);
    await this.swept;
    const tmp = this.tempPath(`${process.pid}-${randomUUID()}`);
    let moved = false;
    try {
      await this.inTempFolder(() => write(tmp));
      // the last moment a stopped writer can still leave the object unwritten
      options.signal?.throwIfAborted();
      // the object's ETag is the written file's: a link or a rename keeps its inode, size and mtime
      let written = this.info(key, statSync(tmp, { bigint: true }));
      if (options.ifNoneMatch === '*' && options.ifMatch === undefined) return await this.create(key, target, tmp, written);
      // the version written is decided inside the lock: after it another writer may replace it
      return await this.withKeyLock(key, async () => {
        const current = await this.head(key);
        if (options.ifNoneMatch === '*' && current) {
          throw new PreconditionFailedError(`${key} already exists`, { context: { key } });
        }
        if (options.ifMatch !== undefined && current?.etag !== options.ifMatch) {
          throw new PreconditionFailedError(`${key} changed (ifMatch ${options.ifMatch})`, { context: { key } });
        }
        if (current && written.etag === current.etag) {
          // same size, inode and (coarse) mtime as the version it replaces: move the mtime so the ETag changes
          const bumped = new Date(current.lastModified.getTime() + 1);
          await utimes(tmp, bumped, bumped);
          written = this.info(key, statSync(tmp, { bigint: true }));
        }
        await inFolder(dirname(target), () => rename(tmp, target));
        moved = true;
        return written;
      });
    } catch (error) {
      if (error instanceof StoreError || (options.signal?.aborted && error === options.signal.reason)) throw error;
      throw new StoreError(`cannot write ${key}`, { cause: error, context: { key } });
    } finally {
      // after a link the temporary name is a second name of the object: only that name goes
      if (!moved) await unlinkIfThere(tmp);
    }
  }

  /** Runs `work` (which writes into `<root>/.tmp/`), making the folder first if it is not there. */
  private async inTempFolder<T>(work: () => Promise<T>): Promise<T> {
    this.tempFolders ??= mkdir(this.tempPath(LOCK_FOLDER), { recursive: true });
    await this.tempFolders;
    try {
      return await work();
    } catch (error) {
      if (!isNotFound(error)) throw error;
      // removed meanwhile (a test's cleanup, a hand): made again, once
      this.tempFolders = mkdir(this.tempPath(LOCK_FOLDER), { recursive: true });
      await this.tempFolders;
      return work();
    }
  }

  /**
   * Create only: a hard link of the written temporary file to the key's path, which fails with EEXIST if the
   * path exists. One atomic operation decides, so of any number of racing creators exactly one wins.
   */
  private async create(key: string, target: string, tmp: string, written: ObjectInfo): Promise<ObjectInfo> {
    try {
      await inFolder(dirname(target), () => link(tmp, target));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new PreconditionFailedError(`${key} already exists`, { cause: error, context: { key } });
      }
      throw error;
    }
    return written;
  }

  /**
   * Holds the key's lock across processes (see the class comment): a folder `<root>/.tmp/locks/<hash of key>/`
   * holding the file `<pid>-<token>` of its holder. It is taken by renaming a prepared folder to that path
   * (atomic; fails while the lock is held, as the folder is not empty), released by unlinking the holder's
   * file. A lock whose holder's process is gone is broken by unlinking that holder's file, by its unique name.
   */
  private async withKeyLock<T>(key: string, work: () => Promise<T>): Promise<T> {
    const locks = this.tempPath(LOCK_FOLDER);
    const lock = join(locks, createHash('sha1').update(key).digest('hex'));
    const holder = `${process.pid}-${randomUUID()}`;
    const mine = this.tempPath(holder);
    try {
      await this.inTempFolder(() => mkdir(mine));
      await writeFile(join(mine, holder), '');
      for (let attempt = 0; ; attempt++) {
        try {
          await rename(mine, lock);
          break;
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === 'ENOENT' && attempt === 0) {
            // the locks folder was removed meanwhile: made again
            await mkdir(locks, { recursive: true });
            continue;
          }
          // EEXIST/ENOTEMPTY: held (a folder with a holder's file); ENOTDIR: an old version's lock file
          if (code !== 'EEXIST' && code !== 'ENOTEMPTY' && code !== 'ENOTDIR') throw error;
          if (attempt > 3000) throw new StoreError(`timed out waiting for the lock of ${key}`, { cause: error });
          if (await breakDeadLock(lock)) continue;
          await new Promise((r) => setTimeout(r, attempt < 50 ? 1 : 10));
        }
      }
    } catch (error) {
      await rm(mine, { recursive: true, force: true });
      throw error;
    }
    try {
      return await work();
    } finally {
      await unlinkIfThere(join(lock, holder));
      await removeIfEmpty(lock);
    }
  }

  private tempPath(name?: string): string {
    return name === undefined ? join(this.root, TEMP_FOLDER) : join(this.root, TEMP_FOLDER, name);
  }

  /**
   * Collects the keys below the folder `dir` (whose keys start with `base`) that start with `prefix`, reading
   * only the folders that can hold such keys. Old versions' `.tmp-` files are removed once stale.
   */
  private async walk(dir: string, base: string, prefix: string, out: string[]): Promise<void> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if (isNotFound(error) || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return;
      throw error;
    }
    for (const entry of entries) {
      const key = base + entry.name;
      if (entry.isDirectory()) {
        const folder = `${key}/`;
        if (base === '' && entry.name === TEMP_FOLDER) continue;
        if (folder.startsWith(prefix) || prefix.startsWith(folder)) await this.walk(join(dir, entry.name), folder, prefix, out);
      } else if (entry.name.startsWith(LEGACY_TEMP_MARK)) {
        const full = join(dir, entry.name);
        const age = await stat(full).then(
          (s) => Date.now() - s.mtimeMs,
          () => 0,
        );
        if (age > TEMP_STALE_MS) await rm(full, { force: true });
      } else if (entry.isFile() && key.startsWith(prefix)) {
        out.push(key);
      }
    }
  }

  /** The object's info, or undefined if it does not exist: one synchronous stat (see the class comment). */
  private stat(key: string): ObjectInfo | undefined {
    const path = this.path(key);
    try {
      const stats = statSync(path, { bigint: true, throwIfNoEntry: false });
      return stats ? this.info(key, stats) : undefined;
    } catch (error) {
      throw new StoreError(`cannot stat ${key}`, { cause: error, context: { key } });
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

/**
 * Called when the lock could not be taken: unlinks the file of each holder whose process is gone (by its
 * unique name, so never another holding's). True when the lock may be free now (try again at once): a dead
 * holder was removed, or the lock was released meanwhile.
 */
async function breakDeadLock(lock: string): Promise<boolean> {
  let holders: string[];
  try {
    holders = await readdir(lock);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return true;
    if (code !== 'ENOTDIR') throw error;
    // an old version's lock file naming its pid
    const pid = await lockHolder(lock);
    if (pid === undefined || processExists(pid)) return false;
    await unlinkLegacyLock(lock);
    return true;
  }
  let broken = holders.length === 0;
  for (const holder of holders) {
    const pid = ownerPid(holder);
    if (pid === undefined || processExists(pid)) continue;
    await unlinkIfThere(join(lock, holder));
    broken = true;
  }
  return broken;
}

/** The pid in a lock holder's name `<pid>-<token>`, or undefined if the name is not one. */
function ownerPid(name: string): number | undefined {
  const match = /^(\d+)-./.exec(name);
  const pid = match ? Number(match[1]) : Number.NaN;
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/** A temporary file or lock of `pid` is stale when that process is gone or it is older than 10 minutes. */
function stale(mtimeMs: number, pid: number): boolean {
  return Date.now() - mtimeMs > TEMP_STALE_MS || (Number.isInteger(pid) && pid > 0 && !processExists(pid));
}

async function unlinkIfThere(path: string): Promise<void> {
  await unlink(path).catch((error) => {
    if (!isNotFound(error)) throw error;
  });
}

/**
 * Unlinks an old version's lock file. Unlink removes no folder: if another process has meanwhile removed the
 * file and taken the lock (a folder now), that lock stays (EISDIR; EPERM on some systems).
 */
async function unlinkLegacyLock(lock: string): Promise<void> {
  await unlink(lock).catch((error: NodeJS.ErrnoException) => {
    if (!['ENOENT', 'EISDIR', 'EPERM'].includes(error.code ?? '')) throw error;
  });
}

/** Removes a released lock's folder; one another process has taken meanwhile (not empty) or removed stays as it is. */
async function removeIfEmpty(lock: string): Promise<void> {
  await rmdir(lock).catch((error: NodeJS.ErrnoException) => {
    if (!['ENOENT', 'ENOTEMPTY', 'EEXIST', 'ENOTDIR'].includes(error.code ?? '')) throw error;
  });
}

/** The pid an old version's key lock file names, or undefined while it is being written or unreadable. */
async function lockHolder(lock: string): Promise<number | undefined> {
  const text = await readFile(lock, 'utf8').catch(() => '');
  const pid = Number.parseInt(text, 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException)?.code === 'ENOENT';
}
