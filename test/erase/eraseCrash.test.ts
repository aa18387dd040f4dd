import { spawn } from 'node:child_process';
import { cp, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eraseTenant } from '../../src/jobs/erase/eraseTenant.js';
import { openDuckDb } from '../../src/ports/duckdb/openDuckDb.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { listAll } from '../../src/ports/store/ObjectStore.js';
import { readLake } from '../kit/readParquet.js';
import { tempDir } from '../kit/tempDir.js';
import { buildLake, ERASED_MESSAGE, ERASED_SENDER, ERASED_TEXT, rawScan } from './eraseLake.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const NEEDLES = [ERASED_SENDER, ERASED_TEXT, ERASED_MESSAGE];

function runChild(
  root: string,
  work: string,
  point: string,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [join(REPO, 'bin/run-ts.mjs'), join(REPO, 'test/erase/eraseCrashChild.ts'), root, work, point, ERASED_SENDER],
      {
        cwd: REPO,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (d) => {
      output += d;
    });
    child.stderr.on('data', (d) => {
      output += d;
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code, signal, output }));
  });
}

describe('an erase SIGKILLed at any step, then run again, completes', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let template: string;
  let expectedRows: Awaited<ReturnType<typeof readLake>>;

  beforeAll(async () => {
    dir = await tempDir('makoto-erase-crash-');
    template = join(dir.path, 'template');
    const store = new LocalStore(template);
    await buildLake(store, join(dir.path, 'build'), { start: '2025-07-01', days: 7, every: 3 });
    expectedRows = (await readLake(store)).filter((r) => r.sender_id !== ERASED_SENDER);
  }, 300_000);

  afterAll(async () => {
    await dir?.cleanup();
  });

  for (const point of ['staging', 'commit', 'log', 'old']) {
    it(`killed after the first ${point} write`, async () => {
      const root = join(dir.path, point);
      await cp(template, root, { recursive: true });
      const work = join(dir.path, `${point}-work`);
      await mkdir(work, { recursive: true });
      const killed = await runChild(root, work, point);
      expect([killed.signal, killed.code], killed.output).toStrictEqual(['SIGKILL', null]);
      const store = new LocalStore(root);
      // the receipt of the killed erase says it is in progress, and the table is readable as it stands
      const pending = await listAll(store, 'erasures/tenant_id=acme/');
      expect(pending).toHaveLength(1);
      await readLake(store);

      const db = await openDuckDb({ memoryLimit: '512MB', threads: 1, workDirectory: join(work, 'again') });
      try {
        const again = await eraseTenant(
          { store, db, workDirectory: join(work, 'again') },
          {
            tenant: 'acme',
            selector: { senders: [ERASED_SENDER], conversations: [], messages: [] },
          },
        );
        expect([again.resumed, again.receipt?.status, again.receipt?.verification?.remaining]).toStrictEqual([true, 'done', []]);
        expect(again.receiptKey).toBe(pending[0]?.key);
      } finally {
        db.closeSync();
      }
      expect(await rawScan(store, NEEDLES)).toStrictEqual({});
      expect(await readLake(store)).toStrictEqual(expectedRows);
    });
  }
});
