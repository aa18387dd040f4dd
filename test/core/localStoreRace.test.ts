/**
 * LocalStore's conditions across processes: RACERS child processes (test/kit/localStoreRaceChild.ts) race on one
 * key per round, hundreds of rounds, and every round has exactly one winner: one put-if-absent creates the key,
 * one replace-if-match replaces the version they all hold, one delete-if-match deletes it (and in a mixed round of
 * replacers and deleters, one of all of them). Also after a process was SIGKILLed holding the key's lock, or at a
 * random moment of its own conditional writes: the racers then find the lock of a dead process, and the store
 * works afterwards.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { getBytes } from '../../src/ports/store/ObjectStore.js';
import { GONE_PID } from '../kit/leases.js';
import { tempDir } from '../kit/tempDir.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const RACERS = 8;

interface Reply {
  readonly id?: number;
  readonly ready?: boolean;
  readonly outcome?: 'won' | 'lost' | 'absent' | 'error';
  readonly etag?: string;
  readonly error?: string;
  readonly started?: number;
  readonly ended?: number;
  readonly held?: string;
  readonly churning?: boolean;
}

/** One localStoreRaceChild process: requests go to its stdin, replies come back a JSON line each. */
class RaceChild {
  private readonly replies: Reply[] = [];
  private readonly waiting: { match: (r: Reply) => boolean; resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  private lastId = 0;
  private exitCode: number | null | undefined;
  readonly exited: Promise<void>;

  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const reply = JSON.parse(line) as Reply;
      const at = this.waiting.findIndex((w) => w.match(reply));
      if (at < 0) this.replies.push(reply);
      else this.waiting.splice(at, 1)[0]!.resolve(reply);
    });
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        for (const w of this.waiting.splice(0)) w.reject(new Error(`race child exited (${code ?? signal})`));
        resolve();
      }),
    );
  }

  static async start(root: string): Promise<RaceChild> {
    const args = [join(REPO, 'bin/run-ts.mjs'), join(REPO, 'test/kit/localStoreRaceChild.ts'), root];
    const child = new RaceChild(spawn(process.execPath, args, { cwd: REPO, stdio: ['pipe', 'pipe', 'inherit'] }));
    await child.next((r) => r.ready === true);
    return child;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The next reply that matches (one that came before is taken first). */
  next(match: (r: Reply) => boolean): Promise<Reply> {
    const at = this.replies.findIndex(match);
    if (at >= 0) return Promise.resolve(this.replies.splice(at, 1)[0]!);
    if (this.exitCode !== undefined) return Promise.reject(new Error('race child has exited'));
    return new Promise((resolve, reject) => this.waiting.push({ match, resolve, reject }));
  }

  /** Sends a request; the promise is its reply (hold and churn: the replies are awaited with next()). */
  send(request: object): { id: number; reply: Promise<Reply> } {
    const id = ++this.lastId;
    this.child.stdin!.write(`${JSON.stringify({ id, ...request })}\n`);
    const reply = this.next((r) => r.id === id && r.outcome !== undefined);
    reply.catch(() => undefined); // hold and churn get none: their process is killed
    return { id, reply };
  }

  async kill(): Promise<void> {
    // 'exit' comes once the child is reaped: from then on its pid is gone (a zombie would still answer signal 0)
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

type Kind = 'create' | 'replace' | 'delete' | 'mixed';

describe('LocalStore conditional writes race across processes: exactly one winner per round', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let store: LocalStore;
  let racers: RaceChild[] = [];
  /** Processes started ahead of time, each to be killed holding locks (a start costs ~0.5 s of CPU). */
  let spares: Promise<RaceChild>[] = [];
  /** Rounds raced, by all tests. */
  let raced = 0;
  /** Anything but exactly one winner and the others' proper outcomes, one line per round. */
  const anomalies: string[] = [];
  /** Rounds where the winner's operation overlapped another racer's (else the race proves nothing). */
  let overlapped = 0;
  let keyCount = 0;

  beforeAll(async () => {
    dir = await tempDir();
    store = new LocalStore(join(dir.path, 'root'));
    racers = await Promise.all(Array.from({ length: RACERS }, () => RaceChild.start(store.root)));
    spares = [RaceChild.start(store.root)];
  });
  afterAll(async () => {
    await Promise.all([...racers.map((r) => r.kill()), ...spares.map(async (s) => (await s).kill())]);
    await dir?.cleanup();
  });

  /** A spare process (another is started to take its place). */
  async function victim(): Promise<RaceChild> {
    const next = spares.shift()!;
    spares.push(RaceChild.start(store.root));
    return next;
  }

  function newKey(): string {
    return `race/k${String(++keyCount).padStart(4, '0')}.json`;
  }

  /** Puts the object a replace, delete or mixed round starts from; its etag is the one all racers hold. */
  async function prepare(kind: Kind, key: string): Promise<string | undefined> {
    return kind === 'create' ? undefined : (await store.putBytes(key, 'v0')).etag;
  }

  /** One round: every racer at once, on `key` in the state `prepare` left (or a killed process did). */
  async function round(kind: Kind, key: string, etag: string | undefined, label: string): Promise<number> {
    const requests = racers.map((racer, i) => {
      const body = `racer ${i}`;
      const op = kind === 'mixed' ? (i % 2 ? 'delete' : 'replace') : kind;
      return { op, body, reply: racer.send({ op, key, body, etag }).reply };
    });
    const replies = await Promise.all(requests.map((r) => r.reply));
    const won = replies.flatMap((r, i) => (r.outcome === 'won' ? [i] : []));
    const history = `${label} ${kind} ${key}: ${replies.map((r, i) => `${requests[i]!.op}=${r.outcome}`).join(' ')}`;
    raced++;
    const errors = replies.filter((r) => r.outcome === 'error').map((r) => r.error);
    if (errors.length) anomalies.push(`${history}: ${errors.join('; ')}`);
    if (won.length !== 1) anomalies.push(`${history}: ${won.length} winners`);
    // the others' outcomes: a conditional write lost; a delete after the winning delete found nothing
    const winner = won.length === 1 ? requests[won[0]!]! : undefined;
    for (const [i, r] of winner ? replies.entries() : []) {
      if (i === won[0]) continue;
      const expected = requests[i]!.op === 'delete' && winner?.op === 'delete' ? 'absent' : 'lost';
      if (r.outcome !== expected && r.outcome !== 'error') anomalies.push(`${history}: racer ${i} ${r.outcome}, not ${expected}`);
    }
    // the store holds what the one winner did
    const now = await store.head(key);
    if (winner?.op === 'delete' && now) anomalies.push(`${history}: the winner deleted it, yet it is there`);
    if (winner && winner.op !== 'delete') {
      const body = now && (await getBytes(store, key)).toString();
      if (body !== winner.body || now?.etag !== replies[won[0]!]!.etag) {
        anomalies.push(`${history}: holds ${JSON.stringify(body)}, not the winner's ${JSON.stringify(winner.body)}`);
      }
    }
    if (winner) {
      const w = replies[won[0]!]!;
      if (replies.some((r, i) => i !== won[0] && r.started! < w.ended! && r.ended! > w.started!)) overlapped++;
    }
    return won.length;
  }

  /** Every round had one winner, and the others lost properly (anomalies since `from`). */
  function expectOneWinnerEach(winners: readonly number[], rounds: number, from: number): void {
    const notOne = winners.filter((w) => w !== 1);
    expect({ rounds: winners.length, notOneWinner: notOne.length, anomalies: anomalies.slice(from) }).toStrictEqual({
      rounds,
      notOneWinner: 0,
      anomalies: [],
    });
  }

  /** The key's lock is usable afterwards (a killed holder's lock is broken, not waited on for ever). */
  async function usable(key: string): Promise<void> {
    const written = await store.putBytes(key, 'afterwards');
    await store.delete(key, { ifMatch: written.etag });
    expect(await store.head(key)).toBe(undefined);
  }

  const KINDS: readonly Kind[] = ['create', 'replace', 'delete', 'mixed'];
  const plain: readonly [Kind, number][] = [
    ['create', 60],
    ['replace', 40],
    ['delete', 40],
    ['mixed', 30],
  ];

  it.each(plain)('%s: one winner in each of %i rounds of 8 processes', async (kind, rounds) => {
    const from = anomalies.length;
    const winners: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const key = newKey();
      winners.push(await round(kind, key, await prepare(kind, key), `round ${i}`));
    }
    expectOneWinnerEach(winners, rounds, from);
  });

  it('a process SIGKILLed holding the key locks: each key then has one winner among 8 racers, 4 × 16 rounds', async () => {
    const from = anomalies.length;
    const winners: number[] = [];
    for (let v = 0; v < 4; v++) {
      const batch = await Promise.all(
        KINDS.flatMap((kind) => [kind, kind, kind, kind]).map(async (kind) => {
          const key = newKey();
          return { kind, key, etag: await prepare(kind, key) };
        }),
      );
      const holder = await victim();
      const keys = batch.map((b) => b.key);
      const held = keys.map((key) => holder.next((r) => r.held === key));
      holder.send({ op: 'hold', keys });
      await Promise.all(held);
      await holder.kill();
      // every key's lock is now a dead process's; the racers find it so
      for (const b of batch) winners.push(await round(b.kind, b.key, b.etag, `holder ${holder.pid} killed`));
      for (const b of batch) await usable(b.key);
    }
    expectOneWinnerEach(winners, 64, from);
  });

  it('a process SIGKILLed at a random moment of its conditional writes: one winner after it, 4 × 9 rounds', async () => {
    const from = anomalies.length;
    const winners: number[] = [];
    for (let v = 0; v < 4; v++) {
      const keys = Array.from({ length: 9 }, newKey);
      const churner = await victim();
      const churning = churner.next((r) => r.churning === true);
      churner.send({ op: 'churn', keys });
      await churning;
      await new Promise((r) => setTimeout(r, Math.random() * 20));
      await churner.kill();
      // the keys are as the killed process left them: the round starts from there (its locks may be left too)
      for (const [i, key] of keys.entries()) {
        const current = await store.head(key);
        const kind: Kind = current ? (['replace', 'delete', 'mixed'] as const)[i % 3]! : 'create';
        winners.push(await round(kind, key, current?.etag, `churner ${churner.pid} killed`));
      }
      for (const key of keys) await usable(key);
    }
    expectOneWinnerEach(winners, 36, from);
  });

  it("an old version's lock file naming a gone process: one winner in each of 20 rounds", async () => {
    const from = anomalies.length;
    const winners: number[] = [];
    await mkdir(join(store.root, '.tmp', 'locks'), { recursive: true });
    for (let i = 0; i < 20; i++) {
      const kind = KINDS[i % KINDS.length]!;
      const key = newKey();
      const etag = await prepare(kind, key);
      await writeFile(join(store.root, '.tmp', 'locks', createHash('sha1').update(key).digest('hex')), `${GONE_PID}\n`);
      winners.push(await round(kind, key, etag, 'old lock file'));
      await usable(key);
    }
    expectOneWinnerEach(winners, 20, from);
  });

  it('the races overlapped, and left no lock or temporary file once the killed processes are swept', async () => {
    expect(raced).toBe(60 + 40 + 40 + 30 + 64 + 36 + 20);
    // the winner's operation overlapped another racer's in most rounds (else the race proves nothing)
    expect(overlapped).toBeGreaterThan(raced / 2);
    await Promise.all([...racers.map((r) => r.kill()), ...spares.map(async (s) => (await s).kill())]);
    racers = [];
    spares = [];
    await new LocalStore(store.root).sweepTemporaryFiles();
    expect(await readdir(join(store.root, '.tmp'))).toStrictEqual(['locks']);
    expect(await readdir(join(store.root, '.tmp', 'locks'))).toStrictEqual([]);
    const after = await store.putBytes('race/after', 'x', { ifNoneMatch: '*' });
    await store.putBytes('race/after', 'y', { ifMatch: after.etag });
    expect((await getBytes(store, 'race/after')).toString()).toBe('y');
  });
});
