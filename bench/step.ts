/**
 * One measured step of the benchmark, run in its own process so its peak RSS is its own:
 *   node bin/run-ts.mjs bench/step.ts MODE OUT_DIR JSON_ARGS
 *   node bin/run-ts.mjs bench/step.ts project|bare ROOT TENANT DATE OUT_DIR MEMORY THREADS   (the lead's form)
 * Modes: project, bare, bareDay, peer, polars, explain, tenants, store, split (one task of a split compaction), compare
 * (two sets of Parquet files, row for row). Prints one JSON line: { mode, ms, maxRssMB, peakTempMB, ... }.
 */
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from '../src/core/config.js';
import { quoteLiteral } from '../src/core/sql/quote.js';
import { STAGING_ROOT, stagingKey, stagingPrefix } from '../src/core/staging/layout.js';
import { gzipNdjson } from '../src/core/staging/ndjson.js';
import { mapLimit } from '../src/core/util/concurrency.js';
import { LATEST_FIRST_SQL, parquetProjectionSql, readStagingSql } from '../src/engine/compactionSql.js';
import { compactPartition, DEFAULT_COMPACTION_SETTINGS } from '../src/engine/compactPartition.js';
import { resultFailed } from '../src/engine/resultFailed.js';
import { commitSplit, mapRange, reduceBucket, type SplitRef, type SplitShape, startSplit } from '../src/engine/splitPartition.js';
import { type CompactionJob, type RunRef, recordJobResult, runJob } from '../src/jobs/fanOut.js';
import { runCompaction } from '../src/jobs/runCompaction.js';
import { withCompactionDeps } from '../src/jobs/workspace.js';
import { openDuckDb } from '../src/ports/duckdb/openDuckDb.js';
import { LocalStore } from '../src/ports/store/LocalStore.js';
import type { ObjectStore } from '../src/ports/store/ObjectStore.js';
import { BLOB_REQUEST_MODEL, CountingStore, S3_REQUEST_MODEL } from '../tools/CountingStore.js';
import { LatencyStore } from '../tools/LatencyStore.js';
import { diskUsage } from './diskUsage.js';
import { explainCompaction } from './explainCompaction.js';
import { peerConvert } from './peerConvert.js';
import { polarsConvert } from './peerPolars.js';

/** Where a `store` step finds its store. */
export type StoreTarget =
  | { kind: 'local'; root: string }
  | { kind: 's3'; endpoint: string; bucket: string }
  | { kind: 'blob'; connectionString: string; container: string };

