import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ALLOCATOR_OPTIONS } from '../../src/ports/duckdb/allocatorOptions.js';
import { blockAllocatorBytes, machineMemoryBytes, openDuckDb, sizeBytes } from '../../src/ports/duckdb/openDuckDb.js';

describe('DuckDB instance settings', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('reads sizes the way DuckDB does (KB..TB in powers of 1000, KiB..TiB in powers of 1024)', () => {
    expect(['2GB', '512MB', '1.5GiB', '64 MiB', '3kb', '7B'].map(sizeBytes)).toStrictEqual([
      2e9,
      512e6,
      1.5 * 2 ** 30,
      64 * 2 ** 20,
      3000,
      7,
    ]);
    expect(() => sizeBytes('80%')).toThrow('not a DuckDB size: "80%"');
  });

  it('gives the block allocator half the memory limit, capped at 75% of the machine', () => {
    expect(blockAllocatorBytes('2256MB', 3008 * 2 ** 20)).toBe(1128e6);
    expect(blockAllocatorBytes('1GB', 24e9)).toBe(5e8);
    expect(blockAllocatorBytes('1000GB', 10e9)).toBe(7.5e9);
  });

  it('runs and closes with a memory limit far above the machine (an uncapped allocator aborts the process)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'makoto-duckdb-'));
    dirs.push(dir);
    for (const memoryLimit of ['64MiB', '100TB']) {
      const db = await openDuckDb({ memoryLimit, threads: 2, workDirectory: dir });
      const connection = await db.connect();
      const rows = await connection.runAndReadAll(
        `SELECT current_setting('block_allocator_memory') AS allocator, count(*)::INTEGER AS groups
         FROM (SELECT x % 7 AS g FROM range(3000000) t(x) GROUP BY g)`,
      );
      const [row] = rows.getRowObjectsJS() as { allocator: string; groups: number }[];
      expect(row?.groups).toBe(7);
      if (memoryLimit === '64MiB') {
        expect(row?.allocator).toBe('32.0 MiB');
      } else {
        // DuckDB prints the setting to one decimal of a GiB
        const [value, unit] = (row?.allocator ?? '').split(' ');
        expect(unit).toBe('GiB');
        expect(Math.abs(Number(value) - (machineMemoryBytes() * 0.75) / 2 ** 30)).toBeLessThan(0.1);
      }
      connection.closeSync();
      db.closeSync();
    }
  });
});

describe("DuckDB's allocator options", () => {
  const child = (entry: string, env: NodeJS.ProcessEnv) =>
    new Promise<{ atLoad: string | null }>((done, fail) => {
      const args = ['--require', './test/kit/duckdbLoadHook.cjs', 'test/kit/duckdbLoadChild.mjs', entry];
      execFile(process.execPath, args, { env, timeout: 60_000 }, (error, stdout, stderr) =>
        error
          ? fail(new Error(`${entry}: ${error.message}\n${stderr}`))
          : done({ atLoad: JSON.parse(/^ALLOCATOR (.*)$/m.exec(stdout)?.[1] ?? '"no report"') }),
      );
    });
  const { DUCKDB_JE_MALLOC_CONF: _ignored, ...unset } = process.env;

  it('are in the environment when the native library loads, from every entry point that runs DuckDB', async () => {
    const entries = ['compactor/cli.ts', 'compactor/lambda.ts', 'azure/functions/compact_job.ts', 'bench/step.ts'];
    const seen = await Promise.all(entries.map((entry) => child(entry, unset)));
    expect(seen).toStrictEqual(entries.map(() => ({ atLoad: ALLOCATOR_OPTIONS })));
    expect(ALLOCATOR_OPTIONS).toBe('dirty_decay_ms:-1,muzzy_decay_ms:-1');
  });

  it("keep the operator's own value, and are absent where nothing loads DuckDB", async () => {
    expect(await child('compactor/cli.ts', { ...unset, DUCKDB_JE_MALLOC_CONF: 'dirty_decay_ms:5000' })).toStrictEqual({
      atLoad: 'dirty_decay_ms:5000',
    });
    expect(await child('stream-ingest/handler.ts', unset)).toStrictEqual({ atLoad: null });
  });
});
