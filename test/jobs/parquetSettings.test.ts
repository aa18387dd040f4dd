import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../compactor/cli.js';
import { quoteLiteral } from '../../src/core/sql/quote.js';
import { DeltaTable } from '../../src/lake/table/deltaTable.js';
import { openDuckDb, withConnection } from '../../src/ports/duckdb/openDuckDb.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { tempDir } from '../kit/tempDir.js';

/**
 * The Parquet settings the README documents, run through the CLI: PARQUET_ROW_GROUP_SIZE bounds the rows of a
 * row group of a published part, PARQUET_COMPRESSION chooses its codec. (PARQUET_ROW_GROUP_MB's 1 MB floor is
 * larger than a test day; DuckDB applies both bounds, whichever is reached first.)
 */
let dir: { path: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  dir = await tempDir();
});
afterAll(async () => {
  await dir?.cleanup();
});

async function cli(argv: string[], env: Record<string, string>) {
  const out: string[] = [];
  const code = await main(argv, env, { stdout: (t) => out.push(t), stderr: (t) => out.push(t) });
  return { code, output: out.join('\n') };
}

/** Per published part of the table: its codecs and the rows of each row group, from the files' footers. */
async function partLayout(root: string) {
  const store = new LocalStore(root);
  const snapshot = await new DeltaTable(store, {}).snapshot();
  const db = await openDuckDb({ memoryLimit: '256MB', threads: 1, workDirectory: dir.path });
  try {
    return await withConnection(db, async (c) => {
      const layout: { codecs: string[]; rowGroups: number[] }[] = [];
      for (const path of [...snapshot.files.keys()].sort()) {
        const file = quoteLiteral(join(root, 'analytics/messages', path));
        const codecs = (await c.runAndReadAll(`SELECT DISTINCT compression FROM parquet_metadata(${file}) ORDER BY 1`)).getRows();
        const groups = (
          await c.runAndReadAll(`SELECT DISTINCT row_group_id, row_group_num_rows FROM parquet_metadata(${file}) ORDER BY 1`)
        ).getRows();
        layout.push({ codecs: codecs.map((r) => String(r[0])), rowGroups: groups.map((r) => Number(r[1])) });
      }
      return layout;
    });
  } finally {
    db.closeSync();
  }
}

describe('PARQUET_ROW_GROUP_SIZE and PARQUET_COMPRESSION reach the published parts', () => {
  it('2,048 rows: several row groups, each but the last from 2,048 to 4,095 rows, zstd; the defaults: one row group, snappy', async () => {
    const args = ['demo', '--date', '2025-08-11', '--tenants', 'acme', '--messages', '12000'];
    const small = join(dir.path, 'small-groups');
    const env = { TEMP_DIR: dir.path, DUCKDB_THREADS: '1' };
    const run = await cli(args, { ...env, DATA_DIR: small, PARQUET_ROW_GROUP_SIZE: '2048', PARQUET_COMPRESSION: 'zstd' });
    expect(run.code, run.output).toBe(0);
    const [part, ...others] = await partLayout(small);
    expect(others).toStrictEqual([]);
    const groups = part?.rowGroups ?? [];
    const rows = groups.reduce((a, b) => a + b, 0);
    // DuckDB closes a row group at the first chunk boundary at or past the setting (a chunk is at most its
    // vector size, 2,048 rows): the size is a target, not exact (README, PARQUET_ROW_GROUP_SIZE)
    expect([part?.codecs, groups.length > 2, groups.slice(0, -1).every((n) => n >= 2048 && n < 4096)]).toStrictEqual([
      ['ZSTD'],
      true,
      true,
    ]);

    const defaults = join(dir.path, 'defaults');
    expect((await cli(args, { ...env, DATA_DIR: defaults })).code).toBe(0);
    expect(await partLayout(defaults)).toStrictEqual([{ codecs: ['SNAPPY'], rowGroups: [rows] }]);
  });
});
