import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BIGINT, BOOLEAN, DuckDBScalarFunction, INTEGER, VARCHAR } from '@duckdb/node-api';
import {
  type ParquetOptions,
  parquetCopyOptionsSql,
  partitionParams,
  stagedCopyOptionsSql,
  stagedInputSql,
  winnerRowsSql,
  winnersSql,
} from '../src/compaction/compactionSql.js';
import { DEFAULT_COMPACTION_SETTINGS } from '../src/compaction/compactPartition.js';
import { installTally, openTally, TALLY_FUNCTION } from '../src/compaction/tally.js';
import { openDuckDb } from '../src/duckdb/openDuckDb.js';
import { quoteLiteral } from '../src/sql/quote.js';

/**
 * How the statement keeps current rows: the real JS tally; `count-js`, a tally with its counters bound to
 * the function instead of looked up by a run-key string on every row (the change proposed to the lead);
 * a JS UDF that only filters; or plain SQL (the floor: no counts at all).
 */
export type KeepVariant = 'tally' | 'count-js' | 'noop-js' | 'sql';

export interface ExplainRequest {
  readonly stagingDir: string;
  readonly tenant: string;
  readonly date: string;
  readonly out: string;
  readonly memory: string;
  readonly threads: number;
  readonly keep: KeepVariant;
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
  const runKey = 'bench-explain';
  let keepFunction: string = TALLY_FUNCTION;
  const counted: number[] = [];
  const tally = openTally(runKey);
  try {
    if (request.keep === 'tally') {
      await installTally(db);
    } else if (request.keep === 'count-js' || request.keep === 'noop-js') {
      keepFunction = request.keep === 'count-js' ? 'bench_count_js' : 'bench_keep_js';
      connection.registerScalarFunction(keepCurrentFunction(keepFunction, request.keep === 'count-js' ? counted : undefined));
    } else {
      keepFunction = 'bench_keep_sql';
      await connection.run(`CREATE MACRO ${keepFunction}(run, kind, origin, deleted_id, deleted_seq, deleted_at) AS kind = 0`);
    }
    await connection.run(`SET enable_profiling = 'json'`);
    await connection.run(`SET profiling_mode = 'detailed'`);
    await connection.run(`SET profiling_output = ${quoteLiteral(profile)}`);
    // the engine's three statements (compactionSql.ts), each profiled; operator times add up over them
    const staged = join(request.out, 'staged.parquet');
    const sources = { staged, published: [], tombstones: [] };
    const statements = [
      {
        sql: `COPY (${stagedInputSql(files)}) TO ${quoteLiteral(staged)} (${stagedCopyOptionsSql(DEFAULT_COMPACTION_SETTINGS)})`,
        params: partitionParams(request.tenant, request.date),
      },
      { sql: `CREATE OR REPLACE TEMP TABLE winners AS ${winnersSql(sources, keepFunction, runKey)}` },
      {
        sql: `COPY (${winnerRowsSql(sources, 'winners')}) TO ${quoteLiteral(outDir)} (${parquetCopyOptionsSql({ ...DEFAULT_COMPACTION_SETTINGS, ...request.parquet })})`,
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
      keep: request.keep,
      rows,
      statementMs,
      statementsMs,
      latencyS: round3(latency),
      operatorsS: operators,
      peakBufferMB: Math.round(peakBuffer / 1e6),
      peakSpillMB: Math.round(peakSpill / 1e6),
      tally: request.keep === 'tally' ? tally.read() : request.keep === 'count-js' ? counted : undefined,
    };
  } finally {
    tally.end();
    connection.closeSync();
    db.closeSync();
    await rm(outDir, { recursive: true, force: true });
  }
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;

/**
 * A JS keep-function of the tally's shape (run, kind, origin, deleted id/seq/at) → kind = 0: with `counted`, it also counts the kinds
 * (the tally without the run-key lookup); without, it only filters (the cost of calling JS at all).
 */
function keepCurrentFunction(name: string, counted?: number[]): DuckDBScalarFunction {
  return DuckDBScalarFunction.create({
    name,
    returnType: BOOLEAN,
    parameterTypes: [VARCHAR, INTEGER, INTEGER, VARCHAR, VARCHAR, BIGINT],
    volatile: true,
    specialHandling: true,
    mainFunction: (_info, input, output) => {
      const kinds = input.getColumnVector(1);
      for (let row = 0; row < input.rowCount; row++) {
        const kind = kinds.getItem(row) as number;
        if (counted) counted[kind] = (counted[kind] ?? 0) + 1;
        output.setItem(row, kind === 0);
      }
      output.flush();
    },
  });
}
