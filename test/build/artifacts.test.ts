import { spawnSync } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, type BuiltArtifact, buildArtifacts, LAMBDA_FUNCTIONS, sizeReport } from '../../scripts/build.js';
import { BlobStore } from '../../stores/blob/BlobStore.js';
import { S3Store } from '../../stores/s3/S3Store.js';
import { startAzurite } from '../../tools/azureServers.js';
import type { RunningServer } from '../../tools/servers.js';
import { REGION, S3RVER_CREDENTIALS, type S3rver, startS3rver } from '../aws/support/localAws.js';
import { chatItem, cosmosDocument, dynamodbRecord } from '../kit/factories.js';
import { readLake } from '../kit/readParquet.js';

/**
 * Builds the deployables (scripts/build.ts, what `npm run build` runs), copies each into an empty folder
 * outside the repository (so nothing resolves from its node_modules) and runs it as its platform does.
 */
let work: string;
let dist: string;
let artifacts: BuiltArtifact[];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'makoto-lake-artifacts-'));
  dist = join(work, 'dist');
  artifacts = await buildArtifacts(dist);
}, 300_000);
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Copies a built artifact into a new empty folder. */
async function deployed(artifact: string): Promise<string> {
  const target = await mkdtemp(join(work, 'deployed-'));
  await cp(join(dist, artifact), target, { recursive: true });
  return target;
}

/**
 * The Lambda Node runtime's part: load the handler file of the task folder, call it with an event and a context.
 * Run with test/kit/duckdbLoadHook.cjs preloaded, which reports DuckDB's allocator options as they stood when its
 * native library loaded (null: never loaded).
 */
const DUCKDB_LOAD_HOOK = fileURLToPath(new URL('../kit/duckdbLoadHook.cjs', import.meta.url));
const LAMBDA_RUNTIME = `
const [task, handler] = process.argv.slice(2);
const [file, name] = handler.split('.');
const context = {
  functionName: 'makoto-test', awsRequestId: 'req-1', memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
  getRemainingTimeInMillis: () => 900000, callbackWaitsForEmptyEventLoop: true,
};
Promise.resolve()
  .then(() => require(require('node:path').join(task, file + '.js'))[name](JSON.parse(process.env.EVENT), context))
  .then((r) => process.stdout.write('RESULT ' + JSON.stringify(r)), (e) => { console.error(e); process.exitCode = 1; });
`;

async function invokeLambda(
  fn: (typeof LAMBDA_FUNCTIONS)[number],
  event: unknown,
  env: Record<string, string>,
  layer?: string,
): Promise<{ status: number | null; result: unknown; stderr: string; allocatorAtLoad?: unknown }> {
  const task = await deployed(ARTIFACTS.lambda(fn.name));
  const runtime = join(await mkdtemp(join(work, 'runtime-')), 'runtime.cjs');
  await writeFile(runtime, LAMBDA_RUNTIME);
  const handler = `${fn.file.replace(/\.js$/, '')}.handler`;
  const run = spawnSync(process.execPath, ['--require', DUCKDB_LOAD_HOOK, runtime, task, handler], {
    cwd: task,
    // As Lambda does with a layer mounted at /opt: NODE_PATH=/opt/nodejs/node_modules.
    env: {
      PATH: process.env.PATH,
      EVENT: JSON.stringify(event),
      ...(layer ? { NODE_PATH: join(layer, 'nodejs/node_modules') } : {}),
      ...env,
    },
    encoding: 'utf8',
    timeout: 180_000,
  });
  const out = /^RESULT (.*)$/m.exec(run.stdout)?.[1];
  const allocator = /^ALLOCATOR (.*)$/m.exec(run.stdout)?.[1];
  return {
    status: run.status,
    result: out === undefined ? undefined : JSON.parse(out),
    stderr: run.stderr,
    allocatorAtLoad: allocator === undefined ? undefined : JSON.parse(allocator),
  };
}

