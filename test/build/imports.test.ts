/**
 * Imports go one way. Entry points (compactor/, stream-ingest/, azure/, bin/) → store adapters (stores/) → the
 * core (src/), whose folders read as the pipeline and are layered (higher may import lower, never up):
 *   core (schema, layout, time, errors, quoting, config: no I/O) ← ports (ObjectStore, DuckDB, staging sink,
 *   source and stream readers) ← lake (the table: log, snapshot, commit, vacuum, planner) ← capture (ingest,
 *   redrive, backfill) and engine (DuckDB merge and split: the change the lake commits) ← ops (log fields,
 *   metrics, reports, status) ← jobs (job model, drivers' shared logic, end of run, erase, demo).
 * capture and engine stand side by side and never import each other; the lake never imports the engine.
 * Store adapters reach the core through its ports and core only. Nothing shipped imports test/, bench/,
 * scripts/ or tools/, and the core imports no cloud SDK. Firehose is a staging sink, never an object store.
 * bench/ and tools/ (what the bench and the tests share) import nothing from test/. Read from the source text
 * of every shipped (and benched) file.
 */
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SHIPPED_ROOTS = ['src', 'stores', 'compactor', 'stream-ingest', 'azure', 'bin'];
const SOURCE = /\.(ts|mts|cts|js|mjs|cjs)$/;
/** Cloud packages the core may use, and why: they are data formats, with no client, credentials or I/O. */
const CORE_MAY_IMPORT: Record<string, string> = {
  '@aws-sdk/util-dynamodb': "the DynamoDB JSON codec: a stream record's images are in that format",
};

/** What a store adapter may import from src/: the ports it implements and the core below them. */
const ADAPTER_MAY_IMPORT = /^src\/(core|ports)\//;
/** The layers of src/, lowest first; a folder of src/ not listed here is refused (every module has a layer). */
const SRC_LAYERS: Record<string, number> = { core: 0, ports: 1, lake: 2, capture: 3, engine: 3, ops: 4, jobs: 5 };

