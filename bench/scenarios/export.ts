/**
 * Scenario `export`: `backfill --source dynamodb --from-export` over a generated DynamoDB export of N items
 * (gzip DynamoDB-JSON lines in the documented layout, in a local folder store), without DATE (one pass, every
 * tenant-day), in a child process; next to a bare DuckDB statement reading the same gzip files
 * (`SELECT count(*) FROM read_ndjson(...)`), also in a child process. Peak RSS and CPU of each child come from
 * GNU time when the box has it (else the child's own process.resourceUsage().maxRSS).
 *
 * Run alone: `node bin/run-ts.mjs bench/scenarios/export.ts [N]`; in the bench: `npm run bench -- --scenario export --messages N`.
 */
import { spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { marshall } from '@aws-sdk/util-dynamodb';

const GNU_TIME = '/usr/bin/time';
const PREFIX = 'exports/bench';
const EXPORT_ID = '01754900000000-benchexp';
const TENANTS = ['t0', 't1', 't2', 't3'];
const DAYS = ['2025-08-10', '2025-08-11', '2025-08-12'];
const ITEMS_PER_FILE = 100_000;

export interface ExportBenchResult {
  readonly items: number;
  readonly files: number;
  readonly gzipMB: number;
  readonly generateS: number;
  readonly backfill: Record<string, unknown>;
  readonly duckdb: Record<string, unknown>;
}

/** Writes N export items (4 tenants × 3 JST days) as DynamoDB writes a full export; returns the data file keys. */
export async function writeBenchExport(root: string, items: number): Promise<string[]> {
  const folder = `${PREFIX}/AWSDynamoDB/${EXPORT_ID}`;
  const files: string[] = [];
  const filler = 'これはベンチマーク用のメッセージです。 the quick brown fox jumps over the lazy dog. '.repeat(2);
  for (let start = 0, n = 0; start < items; start += ITEMS_PER_FILE, n++) {
    const key = `${folder}/data/${String(n).padStart(5, '0')}.json.gz`;
    files.push(key);
    await mkdir(dirname(join(root, key)), { recursive: true });
    const end = Math.min(items, start + ITEMS_PER_FILE);
    async function* lines() {
      let chunk: string[] = [];
      for (let i = start; i < end; i++) {
        const day = DAYS[i % DAYS.length] as string;
        const item = {
          tenantId: TENANTS[Math.floor(i / DAYS.length) % TENANTS.length],
          messageId: `m${String(i).padStart(9, '0')}`,
          conversationId: `c${i % 5000}`,
          createdAt: `${day}T${String(i % 24).padStart(2, '0')}:00:00+09:00`,
          role: i % 2 === 0 ? 'user' : 'assistant',
          content: `${i}: ${filler}`,
          tokens: i % 700,
        };
        chunk.push(`${JSON.stringify({ Item: marshall(item) })}\n`);
        if (chunk.length === 1000) {
          yield chunk.join('');
          chunk = [];
        }
      }
      if (chunk.length > 0) yield chunk.join('');
    }
    await pipeline(lines, createGzip(), createWriteStream(join(root, key)));
  }
  await writeFile(
    join(root, folder, 'manifest-files.json'),
    files.map((key) => JSON.stringify({ itemCount: ITEMS_PER_FILE, md5Checksum: 'x', etag: 'y', dataFileS3Key: key })).join('\n'),
  );
  await writeFile(
    join(root, folder, 'manifest-summary.json'),
    JSON.stringify({
      version: '2020-06-30',
      exportTime: '2025-08-13T00:00:00.000Z',
      startTime: '2025-08-13T00:00:00.000Z',
      endTime: '2025-08-13T00:00:00.000Z',
      manifestFilesS3Key: `${folder}/manifest-files.json`,
      itemCount: items,
      outputFormat: 'DYNAMODB_JSON',
      exportType: 'FULL_EXPORT',
    }),
  );
  return files;
}

/** Runs a child under GNU time: wall time, CPU seconds, peak RSS (MB) and the 1-minute load before/after. */
function timed(command: string[], env: NodeJS.ProcessEnv): Record<string, unknown> {
  const before = loadavg()[0] ?? 0;
  const timeFile = join(tmpdir(), `makoto-lake-export-bench-time-${process.pid}`);
  const gnu = existsSync(GNU_TIME);
  const argv = gnu ? [GNU_TIME, '-f', '%e %U %S %M', '-o', timeFile, ...command] : command;
  const t0 = performance.now();
  const run = spawnSync(argv[0] as string, argv.slice(1), { encoding: 'utf8', maxBuffer: 1 << 28, env });
  const ms = Math.round(performance.now() - t0);
  const out: Record<string, unknown> = { exit: run.status, ms };
  if (gnu) {
    const [, user, system, maxKB] = readFileSync(timeFile, 'utf8').trim().split('\n').pop()?.split(' ').map(Number) ?? [];
    Object.assign(out, { cpuS: Number(((user ?? 0) + (system ?? 0)).toFixed(2)), maxRssMB: Math.round((maxKB ?? 0) / 1024) });
  }
  const last = run.stdout.trim().split('\n').pop() ?? '';
  if (last.startsWith('{"child"')) Object.assign(out, (JSON.parse(last) as { child: Record<string, unknown> }).child);
  out.load1 = [Number(before.toFixed(2)), Number((loadavg()[0] ?? 0).toFixed(2))];
  if (run.status !== 0) out.stderr = run.stderr.split('\n').slice(-5).join('\n');
  return out;
}

/** The scenario: generate, backfill every tenant-day in one pass, then bare DuckDB over the same files. */
export async function exportScenario(root: string, items: number, say: (t: string) => void): Promise<ExportBenchResult> {
  const dataDir = join(root, 'export-data');
  const g0 = performance.now();
  const files = await writeBenchExport(dataDir, items);
  const generateS = Number(((performance.now() - g0) / 1000).toFixed(1));
  const gzip = spawnSync('du', ['-sk', join(dataDir, PREFIX)], { encoding: 'utf8' });
  const gzipMB = Math.round(Number(gzip.stdout.split('\t')[0] ?? 0) / 1024);
  say(
    `\nscenario export: backfill --from-export of ${items} items (${files.length} gzip files, ${gzipMB} MB, ${TENANTS.length} tenants × ${DAYS.length} days) without DATE, in one pass; generated in ${generateS} s`,
  );
  const backfill = timed(
    [process.execPath, 'bin/makoto-lake.cjs', 'backfill', '--source', 'dynamodb', TENANTS.join(','), '--from-export', PREFIX],
    { ...process.env, DATA_DIR: dataDir, TEMP_DIR: join(root, 'export-tmp'), AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1' },
  );
  say(`makoto-lake backfill --from-export: ${JSON.stringify(backfill)}`);
  const glob = join(dataDir, PREFIX, 'AWSDynamoDB', EXPORT_ID, 'data', '*.json.gz');
  const duckdb = timed([process.execPath, 'bin/run-ts.mjs', 'bench/scenarios/export.ts', '--duckdb', glob], process.env);
  say(`bare DuckDB read_ndjson count: ${JSON.stringify(duckdb)}`);
  return { items, files: files.length, gzipMB, generateS, backfill, duckdb };
}

/** The bare DuckDB child: count the export's lines through read_ndjson; prints one `{"child": ...}` line. */
async function duckdbChild(glob: string): Promise<void> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const instance = await DuckDBInstance.create(':memory:', { threads: '2', memory_limit: '1GB' });
  const connection = await instance.connect();
  const t0 = performance.now();
  const reader = await connection.runAndReadAll(`SELECT count(*) AS n FROM read_ndjson('${glob.replace(/'/g, "''")}')`);
  const rows = Number(reader.getRows()[0]?.[0]);
  const ms = Math.round(performance.now() - t0);
  connection.closeSync();
  console.log(JSON.stringify({ child: { rows, queryMs: ms, childMaxRssMB: Math.round(process.resourceUsage().maxRSS / 1024) } }));
}

/** `node bin/run-ts.mjs bench/scenarios/export.ts [N]` (the scenario alone), or `--duckdb GLOB` (its DuckDB child). */
export async function main(args: string[]): Promise<number> {
  if (args[0] === '--duckdb') {
    await duckdbChild(args[1] as string);
    return 0;
  }
  const root = await mkdtemp(join(tmpdir(), 'makoto-lake-export-bench-'));
  try {
    const result = await exportScenario(root, Number(args[0] ?? 1_000_000), (t) => console.log(t));
    return result.backfill.exit === 0 && result.duckdb.exit === 0 ? 0 : 1;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