export async function main(argv: string[]): Promise<number> {
  const [mode, ...rest] = argv as [string, ...string[]];
  const legacy = mode === 'project' || mode === 'bare';
  // project/bare keep the positional form; the other modes take OUT_DIR and one JSON argument.
  const out = legacy ? (rest[3] as string) : (rest[0] as string);
  const args = legacy ? {} : (JSON.parse(rest[1] ?? '{}') as Record<string, unknown>);
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
  if (legacy) {
    const [root, tenant, date, , memory, threads] = rest as [string, string, string, string, string, string];
    result =
      mode === 'project'
        ? await project(root, tenant, date, out, memory, threads)
        : await bare(root, tenant, date, out, memory, threads);
  } else if (mode === 'polars') {
    const r = await polarsConvert(args.stagingDir as string, join(out, 'polars.parquet'));
    result = { rows: r.rowsWritten, bytesWritten: r.bytesWritten, timings: r.timings };
  } else if (mode === 'peer') {
    const r = await peerConvert(args.stagingDir as string, join(out, 'peer.parquet'));
    result = { rows: r.rowsWritten, rowsRead: r.rowsRead, bytesWritten: r.bytesWritten, timings: r.timings };
  } else if (mode === 'explain') {
    result = await explainCompaction({
      stagingDir: args.stagingDir as string,
      tenant: args.tenant as string,
      date: args.date as string,
      out,
      memory: args.memory as string,
      threads: Number(args.threads),
      parquet: args.parquet as Record<string, number> | undefined,
    });
  } else if (mode === 'tenants') {
    result = await tenantsRun(out, args);
  } else if (mode === 'bareDay') {
    result = await bareDay(args.root as string, args.date as string, out, args.memory as string, String(args.threads));
  } else if (mode === 'intraday') {
    result = await intradayRun(out, args);
  } else if (mode === 'fanout') {
    result = await fanOutWorker(out, args);
  } else if (mode === 'store') {
    result = await viaStore(args.target as StoreTarget, args.tenant as string, args.date as string, out, args);
  } else if (mode === 'split') {
    result = await splitTask(out, args as unknown as SplitTaskArgs);
  } else if (mode === 'compare') {
    result = await compareRows(args.a as string[], args.b as string[], out, args.memory as string, Number(args.threads));
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

/**
 * A run over every tenant with staging (runCompaction, TENANT_ID=*), through a counting store with an
 * optional fixed delay per request (`latencyMs`); `commitBatch` caps the partitions per table version,
 * `today` runs the intraday form (`--today`).
 */
async function tenantsRun(out: string, args: Record<string, unknown>) {
  const config = loadConfig({
    DATA_DIR: args.root as string,
    TEMP_DIR: out,
    TENANT_ID: '*',
    DUCKDB_MEMORY_LIMIT: args.memory as string,
    DUCKDB_THREADS: String(args.threads),
    COMPACT_CONCURRENCY: String(args.concurrency),
  });
  const latencyMs = Number(args.latencyMs ?? 0);
  const local = new LocalStore(args.root as string);
  const store = new CountingStore(latencyMs > 0 ? new LatencyStore(local, latencyMs) : local);
  let commits = 0;
  let batched = 0;
  const log = (event: string, fields: Record<string, unknown>) => {
    if (event !== 'table.committed') return;
    commits++;
    batched = Math.max(batched, Number(fields.batched ?? 1));
  };
  const summary = await runCompaction({
    store,
    config,
    date: args.date as string,
    log,
    ...(args.commitBatch === undefined ? {} : { table: { commitBatch: Number(args.commitBatch) } }),
  });
  const durations = summary.results.map((r) => r.durationMs).sort((a, b) => a - b);
  const phase = (name: string) => summary.results.reduce((n, r) => n + (r.timingsMs[name] ?? 0), 0);
  return {
    ok: summary.ok,
    tenants: summary.totals.tenants,
    failed: summary.totals.failed,
    rows: summary.totals.rowsWritten,
    rowsRead: summary.totals.rowsRead,
    inputs: summary.results.reduce((n, r) => n + r.inputs, 0),
    tenantMs: { p50: pct(durations, 0.5), p95: pct(durations, 0.95), max: durations.at(-1) ?? 0 },
    phaseMsSum: Object.fromEntries(['list', 'download', 'compact', 'verify', 'upload', 'commit'].map((p) => [p, phase(p)])),
    operations: store.counts().operations,
    byArea: store.byArea(),
    tableCommits: commits,
    largestBatch: batched,
    latencyMs,
  };
}

/**
 * An intraday run after a night: every tenant of the staging day is compacted (not measured), then gains
 * `newMessages` messages in one staging object, and one intraday run (runCompaction `intraday`, at 14:00 JST
 * of that day) folds them in: its wall, CPU and store requests, with `latencyMs` per request.
 */
async function intradayRun(out: string, args: Record<string, unknown>) {
  const config = loadConfig({
    DATA_DIR: args.root as string,
    TEMP_DIR: out,
    TENANT_ID: '*',
    DUCKDB_MEMORY_LIMIT: args.memory as string,
    DUCKDB_THREADS: String(args.threads),
    COMPACT_CONCURRENCY: String(args.concurrency),
  });
  const date = args.date as string;
  const local = new LocalStore(args.root as string);
  const night = await runCompaction({ store: local, config, date });
  const added = Number(args.newMessages);
  for (const r of night.results) {
    const at = Date.parse(`${date}T04:00:00Z`);
    const records = Array.from({ length: added }, (_, i) => ({
      tenant_id: r.tenant,
      dt: date,
      message_id: `intraday-${r.tenant}-${i}`,
      conversation_id: 'conv-intraday',
      sender_id: 'user-1',
      role: 'user',
      content: `昼の追加メッセージ ${i}`,
      created_at: at + i,
      updated_at: at + i,
      attributes: '{}',
      source: 'dynamodb',
      source_seq: String(90_000_000_000_000_000_000n + BigInt(i)),
      ingested_at: at + 60_000,
      op: 'upsert',
    }));
    await local.putBytes(stagingKey(r.tenant, date, `intraday_${r.tenant}.ndjson.gz`), gzipNdjson(records));
  }
  const latencyMs = Number(args.latencyMs ?? 0);
  const store = new CountingStore(latencyMs > 0 ? new LatencyStore(local, latencyMs) : local);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const at = Date.parse(`${date}T14:00:00+09:00`);
  const summary = await runCompaction({ store, config, intraday: true, now: () => at });
  const intradayMs = Math.round(performance.now() - t0);
  const cpu = process.cpuUsage(cpu0);
  return {
    ok: summary.ok,
    nightRows: night.totals.rowsWritten,
    partitions: summary.results.length,
    rows: summary.totals.rowsWritten,
    rowsRead: summary.totals.rowsRead,
    // a partition that failed or was locked, named with its error (the run's `ok` is false then)
    failed: summary.results.filter(resultFailed).map((r) => ({ tenant: r.tenant, status: r.status, error: r.error })),
    intradayMs,
    intradayCpuS: Number(((cpu.user + cpu.system) / 1e6).toFixed(2)),
    operations: store.counts().operations,
    latencyMs,
  };
}

/**
 * One worker of the local fan-out (bench/scenarios/night.ts): runs its jobs `concurrency` at a time, each as one
 * compactor invocation does (withCompactionDeps: its own DuckDB instance and table object; runJob;
 * recordJobResult), through a counting store with `latencyMs` per request.
 */
async function fanOutWorker(out: string, args: Record<string, unknown>) {
  const config = loadConfig({
    DATA_DIR: args.root as string,
    TEMP_DIR: out,
    DUCKDB_MEMORY_LIMIT: args.memory as string,
    DUCKDB_THREADS: String(args.threads),
  });
  const latencyMs = Number(args.latencyMs ?? 0);
  const local = new LocalStore(args.root as string);
  const store = new CountingStore(latencyMs > 0 ? new LatencyStore(local, latencyMs) : local);
  const run = args.run as RunRef;
  const events = { commits: 0, commitRetries: 0, conflicts: 0 };
  const log = (event: string) => {
    if (event === 'table.committed') events.commits++;
    if (event === 'table.commit_retried') events.commitRetries++;
    if (event === 'partition.commit_conflict') events.conflicts++;
  };
  const jobMs: number[] = [];
  const jobRssMB: number[] = [];
  let failed = 0;
  const errors: string[] = [];
  await mapLimit(args.jobs as CompactionJob[], Number(args.concurrency), async (job) => {
    const t0 = performance.now();
    const result = await withCompactionDeps(config, store, Date.now, (deps) => runJob({ ...deps, log }, job));
    await recordJobResult(store, run, result);
    if (resultFailed(result)) {
      failed++;
      errors.push(`${result.tenant}/${result.date}: ${result.error}`);
    }
    jobMs.push(Math.round(performance.now() - t0));
    jobRssMB.push(Math.round(process.memoryUsage().rss / 1e6));
  });
  return {
    jobs: jobMs.length,
    failed,
    errors: errors.slice(0, 5),
    jobMs,
    jobRssMB,
    operations: store.counts().operations,
    ...events,
  };
}

async function project(root: string, tenant: string, date: string, out: string, memory: string, threads: string) {
  const db = await openDuckDb({ memoryLimit: memory, threads: Number(threads), workDirectory: join(out, 'work') });
  try {
    const r = await compactPartition(
      { store: new LocalStore(root), db, workDirectory: join(out, 'work'), settings: DEFAULT_COMPACTION_SETTINGS },
      tenant,
      date,
    );
    return {
      rows: r.rowsWritten,
      rowsRead: r.rowsRead,
      rowsCarried: r.rowsCarried,
      deletesApplied: r.deletesApplied,
      timings: r.timingsMs,
      bytesWritten: r.bytesWritten,
    };
  } finally {
    db.closeSync();
  }
}

/** The floor: one DuckDB statement over the same local files with the same dedup, nothing else. */
async function bare(root: string, tenant: string, date: string, out: string, memory: string, threads: string) {
  const dir = join(root, stagingPrefix(tenant, date));
  const files = (await readdir(dir)).sort().map((f) => join(dir, f));
  // The engine's instance settings (openDuckDb, allocator included): only the statement differs.
  const db = await openDuckDb({ memoryLimit: memory, threads: Number(threads), workDirectory: join(out, 'work') });
  const c = await db.connect();
  const copied = await c.run(`COPY (
        SELECT ${parquetProjectionSql()} FROM (
          SELECT * FROM ${readStagingSql(files)}
          QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY ${LATEST_FIRST_SQL}) = 1
        ) WHERE op <> 'delete'
      ) TO ${quoteLiteral(join(out, 'bare.parquet'))} (FORMAT parquet, COMPRESSION snappy)`);
  c.closeSync();
  db.closeSync();
  return { rows: Number(copied.rowsChanged), bytesWritten: (await stat(join(out, 'bare.parquet'))).size };
}

/**
 * The floor of a many-tenants run: one DuckDB statement over every tenant's staging of the day (the local files
 * as they lie) with the same latest-version selection per tenant and message, writing one Parquet folder per
 * tenant (PARTITION_BY) — no validation, no counts, no remembered deletes, no table commits.
 */
async function bareDay(root: string, date: string, out: string, memory: string, threads: string) {
  const staging = join(root, STAGING_ROOT);
  const files: string[] = [];
  for (const folder of (await readdir(staging)).sort()) {
    const dir = join(staging, folder, `dt=${date}`);
    const names = await readdir(dir).catch(() => [] as string[]);
    files.push(...names.sort().map((f) => join(dir, f)));
  }
  // The engine's instance settings (openDuckDb, allocator included): only the statement differs.
  const db = await openDuckDb({ memoryLimit: memory, threads: Number(threads), workDirectory: join(out, 'work') });
  const c = await db.connect();
  const copied = await c.run(`COPY (
        SELECT ${parquetProjectionSql()}, tenant_id AS tenant FROM (
          SELECT * FROM ${readStagingSql(files)}
          QUALIFY row_number() OVER (PARTITION BY tenant_id, message_id ORDER BY ${LATEST_FIRST_SQL}) = 1
        ) WHERE op <> 'delete'
      ) TO ${quoteLiteral(join(out, 'bare'))} (FORMAT parquet, COMPRESSION snappy, PARTITION_BY (tenant))`);
  c.closeSync();
  db.closeSync();
  return { rows: Number(copied.rowsChanged), files: files.length };
}

/** compactPartition through a remote store (s3rver / Azurite) or the local one, counting every operation. */
async function viaStore(target: StoreTarget, tenant: string, date: string, out: string, args: Record<string, unknown>) {
  let inner: ObjectStore;
  let model = S3_REQUEST_MODEL;
  let exact: Record<string, number> | undefined;
  if (target.kind === 'local') {
    inner = new LocalStore(target.root);
  } else if (target.kind === 's3') {
    const { S3Client } = await import('@aws-sdk/client-s3');
    const { S3Store } = await import('../stores/s3/S3Store.js');
    const client = new S3Client({
      endpoint: target.endpoint,
      region: 'ap-northeast-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    // Exact S3 API calls by command name, next to the decorator's model of them.
    exact = {};
    const calls = exact;
    client.middlewareStack.add(
      (next, context) => async (request) => {
        const name = (context as { commandName?: string }).commandName ?? 'unknown';
        calls[name] = (calls[name] ?? 0) + 1;
        return next(request);
      },
      { step: 'finalizeRequest', name: 'benchCountRequests' },
    );
    inner = new S3Store({ bucket: target.bucket, client });
  } else {
    const { BlobStore } = await import('../stores/blob/BlobStore.js');
    inner = new BlobStore({ connectionString: target.connectionString, containerName: target.container });
    model = BLOB_REQUEST_MODEL;
  }
  const store = new CountingStore(inner);
  const db = await openDuckDb({
    memoryLimit: args.memory as string,
    threads: Number(args.threads),
    workDirectory: join(out, 'work'),
  });
  try {
    const r = await compactPartition(
      { store, db, workDirectory: join(out, 'work'), settings: DEFAULT_COMPACTION_SETTINGS },
      tenant,
      date,
    );
    return {
      rows: r.rowsWritten,
      inputs: r.inputs,
      bytesWritten: r.bytesWritten,
      timings: r.timingsMs,
      operations: store.counts().operations,
      requests: store.requests(model),
      ...(exact ? { s3Calls: exact } : {}),
    };
  } finally {
    db.closeSync();
  }
}

/** One task of a split compaction in this process (its own DuckDB instance and work folder under OUT_DIR). */
export interface SplitTaskArgs {
  readonly root: string;
  readonly task: 'start' | 'map' | 'reduce' | 'commit';
  readonly tenant: string;
  readonly date: string;
  readonly shape?: SplitShape;
  readonly ref?: SplitRef;
  readonly index?: number;
  readonly memory: string;
  readonly threads: number;
}

async function splitTask(out: string, args: SplitTaskArgs) {
  const db = await openDuckDb({ memoryLimit: args.memory, threads: args.threads, workDirectory: join(out, 'work') });
  const deps = { store: new LocalStore(args.root), db, workDirectory: join(out, 'work'), settings: DEFAULT_COMPACTION_SETTINGS };
  const ref = args.ref as SplitRef;
  try {
    if (args.task === 'start') {
      const started = await startSplit(deps, args.tenant, args.date, args.shape as SplitShape);
      if (!('ref' in started)) throw new Error(`the split did not start: ${started.result.status} ${started.result.error ?? ''}`);
      return { ref: started.ref };
    }
    if (args.task === 'map') return await mapRange(deps, ref, args.index as number).then(() => ({}));
    if (args.task === 'reduce') return await reduceBucket(deps, ref, args.index as number).then(() => ({}));
    const r = await commitSplit(deps, ref);
    return {
      rows: r.rowsWritten,
      rowsRead: r.rowsRead,
      timings: r.timingsMs,
      bytesWritten: r.bytesWritten,
      outputs: r.outputFiles.length,
    };
  } finally {
    db.closeSync();
  }
}

/** Rows of `a` not in `b` and of `b` not in `a`, counting repeats (EXCEPT ALL both ways), over every column. */
async function compareRows(a: readonly string[], b: readonly string[], out: string, memory: string, threads: number) {
  const db = await openDuckDb({ memoryLimit: memory, threads, workDirectory: join(out, 'work') });
  const c = await db.connect();
  try {
    const read = (files: readonly string[]) => `SELECT * FROM read_parquet([${files.map(quoteLiteral).join(', ')}])`;
    const reader = await c.runAndReadAll(`SELECT
        (SELECT count(*) FROM (${read(a)})) AS a_rows,
        (SELECT count(*) FROM (${read(b)})) AS b_rows,
        (SELECT count(*) FROM (${read(a)} EXCEPT ALL ${read(b)})) AS only_a,
        (SELECT count(*) FROM (${read(b)} EXCEPT ALL ${read(a)})) AS only_b`);
    const row = reader.getRowObjectsJS()[0] as Record<string, bigint>;
    return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Number(v)]));
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

function pct(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
}
