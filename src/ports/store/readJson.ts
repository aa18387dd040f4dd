import { ObjectNotFoundError, UnreadableJsonError } from './errors.js';
import { getBytes, type ObjectStore } from './ObjectStore.js';

/*
 * Reading a small JSON object from the store (a marker, a report, a checkpoint, a lease, a manifest, a cache):
 * one semantics for every reader.
 * - missing: readJson and readJsonVersion return `undefined` (no checkpoint yet is the normal case; an object
 *   deleted between the HEAD and the read is missing too); requireJson, for an object that must be there (a
 *   task's report, a run's job list), throws the store's ObjectNotFoundError, which names the key.
 * - torn (a body that is not JSON): UnreadableJsonError, a SyntaxError naming the key; never read as missing.
 *   A caller for which the object is only a cache, or for which a torn object means "lapsed" (a lease), catches
 *   it by name.
 * - changed: readJsonVersion returns the ETag of a HEAD taken *before* the read, so the body is that version
 *   or a newer one, and a write conditional on the ETag fails rather than replace a change made since.
 * The body is not validated: what it must hold is the caller's to check.
 */

/** Parses a body read from `key`; a body that is not JSON is an UnreadableJsonError naming `what` and the key. */
export function parseJsonBody<T>(key: string, body: Buffer, what = 'object'): T {
  try {
    return JSON.parse(body.toString('utf8')) as T;
  } catch (error) {
    throw new UnreadableJsonError(`unreadable ${what} ${key}: ${(error as Error).message}`, { cause: error });
  }
}

/** The object's JSON value; throws ObjectNotFoundError when it does not exist (see above for torn). */
export async function requireJson<T>(store: ObjectStore, key: string, what?: string): Promise<T> {
  return parseJsonBody<T>(key, await getBytes(store, key), what);
}

/** The object's JSON value, or undefined when it does not exist (see above for torn). */
export async function readJson<T>(store: ObjectStore, key: string, what?: string): Promise<T | undefined> {
  try {
    return await requireJson<T>(store, key, what);
  } catch (error) {
    if (error instanceof ObjectNotFoundError) return undefined;
    throw error;
  }
}

/** The object's JSON value with the ETag of a HEAD taken before the read, or undefined when it does not exist. */
export async function readJsonVersion<T>(
  store: ObjectStore,
  key: string,
  what?: string,
): Promise<{ value: T; etag: string } | undefined> {
  const info = await store.head(key);
  if (!info) return undefined;
  const value = await readJson<T>(store, key, what);
  return value === undefined ? undefined : { value, etag: info.etag };
}
