/**
 * One measured step of the benchmark, run in its own process so its peak RSS is its own:
 *   node bin/run-ts.mjs bench/step.ts project|bare ROOT TENANT DATE OUT_DIR MEMORY THREADS
 * Prints one JSON line: { ms, maxRssMB, rows, ... }.
 */
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { LATEST_FIRST_SQL, parquetProjectionSql, readStagingSql } from '../src/compaction/compactionSql.js';
import { compactPartition, DEFAULT_COMPACTION_SETTINGS } from '../src/compaction/compactPartition.js';
import { openDuckDb } from '../src/duckdb/openDuckDb.js';
import { quoteLiteral } from '../src/sql/quote.js';
import { stagingPrefix } from '../src/staging/layout.js';
import { LocalStore } from '../src/store/LocalStore.js';
import { diskUsage } from './diskUsage.js';

export async function main(argv: string[]): Promise<number> {
  const [mode, root, tenant, date, out, memory, threads] = argv as [string, string, string, string, string, string, string];
  await mkdir(out, { recursive: true });
  // Peak bytes under OUT_DIR (downloaded inputs, DuckDB spill, Parquet before upload), sampled every 250 ms.
  let peakTempBytes = 0;
  let sampling = false;
  const sampler = setInterval(() => {
    if (sampling) return;
    sampling = true;
    diskUsage(out)
      .then((bytes) => {
        peakTempBytes = Math.max(peakTempBytes, bytes);
      })
      .finally(() => {
        sampling = false;
      });
  }, 250);
  const t0 = performance.now();
  let result: Record<string, unknown>;
  if (mode === 'project') {
    const db = await openDuckDb({ memoryLimit: memory, threads: Number(threads), workDirectory: join(out, 'work') });
    const r = await compactPartition(
      { store: new LocalStore(root), db, workDirectory: join(out, 'work'), settings: DEFAULT_COMPACTION_SETTINGS },
      tenant,
      date,
    );
    db.closeSync();
    result = { rows: r.rowsWritten, rowsRead: r.rowsRead, timings: r.timingsMs, bytesWritten: r.bytesWritten };
  } else if (mode === 'bare') {
    // The floor: one DuckDB statement over the same local files with the same dedup, nothing else.
    const dir = join(root, stagingPrefix(tenant, date));
    const files = (await readdir(dir)).sort().map((f) => join(dir, f));
    const db = await DuckDBInstance.create(':memory:', { memory_limit: memory, threads, temp_directory: join(out, 'spill') });
    const c = await db.connect();
    const copied = await c.run(`COPY (
        SELECT ${parquetProjectionSql()} FROM (
          SELECT * FROM ${readStagingSql(files)}
          QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY ${LATEST_FIRST_SQL}) = 1
        ) WHERE op <> 'delete'
      ) TO ${quoteLiteral(join(out, 'bare.parquet'))} (FORMAT parquet, COMPRESSION snappy)`);
    c.closeSync();
    db.closeSync();
    result = { rows: Number(copied.rowsChanged), bytesWritten: (await stat(join(out, 'bare.parquet'))).size };
  } else {
    throw new Error(`unknown step ${mode}`);
  }
  const ms = Math.round(performance.now() - t0);
  clearInterval(sampler);
  const peakTempMB = Math.round(peakTempBytes / 1e6);
  process.stdout.write(
    `${JSON.stringify({ mode, ms, maxRssMB: Math.round(process.resourceUsage().maxRSS / 1024), peakTempMB, ...result })}\n`,
  );
  return 0;
}
