/**
 * Compare-and-swap increments from their own process: `node bin/run-ts.mjs test/kit/casChild.ts ROOT N`
 * adds 1 to the number in `k/counter` of the LocalStore at ROOT, N times, each a read then a write with
 * ifMatch the version read (retried when another writer got there first), and prints how many writes lost.
 * The store's condition check is slowed (SlowCheckStore), so any lost update shows as a final count below the sum of the increments. It prints `ready` and starts
 * when the file GO exists, so that racing processes really overlap.
 */
import { access } from 'node:fs/promises';
import { PreconditionFailedError } from '../../src/ports/store/errors.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { getBytes } from '../../src/ports/store/ObjectStore.js';

/** Widens the window between the condition check and the rename, so a missing lock would show. */
export class SlowCheckStore extends LocalStore {
  override async head(key: string) {
    const info = await super.head(key);
    await new Promise((r) => setTimeout(r, 3));
    return info;
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  const [root, times, go] = argv;
  if (!root || !times || !go) {
    process.stderr.write('usage: casChild.ts ROOT N GO\n');
    return 2;
  }
  process.stdout.write('ready\n');
  while (
    !(await access(go).then(
      () => true,
      () => false,
    ))
  )
    await new Promise((r) => setTimeout(r, 5));
  const store = new SlowCheckStore(root);
  let conflicts = 0;
  for (let i = 0; i < Number(times); ) {
    const info = await store.head('k/counter');
    const value = info ? Number((await getBytes(store, 'k/counter')).toString()) : 0;
    try {
      await store.putBytes('k/counter', String(value + 1), info ? { ifMatch: info.etag } : { ifNoneMatch: '*' });
      i++;
    } catch (error) {
      if (!(error instanceof PreconditionFailedError)) throw error;
      conflicts++;
    }
  }
  process.stdout.write(`conflicts ${conflicts}\n`);
  return 0;
}