/** Layer of a repository path: higher may import lower, never the other way; equal ranks only within a folder. */
function layer(path: string): { name: string; rank: number } {
  if (/^(test|bench|scripts|tools)\//.test(path)) return { name: 'harness', rank: 99 };
  if (/^(compactor|stream-ingest|azure|bin)\//.test(path)) return { name: 'entry point', rank: 20 };
  if (path.startsWith('stores/')) return { name: 'store adapter', rank: 10 };
  const src = /^src\/([^/]+)\//.exec(path)?.[1];
  if (src !== undefined && src in SRC_LAYERS) return { name: src, rank: SRC_LAYERS[src] as number };
  if (path.startsWith('src/')) return { name: 'src/ outside every layer', rank: -1 };
  return { name: 'other', rank: 99 };
}

/** Why `from` must not import `to` (a repository path or a package name), or undefined when it may. */
function importProblem(from: string, to: string): string | undefined {
  if (!to.includes('/') || !/^(src|stores|compactor|stream-ingest|azure|bin|test|bench|scripts|tools)\//.test(to)) {
    // a package: the cloud-neutral core never imports a cloud SDK
    if (from.startsWith('src/') && /^@(aws-sdk|azure|smithy)\//.test(to) && !(to in CORE_MAY_IMPORT)) {
      return `${from}: the core imports ${to}`;
    }
    return undefined;
  }
  const a = layer(from);
  const b = layer(to);
  if (b.name === 'harness') return `${from}: shipped code imports ${to} (harness)`;
  if (a.rank < 0) return `${from}: ${a.name}`;
  if (b.rank < 0) return `${from}: imports ${to} (${b.name})`;
  if (b.rank > a.rank) return `${from}: ${a.name} imports ${to} (${b.name})`;
  if (b.rank === a.rank && a.name !== b.name) return `${from}: ${a.name} imports ${to} (${b.name}, beside it)`;
  if (a.name === 'store adapter' && to.startsWith('src/') && !ADAPTER_MAY_IMPORT.test(to)) {
    return `${from}: store adapter imports ${to} (a use case; adapters import src/ports/ and src/core/)`;
  }
  return undefined;
}

/** The classes a source text declares as implementing `iface`. */
function implementers(text: string, iface: string): string[] {
  return [...text.matchAll(new RegExp(`\\bclass\\s+(\\w+)[^{]*\\bimplements\\b[^{]*\\b${iface}\\b`, 'g'))].map(
    (m) => m[1] as string,
  );
}

/** Why a bench or tools file must not import `to`, or undefined when it may: bench/ and tools/ never import test/. */
function benchImportProblem(from: string, to: string): string | undefined {
  return to.startsWith('test/') ? `${from}: ${from.split('/')[0]} imports ${to} (test)` : undefined;
}

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await files(path)));
    else if (SOURCE.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** Every module specifier a file names: static, re-export, side-effect and dynamic imports, require(). */
function specifiers(text: string): string[] {
  const patterns = [
    /\b(?:import|export)\s[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /^\s*import\s*['"]([^'"]+)['"]/gm,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  return patterns.flatMap((p) => [...text.matchAll(p)].map((m) => m[1] as string));
}

/** [importing file, imported repository path or package] for every file under `roots` (default: shipped). */
async function importEdges(roots: readonly string[] = SHIPPED_ROOTS): Promise<[string, string][]> {
  const edges: [string, string][] = [];
  for (const root of roots) {
    for (const file of await files(root)) {
      const text = await readFile(file, 'utf8');
      for (const spec of specifiers(text)) {
        const target = spec.startsWith('.') ? relative('.', normalize(join(dirname(file), spec))).replace(/\.js$/, '.ts') : spec;
        edges.push([file, target]);
      }
    }
  }
  return edges;
}

/**
 * Why `file` must not import DuckDB's bindings as written in `text`, or undefined when it may: DuckDB's
 * allocator reads its options when the native library loads, so only src/ports/duckdb/nodeApi.ts (which sets them
 * first) imports its values; everywhere else, types only.
 */
function duckdbImportProblem(file: string, text: string): string | undefined {
  if (file === 'src/ports/duckdb/nodeApi.ts') return undefined;
  const loads = [...text.matchAll(/\b(import|export)\s([^;]*?)\bfrom\s*['"](@duckdb\/[^'"]+)['"]/g)].filter(
    ([, keyword, what]) => !(keyword === 'import' && /^type\s/.test(what ?? '')),
  );
  const other = /\b(?:import\(|require\(|^\s*import\s*)['"]@duckdb\//m.test(text);
  return loads.length > 0 || other ? `${file}: loads DuckDB other than through src/ports/duckdb/nodeApi.ts` : undefined;
}

describe('import direction', () => {
  it('nothing shipped imports the harness, no import points back up a layer, the core imports no cloud SDK', async () => {
    const edges = await importEdges();
    // the scan sees imports of every kind it must judge
    expect(edges).toContainEqual(['compactor/commands/demo.ts', 'src/jobs/demo/runDemo.ts']);
    expect(edges).toContainEqual(['stores/createStore.ts', 'src/ports/store/LocalStore.ts']);
    expect(edges).toContainEqual(['stores/createStore.ts', 'stores/s3/S3Store.ts']);
    expect(edges).toContainEqual(['stores/s3/S3Store.ts', '@aws-sdk/client-s3']);
    expect(edges.map(([from, to]) => importProblem(from, to)).filter((p) => p !== undefined)).toStrictEqual([]);
  });

  it("DuckDB's bindings load only through src/ports/duckdb/nodeApi.ts (after its allocator options); elsewhere types only", async () => {
    const problems: string[] = [];
    let typeImports = 0;
    for (const root of SHIPPED_ROOTS) {
      for (const file of await files(root)) {
        const text = await readFile(file, 'utf8');
        typeImports += (text.match(/^import type \{[^}]*\} from '@duckdb\/node-api';$/gm) ?? []).length;
        const problem = duckdbImportProblem(file, text);
        if (problem) problems.push(problem);
      }
    }
    expect(problems).toStrictEqual([]);
    expect(typeImports).toBeGreaterThanOrEqual(6);
    expect(
      [
        "import { DuckDBInstance } from '@duckdb/node-api';",
        "import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';",
        "export { VARCHAR } from '@duckdb/node-api';",
        "const api = await import('@duckdb/node-api');",
        "import '@duckdb/node-bindings';",
        "import type { DuckDBInstance } from '@duckdb/node-api';",
      ].map((line) => duckdbImportProblem('src/x.ts', line)),
    ).toStrictEqual([...Array(5).fill('src/x.ts: loads DuckDB other than through src/ports/duckdb/nodeApi.ts'), undefined]);
  });

  it('the rule refuses each kind of wrong-way import', () => {
    expect(
      [
        ['src/engine/compactPartition.ts', 'test/kit/readParquet.ts'],
        ['src/capture/ingest/ingestBatch.ts', 'bench/bench.ts'],
        ['compactor/cli.ts', 'tools/CountingStore.ts'],
        ['stores/s3/S3Store.ts', 'scripts/build.ts'],
        ['src/core/config.ts', 'stores/createStore.ts'],
        ['src/jobs/runCompaction.ts', 'compactor/cli.ts'],
        ['stores/createStore.ts', 'azure/runtime.ts'],
        ['src/ports/store/LocalStore.ts', 'src/lake/manifest.ts'],
        ['src/lake/table/deltaTable.ts', 'src/engine/mergePartition.ts'],
        ['src/capture/backfill/backfillChange.ts', 'src/engine/compactionSql.ts'],
        ['src/engine/compactPartition.ts', 'src/capture/ingest/ingestBatch.ts'],
        ['src/ops/report.ts', 'src/jobs/endRun.ts'],
        ['src/core/config.ts', 'src/jobs/erase/retention.ts'],
        ['src/misc/x.ts', 'src/core/errors.ts'],
        ['src/capture/ingest/sources.ts', '@aws-sdk/client-dynamodb'],
        ['compactor/cli.ts', 'src/jobs/runCompaction.ts'],
        ['azure/runtime.ts', 'stores/createStore.ts'],
        ['src/engine/compactPartition.ts', 'src/ports/store/ObjectStore.ts'],
        ['src/capture/backfill/backfillMoves.ts', 'src/lake/table/deltaTable.ts'],
        ['src/jobs/endRun.ts', 'src/ops/metrics.ts'],
        ['src/engine/split/map.ts', 'src/engine/compactionSql.ts'],
        ['stores/blob/BlobStore.ts', '@azure/storage-blob'],
      ].map(([from, to]) => importProblem(from as string, to as string)),
    ).toStrictEqual([
      'src/engine/compactPartition.ts: shipped code imports test/kit/readParquet.ts (harness)',
      'src/capture/ingest/ingestBatch.ts: shipped code imports bench/bench.ts (harness)',
      'compactor/cli.ts: shipped code imports tools/CountingStore.ts (harness)',
      'stores/s3/S3Store.ts: shipped code imports scripts/build.ts (harness)',
      'src/core/config.ts: core imports stores/createStore.ts (store adapter)',
      'src/jobs/runCompaction.ts: jobs imports compactor/cli.ts (entry point)',
      'stores/createStore.ts: store adapter imports azure/runtime.ts (entry point)',
      'src/ports/store/LocalStore.ts: ports imports src/lake/manifest.ts (lake)',
      'src/lake/table/deltaTable.ts: lake imports src/engine/mergePartition.ts (engine)',
      'src/capture/backfill/backfillChange.ts: capture imports src/engine/compactionSql.ts (engine, beside it)',
      'src/engine/compactPartition.ts: engine imports src/capture/ingest/ingestBatch.ts (capture, beside it)',
      'src/ops/report.ts: ops imports src/jobs/endRun.ts (jobs)',
      'src/core/config.ts: core imports src/jobs/erase/retention.ts (jobs)',
      'src/misc/x.ts: src/ outside every layer',
      'src/capture/ingest/sources.ts: the core imports @aws-sdk/client-dynamodb',
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('store adapters import the core through its ports: no use case (src/lake, capture, engine, ops, jobs) behind an adapter', async () => {
    const edges = await importEdges(['stores']);
    // the scan sees the adapters' imports of the ports
    expect(edges).toContainEqual(['stores/cosmos/CosmosSourceReader.ts', 'src/ports/SourceReader.ts']);
    expect(edges).toContainEqual(['stores/dynamodb/DynamoStreamBatchReader.ts', 'src/ports/StreamBatchReader.ts']);
    expect(edges).toContainEqual(['stores/sqs/SqsFailureQueue.ts', 'src/ports/FailureMessageSource.ts']);
    expect(edges.filter(([, to]) => /^src\/(lake|capture|engine|ops|jobs)\//.test(to))).toStrictEqual([]);
    expect(
      [
        ['stores/dynamodb/DynamoTableReader.ts', 'src/capture/backfill/runBackfill.ts'],
        ['stores/dynamodb/DynamoStreamBatchReader.ts', 'src/capture/redrive/redriveBatch.ts'],
        ['stores/sqs/SqsFailureQueue.ts', 'src/capture/redrive/errors.ts'],
        ['stores/cosmos/CosmosSourceReader.ts', 'src/capture/ingest/sources.ts'],
        ['stores/dynamodb/DynamoTableReader.ts', 'src/capture/ingest/ingestBatch.ts'],
        ['stores/blob/BlobStore.ts', 'src/lake/manifest.ts'],
        ['stores/dynamodb/DynamoTableReader.ts', 'src/ports/SourceReader.ts'],
        ['stores/s3/S3Store.ts', 'src/ports/store/errors.ts'],
        ['stores/cosmos/CosmosSourceReader.ts', 'src/core/model/fieldMapping.ts'],
        ['stores/createStore.ts', 'src/core/config.ts'],
        ['src/capture/redrive/redriveBatch.ts', 'src/ports/StreamBatchReader.ts'],
      ].map(([from, to]) => importProblem(from as string, to as string)),
    ).toStrictEqual([
      'stores/dynamodb/DynamoTableReader.ts: store adapter imports src/capture/backfill/runBackfill.ts (a use case; adapters import src/ports/ and src/core/)',
      'stores/dynamodb/DynamoStreamBatchReader.ts: store adapter imports src/capture/redrive/redriveBatch.ts (a use case; adapters import src/ports/ and src/core/)',
      'stores/sqs/SqsFailureQueue.ts: store adapter imports src/capture/redrive/errors.ts (a use case; adapters import src/ports/ and src/core/)',
      'stores/cosmos/CosmosSourceReader.ts: store adapter imports src/capture/ingest/sources.ts (a use case; adapters import src/ports/ and src/core/)',
      'stores/dynamodb/DynamoTableReader.ts: store adapter imports src/capture/ingest/ingestBatch.ts (a use case; adapters import src/ports/ and src/core/)',
      'stores/blob/BlobStore.ts: store adapter imports src/lake/manifest.ts (a use case; adapters import src/ports/ and src/core/)',
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('the ports stand below every use case: src/ports/ imports only the core and other ports', async () => {
    const edges = (await importEdges(['src/ports'])).filter(([, to]) => to.startsWith('src/'));
    // the scan sees the ports' imports of the record model
    expect(edges).toContainEqual(['src/ports/StagingSink.ts', 'src/core/schema/messageSchema.ts']);
    expect(edges.filter(([from, to]) => importProblem(from, to) !== undefined)).toStrictEqual([]);
    expect(
      [
        ['src/ports/StagingSink.ts', 'src/capture/ingest/ingestBatch.ts'],
        ['src/ports/StreamBatchReader.ts', 'src/capture/redrive/errors.ts'],
        ['src/ports/SourceReader.ts', 'src/capture/backfill/runBackfill.ts'],
        ['src/ports/SourceReader.ts', 'src/core/model/normalise.ts'],
        ['src/ports/errors.ts', 'src/core/errors.ts'],
        ['src/capture/ingest/ingestBatch.ts', 'src/ports/StagingSink.ts'],
      ].map(([from, to]) => importProblem(from as string, to as string)),
    ).toStrictEqual([
      'src/ports/StagingSink.ts: ports imports src/capture/ingest/ingestBatch.ts (capture)',
      'src/ports/StreamBatchReader.ts: ports imports src/capture/redrive/errors.ts (capture)',
      'src/ports/SourceReader.ts: ports imports src/capture/backfill/runBackfill.ts (capture)',
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('Firehose is a staging sink, never an object store: only the stream Lambda reaches it', async () => {
    const edges = await importEdges();
    expect(edges.filter(([, to]) => to === '@aws-sdk/client-firehose' || to === 'stream-ingest/firehose.ts')).toStrictEqual([
      ['stream-ingest/firehose.ts', '@aws-sdk/client-firehose'],
      ['stream-ingest/handler.ts', '@aws-sdk/client-firehose'],
      ['stream-ingest/handler.ts', 'stream-ingest/firehose.ts'],
    ]);
    const stores: string[] = [];
    const sinks: string[] = [];
    for (const root of SHIPPED_ROOTS) {
      for (const file of await files(root)) {
        const text = await readFile(file, 'utf8');
        stores.push(
          ...implementers(text, 'ObjectStore').map((c) => `${file} ${c}${/firehose/i.test(text) ? ' (Firehose!)' : ''}`),
        );
        sinks.push(...implementers(text, 'StagingSink').map((c) => `${file} ${c}`));
      }
    }
    expect(stores.sort()).toStrictEqual([
      'src/ports/store/LocalStore.ts LocalStore',
      'stores/blob/BlobStore.ts BlobStore',
      'stores/s3/S3Store.ts S3Store',
    ]);
    expect(sinks.sort()).toStrictEqual([
      'src/capture/ingest/ObjectStoreStagingSink.ts ObjectStoreStagingSink',
      'stream-ingest/firehose.ts FirehoseStagingSink',
    ]);
    // the scan finds a class however its declaration is laid out
    expect(implementers('export class A extends B<C> implements ObjectStore, Other {', 'ObjectStore')).toStrictEqual(['A']);
    expect(implementers('class A implements ObjectStoreLike {}\nclass B implements StagingSink {}', 'ObjectStore')).toStrictEqual(
      [],
    );
  });

  it('bench/ and tools/ import nothing from test/, as nothing shipped does', async () => {
    const edges = await importEdges(['bench', 'tools']);
    // the scan sees bench's imports (of the core and of tools/) and tools' imports (of the core)
    expect(edges.some(([from, to]) => from.startsWith('bench/') && to.startsWith('src/'))).toBe(true);
    expect(edges).toContainEqual(['bench/localServers.ts', 'tools/azureServers.ts']);
    expect(edges).toContainEqual(['tools/CountingStore.ts', 'src/ports/store/ObjectStore.ts']);
    expect(edges.filter(([from, to]) => benchImportProblem(from, to) !== undefined)).toStrictEqual([]);
    expect(
      [
        ['bench/step.ts', 'test/kit/readParquet.ts'],
        ['tools/servers.ts', 'test/kit/tempDir.ts'],
        ['bench/bench.ts', 'src/jobs/runCompaction.ts'],
        ['bench/localServers.ts', 'tools/servers.ts'],
      ].map(([from, to]) => benchImportProblem(from as string, to as string)),
    ).toStrictEqual([
      'bench/step.ts: bench imports test/kit/readParquet.ts (test)',
      'tools/servers.ts: tools imports test/kit/tempDir.ts (test)',
      undefined,
      undefined,
    ]);
  });
});
