/**
 * One racer of test/core/localStoreRace.test.ts: `node bin/run-ts.mjs test/kit/localStoreRaceChild.ts ROOT`
 * prints `ready`, then runs every JSON line read from stdin as an operation on the LocalStore at ROOT and prints
 * one JSON line `{ id, outcome, etag?, error?, started, ended }` for it (started and ended: epoch milliseconds, to
 * show the racers' operations overlapped) (the store's condition check is slowed, SlowCheckStore):
 *
 * - `{ id, op: 'create', key, body }`: putBytes ifNoneMatch '*': outcome `won` (with the etag) or `lost`;
 * - `{ id, op: 'replace', key, body, etag }`: putBytes ifMatch etag: `won` or `lost`;
 * - `{ id, op: 'delete', key, etag }`: delete ifMatch etag: `won` when it removed that version (the check it made
 *   holding the key's lock saw the object), `absent` when the object was already gone (a no-op success), `lost`
 *   when another version was there;
 * - `{ id, op: 'hold', keys }`: a write of each key that stops for good once it holds the key's lock (the check
 *   inside the lock never returns) and prints `{ id, held: key }` for each: the parent then SIGKILLs the process,
 *   leaving the keys' locks to a dead process;
 * - `{ id, op: 'churn', keys }`: conditional writes and deletes of each key in a loop, printing `{ id, churning: true }`
 *   once every key has had one: the parent SIGKILLs the process at a random moment of them.
 *
 * Any other error is the outcome `error` with its message.
 */
import { createInterface } from 'node:readline';
import { PreconditionFailedError } from '../../src/ports/store/errors.js';
import type { ObjectInfo } from '../../src/ports/store/ObjectStore.js';
import { SlowCheckStore } from './casChild.js';

interface Request {
  readonly id: number;
  readonly op: 'create' | 'replace' | 'delete' | 'hold' | 'churn';
  readonly key?: string;
  readonly keys?: readonly string[];
  readonly body?: string;
  readonly etag?: string;
}

/** Remembers what the last condition check saw; with `holding` set, a check never returns (the lock stays taken). */
class RaceStore extends SlowCheckStore {
  seen: ObjectInfo | undefined;
  holding: ((key: string) => void) | undefined;

  override async head(key: string) {
    if (this.holding) {
      this.holding(key);
      return new Promise<never>(() => undefined);
    }
    const info = await super.head(key);
    this.seen = info;
    return info;
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  const [root] = argv;
  if (!root) {
    process.stderr.write('usage: localStoreRaceChild.ts ROOT\n');
    return 2;
  }
  const store = new RaceStore(root);
  const reply = (message: object) => process.stdout.write(`${JSON.stringify(message)}\n`);
  const lines = createInterface({ input: process.stdin });
  reply({ ready: true });
  for await (const line of lines) {
    const request = JSON.parse(line) as Request;
    if (request.op === 'hold') {
      // one write per key, each stopped inside the key's lock; stdin stays open, so the process waits to be killed
      store.holding = (key) => reply({ id: request.id, held: key });
      for (const key of request.keys ?? []) void store.putBytes(key, 'held', { ifMatch: 'never-matches' });
      continue;
    }
    if (request.op === 'churn') {
      let started = 0;
      for (const key of request.keys ?? [])
        void churn(store, key, () => ++started === request.keys?.length && reply({ id: request.id, churning: true }));
      continue;
    }
    const started = performance.timeOrigin + performance.now();
    const result = await run(store, request);
    reply({ id: request.id, ...result, started, ended: performance.timeOrigin + performance.now() });
  }
  return 0;
}

async function run(store: RaceStore, request: Request): Promise<{ outcome: string; etag?: string; error?: string }> {
  const key = request.key ?? '';
  store.seen = undefined;
  try {
    if (request.op === 'create')
      return { outcome: 'won', etag: (await store.putBytes(key, request.body ?? '', { ifNoneMatch: '*' })).etag };
    if (request.op === 'replace') {
      return { outcome: 'won', etag: (await store.putBytes(key, request.body ?? '', { ifMatch: request.etag })).etag };
    }
    await store.delete(key, { ifMatch: request.etag });
    const seen = store.seen as ObjectInfo | undefined; // set by the check the delete made
    return { outcome: seen?.etag === request.etag ? 'won' : 'absent' };
  } catch (error) {
    if (error instanceof PreconditionFailedError) return { outcome: 'lost' };
    return { outcome: 'error', error: String(error) };
  }
}

/** Writes and deletes the key conditionally, forever (until the process is killed). */
async function churn(store: RaceStore, key: string, started: () => void): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      const current = await store.head(key);
      if (!current) await store.putBytes(key, `churn ${i}`, { ifNoneMatch: '*' });
      else if (i % 3 === 2) await store.delete(key, { ifMatch: current.etag });
      else await store.putBytes(key, `churn ${i}`, i % 3 ? { ifMatch: current.etag } : {});
    } catch (error) {
      if (!(error instanceof PreconditionFailedError)) throw error;
    }
    if (i === 0) started();
  }
}
