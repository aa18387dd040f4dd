import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { quoteLiteral } from '../src/core/sql/quote.js';
import {
  mergeCountsSql,
  mergeDeletesSql,
  mergeRowsSql,
  type ParquetOptions,
  parquetCopyOptionsSql,
  partitionParams,
  stagedCopyOptionsSql,
  stagedInputSql,
  winnerRowsSql,
} from '../src/engine/compactionSql.js';
import { DEFAULT_COMPACTION_SETTINGS } from '../src/engine/compactPartition.js';
import { openDuckDb } from '../src/ports/duckdb/openDuckDb.js';

export interface ExplainRequest {
  readonly stagingDir: string;
  readonly tenant: string;
  readonly date: string;
  readonly out: string;
  readonly memory: string;
  readonly threads: number;
  /** Parquet options over the engine's defaults (A/B of a writer setting, e.g. rowGroupBytes). */
  readonly parquet?: Partial<ParquetOptions>;
}

interface ProfileNode {
  operator_name?: string;
  operator_type?: string;
  operator_timing?: number;
  operator_cardinality?: number;
  latency?: number;
  system_peak_temp_dir_size?: number;
  system_peak_buffer_memory?: number;
  children?: ProfileNode[];
}

/**
 * Runs the compaction statements exactly as compactPartition builds them (compactionSql.ts + the COPY
 * options) over local files with DuckDB's JSON profiler on, and returns the time of each operator
 * (thread time summed over threads, seconds) and the statement's wall time.
 */
export async function explainCompaction(request: ExplainRequest) {
  const files = (await readdir(request.stagingDir))
    .filter((f) => f.endsWith('.ndjson.gz'))
    .sort()
    .map((f) => join(request.stagingDir, f));
  const db = await openDuckDb({
    memoryLimit: request.memory,
    threads: request.threads,
    workDirectory: join(request.out, 'work'),
  });
  const connection = await db.connect();
  const profile = join(request.out, 'profile.json');
  const outDir = join(request.out, 'parquet');
  try {
    await connection.run(`SET enable_profiling = 'json'`);
    await connection.run(`SET profiling_mode = 'detailed'`);
    await connection.run(`SET profiling_output = ${quoteLiteral(profile)}`);
    // the engine's statements (compactionSql.ts: stage, classify, count, deletes, write), each profiled;
    // operator times add up over them
    const staged = join(request.out, 'staged.parquet');
    const sources = { staged, published: [], tombstones: [] };
    const statements = [
      {
        sql: `COPY (${stagedInputSql(files)}) TO ${quoteLiteral(staged)} (${stagedCopyOptionsSql(DEFAULT_COMPACTION_SETTINGS)})`,
        params: partitionParams(request.tenant, request.date),
      },
      { sql: `CREATE OR REPLACE TEMP TABLE merge_rows AS ${mergeRowsSql(sources)}` },
      { sql: mergeCountsSql('merge_rows') },
      { sql: mergeDeletesSql('merge_rows') },
      {
        sql: `COPY (${winnerRowsSql(sources, 'merge_rows')}) TO ${quoteLiteral(outDir)} (${parquetCopyOptionsSql({ ...DEFAULT_COMPACTION_SETTINGS, ...request.parquet })})`,
      },
    ];
    const operators: Record<string, number> = {};
    const statementsMs: number[] = [];
    let rows = 0;
    let latency = 0;
    let peakBuffer = 0;
    let peakSpill = 0;
    const t0 = performance.now();
    for (const { sql, params } of statements) {
      const t = performance.now();
      const result = await connection.run(sql, params);
      statementsMs.push(Math.round(performance.now() - t));
      rows = Number(result.rowsChanged);
      const root = JSON.parse(await readFile(profile, 'utf8')) as ProfileNode;
      const walk = (node: ProfileNode) => {
        if (node.operator_name !== undefined) {
          const name = node.operator_name.trim();
          operators[name] = round3((operators[name] ?? 0) + (node.operator_timing ?? 0));
        }
        for (const child of node.children ?? []) walk(child);
      };
      walk(root);
      latency += root.latency ?? 0;
      peakBuffer = Math.max(peakBuffer, root.system_peak_buffer_memory ?? 0);
      peakSpill = Math.max(peakSpill, root.system_peak_temp_dir_size ?? 0);
    }
    const statementMs = Math.round(performance.now() - t0);
    await connection.run(`SET enable_profiling = 'no_output'`);
    return {
      rows,
      statementMs,
      statementsMs,
      latencyS: round3(latency),
      operatorsS: operators,
      peakBufferMB: Math.round(peakBuffer / 1e6),
      peakSpillMB: Math.round(peakSpill / 1e6),
    };
  } finally {
    connection.closeSync();
    db.closeSync();
    await rm(outDir, { recursive: true, force: true });
  }
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;