describe('npm run build', () => {
  it('lays out the Lambda bundles, a DuckDB-only layer and the Functions app, and reports sizes against the limits', async () => {
    expect(artifacts.map((a) => [a.name, a.path.slice(dist.length + 1)])).toStrictEqual([
      ['Lambda stream-ingest', 'lambda/stream-ingest'],
      ['Lambda compactor', 'lambda/compactor'],
      ['Lambda stream-redrive', 'lambda/stream-redrive'],
      ['Lambda compaction-plan', 'lambda/compaction-plan'],
      ['Lambda compaction-summary', 'lambda/compaction-summary'],
      ['Lambda layer duckdb', 'layer-duckdb'],
      ['Azure Functions app', 'azure'],
    ]);
    expect((await readdir(join(dist, 'lambda/stream-ingest'))).sort()).toStrictEqual(['handler.js', 'handler.js.map']);
    expect((await readdir(join(dist, 'lambda/compactor'))).sort()).toStrictEqual(['lambda.js', 'lambda.js.map']);
    expect((await readdir(join(dist, 'lambda/stream-redrive'))).sort()).toStrictEqual(['redrive.js', 'redrive.js.map']);
    const layerModules = join(dist, 'layer-duckdb/nodejs/node_modules');
    expect(await readdir(join(dist, 'layer-duckdb'))).toStrictEqual(['nodejs']);
    expect((await readdir(layerModules)).sort()).toStrictEqual(['@duckdb', 'detect-libc']);
    expect((await readdir(join(layerModules, '@duckdb'))).sort()).toStrictEqual([
      'node-api',
      'node-bindings',
      'node-bindings-linux-x64',
    ]);
    expect((await readdir(join(dist, 'azure'))).sort()).toStrictEqual([
      'host.json',
      'index.mjs',
      'index.mjs.map',
      'node_modules',
      'package.json',
    ]);
    const app = JSON.parse(await readFile(join(dist, 'azure/package.json'), 'utf8'));
    const root = JSON.parse(await readFile('package.json', 'utf8'));
    expect(app).toStrictEqual({
      name: 'makoto-lake-functions',
      version: root.version,
      private: true,
      type: 'module',
      main: 'index.mjs',
      // the Functions runtime's Node (docs/AZURE.md), as azure/package.json pins it; not the root's `>=20`
      engines: { node: '>=22 <23' },
      dependencies: { '@duckdb/node-api': root.dependencies['@duckdb/node-api'] },
    });
    expect(app.engines).toStrictEqual(JSON.parse(await readFile('azure/package.json', 'utf8')).engines);
    expect(await readFile(join(dist, 'azure/host.json'), 'utf8')).toBe(await readFile('azure/host.json', 'utf8'));
    // esbuild names each inlined package in a comment: no cloud's SDK in the other's bundle, no tsx, no DuckDB.
    for (const fn of LAMBDA_FUNCTIONS) {
      const code = await readFile(join(dist, ARTIFACTS.lambda(fn.name), fn.file), 'utf8');
      expect(code).toMatch(/^\/\/ node_modules\/@aws-sdk\/client-s3\//m);
      expect(code).not.toMatch(/^\/\/ node_modules\/(@azure|@duckdb|tsx)\//m);
    }
    const azureCode = await readFile(join(dist, 'azure/index.mjs'), 'utf8');
    expect(azureCode).toMatch(/^\/\/ node_modules\/@azure\/storage-blob\//m);
    expect(azureCode).not.toMatch(/^\/\/ node_modules\/(@aws-sdk|@duckdb|tsx)\//m);

    const report = sizeReport(artifacts);
    expect(report.slice(7).map((l) => l.replace(/[\d.]+ MB/g, 'N MB'))).toStrictEqual([
      'stream-ingest function + layers: N MB of N MB unzipped (Lambda limit)',
      'compactor function + layers: N MB of N MB unzipped (Lambda limit)',
      'stream-redrive function + layers: N MB of N MB unzipped (Lambda limit)',
      'compaction-plan function + layers: N MB of N MB unzipped (Lambda limit)',
      'compaction-summary function + layers: N MB of N MB unzipped (Lambda limit)',
      'Azure Functions app: N MB of N MB (Consumption plan storage)',
    ]);
    const [ingest, compactor, redrive, , , layer] = artifacts.map((a) => a.bytes) as number[] as [
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    expect(redrive).toBeLessThan(10 * 1024 * 1024);
    expect(compactor + layer).toBeLessThan(250 * 1024 * 1024);
    expect(ingest).toBeLessThan(10 * 1024 * 1024);
  });
});

describe('the Lambda bundles, run from empty folders with the layer on NODE_PATH', () => {
  let s3: S3rver;
  const bucket = 'lake';
  beforeAll(async () => {
    s3 = await startS3rver();
    await s3.createBucket(bucket);
  });
  afterAll(async () => {
    await s3?.stop();
  });
  const env = () => ({
    S3_BUCKET_NAME: bucket,
    // spawnSync below blocks this process, and with it the conditional proxy: the Lambdas talk to s3rver itself
    S3_ENDPOINT: s3.rawEndpoint,
    S3_FORCE_PATH_STYLE: 'true',
    AWS_REGION: REGION,
    AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512',
    TENANT_ID: 'acme',
  });
  const [ingestFn, compactorFn] = LAMBDA_FUNCTIONS;

  it('stream-ingest stages a DynamoDB stream batch; the compactor turns it into Parquet', async () => {
    const event = {
      Records: [
        dynamodbRecord({ seq: 101, item: chatItem({ messageId: 'm1', content: 'おはよう' }) }),
        dynamodbRecord({
          seq: 102,
          item: chatItem({ messageId: 'm2', role: 'assistant', createdAt: '2025-08-11T01:00:03.000Z' }),
        }),
      ],
    };
    const ingested = await invokeLambda(ingestFn, event, env());
    expect([ingested.status, ingested.result, ingested.allocatorAtLoad], ingested.stderr).toStrictEqual([
      0,
      { batchItemFailures: [] },
      null,
    ]);

    const layer = await deployed(ARTIFACTS.duckdbLayer);
    const compacted = await invokeLambda(compactorFn, { target_date: '2025-08-11', tenants: ['acme'] }, env(), layer);
    expect(compacted.status, compacted.stderr).toBe(0);
    // the bundle sets DuckDB's allocator options before it requires the layer's DuckDB (src/ports/duckdb/nodeApi.ts)
    expect(compacted.allocatorAtLoad).toBe('dirty_decay_ms:-1,muzzy_decay_ms:-1');
    expect((compacted.result as { totals: unknown }).totals).toMatchObject({ tenants: 1, failed: 0 });

    const client = s3.client();
    const rows = await readLake(new S3Store({ bucket, client }));
    client.destroy();
    const row = {
      tenant_id: 'acme',
      dt: '2025-08-11',
      conversation_id: 'c1',
      sender_id: 'u1',
      updated_at: null,
      source: 'dynamodb',
    };
    expect(rows).toStrictEqual([
      {
        ...row,
        message_id: 'm1',
        role: 'user',
        content: 'おはよう',
        created_at: '2025-08-11T01:00:00.000Z',
        source_seq: '101',
        attributes: {},
      },
      {
        ...row,
        message_id: 'm2',
        role: 'assistant',
        content: 'こんにちは',
        created_at: '2025-08-11T01:00:03.000Z',
        source_seq: '102',
        attributes: {},
      },
    ]);
  }, 240_000);

  it('the compactor bundle holds no DuckDB: without the layer it cannot start', async () => {
    const run = await invokeLambda(compactorFn, { target_date: '2025-08-11', tenants: ['acme'] }, env());
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("Cannot find module '@duckdb/node-api'");
  });
});

/** The Functions host's part: load the app (package.json main), then call registered handlers as the host would. */
const FUNCTIONS_HOST = `
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
const app = process.argv[2];
const { main } = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8'));
await import(pathToFileURL(join(app, main)).href);
const handlers = globalThis[Symbol.for('makoto-lake.hostStandIn.handlers')];
const context = (functionName) => ({
  functionName, invocationId: 'inv-1', retryContext: undefined,
  log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {},
});
const documents = JSON.parse(process.env.DOCUMENTS);
const ingested = await handlers.get('ingest_changefeed')(documents, context('ingest_changefeed'));
const request = { method: 'POST', text: async () => JSON.stringify({ target_date: '2025-08-11', tenants: ['acme'] }) };
const compacted = await handlers.get('compact_http')(request, context('compact_http'));
writeFileSync(process.env.RESULT_FILE, JSON.stringify({ ingested, status: compacted.status }));
`;

describe('the Functions app, run from an empty folder by the host stand-in', () => {
  let azurite: RunningServer & { connectionString: string };
  beforeAll(async () => {
    azurite = await startAzurite();
  });
  afterAll(async () => {
    await azurite?.stop();
  });

  it('registers its functions, stages change-feed documents in Blob storage and compacts them', async () => {
    const app = await deployed(ARTIFACTS.azure);
    const host = join(await mkdtemp(join(work, 'host-')), 'host.mjs');
    await writeFile(host, FUNCTIONS_HOST);
    const resultFile = join(work, 'azure-result.json');
    const documents = [cosmosDocument(1, { id: 'a1' }), cosmosDocument(2, { id: 'a2', content: 'また明日' })];
    const run = spawnSync(process.execPath, ['--require', resolve('test/azure/hostStandIn.cjs'), host, app], {
      cwd: app,
      env: {
        PATH: process.env.PATH,
        AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString,
        AZURE_STORAGE_CONTAINER: 'lake',
        DOCUMENTS: JSON.stringify(documents),
        RESULT_FILE: resultFile,
      },
      encoding: 'utf8',
      timeout: 180_000,
    });
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).map((f: { name: string }) => f.name)).toStrictEqual([
      'ingest_changefeed',
      'daily_batch',
      'intraday_batch', // INTRADAY_MINUTES unset: the default 60, registered
      'compact_http',
      'compact_job',
      'compact_job_poison',
      'compact_task',
      'compact_task_poison',
    ]);
    const result = JSON.parse(await readFile(resultFile, 'utf8'));
    expect(result).toMatchObject({ ingested: { received: 2, staged: 2, quarantined: 0 }, status: 200 });

    const rows = await readLake(new BlobStore({ connectionString: azurite.connectionString, containerName: 'lake' }));
    expect(rows.map((r) => [r.tenant_id, r.dt, r.message_id, r.content, r.source, r.source_seq])).toStrictEqual([
      ['acme', '2025-08-11', 'a1', 'こんにちは', 'cosmos', '1'],
      ['acme', '2025-08-11', 'a2', 'また明日', 'cosmos', '2'],
    ]);
  }, 240_000);
});
