/**
 * `npm run build`: the artifacts a user deploys, into dist/ (or the folder given):
 *
 * - `lambda/stream-ingest/handler.js`, `lambda/compactor/lambda.js`: one CommonJS file per Lambda handler
 *   (template.yaml `CodeUri` + `Handler`), bundled by esbuild with the AWS SDK v3 at the versions this
 *   repository pins and tests, and without DuckDB (it comes from the layer) or any Azure SDK.
 * - `layer-duckdb/nodejs/node_modules/...`: @duckdb/node-api and the packages it loads at run time, with the
 *   linux-x64 native binding (the Lambda layer layout: the runtime puts /opt/nodejs/node_modules on NODE_PATH).
 * - `azure/`: the Functions app root (host.json, package.json whose only dependency is DuckDB, index.mjs
 *   bundling every function with the Azure SDK, node_modules holding DuckDB) – zip it and deploy it as is.
 *
 * Prints each artifact's unzipped size against its platform's limit.
 *
 * @example
 * node bin/run-ts.mjs scripts/build.ts            # → dist/
 * node bin/run-ts.mjs scripts/build.ts /tmp/out   # → /tmp/out/
 */
import { copyFile, cp, link, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build as esbuild, type Plugin } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The Lambda functions of template.yaml: folder under lambda/ (its CodeUri), entry point, handler file. */
export const LAMBDA_FUNCTIONS = [
  { name: 'stream-ingest', entry: 'stream-ingest/handler.ts', file: 'handler.js' },
  { name: 'compactor', entry: 'compactor/lambda.ts', file: 'lambda.js' },
  { name: 'stream-redrive', entry: 'stream-ingest/redrive.ts', file: 'redrive.js' },
  { name: 'compaction-plan', entry: 'compactor/planLambda.ts', file: 'planLambda.js' },
  { name: 'compaction-summary', entry: 'compactor/summaryLambda.ts', file: 'summaryLambda.js' },
] as const;

/** The functions whose bundles load the compaction modules: they run with the DuckDB layer. */
export const WITH_DUCKDB_LAYER: ReadonlySet<string> = new Set(['compactor', 'compaction-plan', 'compaction-summary']);

/** Folders of dist/ (relative), as template.yaml names them. */
export const ARTIFACTS = {
  lambda: (name: string) => `lambda/${name}`,
  duckdbLayer: 'layer-duckdb',
  azure: 'azure',
} as const;

/** Loaded from node_modules at run time, never inlined: DuckDB ships a native binary. */
const DUCKDB_PACKAGE = '@duckdb/node-api';
/** The native binding Lambda (x86_64, glibc) and a Linux Functions app load. */
const DUCKDB_NATIVE = '@duckdb/node-bindings-linux-x64';

/** Lambda: function code plus all its layers, unzipped. */
export const LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024;
/** Azure Functions on the Consumption plan: 5 GB of storage for the app (Functions service limits, "Storage"). */
export const AZURE_CONSUMPTION_STORAGE_LIMIT = 5 * 1024 * 1024 * 1024;

export interface BuiltArtifact {
  readonly name: string;
  readonly path: string;
  readonly bytes: number;
}

/** Builds every artifact into `out` (emptied first) and returns them with their unzipped sizes. */
export async function buildArtifacts(out: string): Promise<BuiltArtifact[]> {
  await rm(out, { recursive: true, force: true });
  const duckdbModules = await packageClosure(DUCKDB_PACKAGE);
  if (!duckdbModules.includes(DUCKDB_NATIVE)) {
    throw new Error(
      `${DUCKDB_NATIVE} is not installed: the Lambda layer and the Functions package need DuckDB's linux-x64 binding (install with npm on Linux x64, or npm install --os=linux --cpu=x64)`,
    );
  }
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
    version: string;
    dependencies: Record<string, string>;
  };
  const artifacts: BuiltArtifact[] = [];

  for (const fn of LAMBDA_FUNCTIONS) {
    const dir = join(out, ARTIFACTS.lambda(fn.name));
    await esbuild({
      ...COMMON,
      entryPoints: [join(ROOT, fn.entry)],
      outfile: join(dir, fn.file),
      format: 'cjs',
      // DuckDB comes from the layer.
      external: ['@duckdb/*'],
      plugins: [withoutStore('Azure Blob', /^(\.\/blob\/BlobStore\.js|@azure\/identity)$/)],
    });
    artifacts.push({ name: `Lambda ${fn.name}`, path: dir, bytes: await sizeOf(dir) });
  }

  const layer = join(out, ARTIFACTS.duckdbLayer);
  await copyModules(duckdbModules, join(layer, 'nodejs/node_modules'));
  artifacts.push({ name: 'Lambda layer duckdb', path: layer, bytes: await sizeOf(layer) });

  const azure = join(out, ARTIFACTS.azure);
  await esbuild({
    ...COMMON,
    entryPoints: [join(ROOT, 'azure/index.mjs')],
    outfile: join(azure, 'index.mjs'),
    format: 'esm',
    // Bundled CommonJS code (the Azure SDK) calls require() for Node's own modules.
    banner: {
      js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
    },
    // The host provides @azure/functions-core.
    external: ['@duckdb/*', '@azure/functions-core'],
    plugins: [noTsx, withoutStore('S3', /^\.\/s3\/S3Store\.js$/)],
  });
  await cp(join(ROOT, 'azure/host.json'), join(azure, 'host.json'));
  // The Functions app runs on Node 22 (docs/AZURE.md): its engines come from azure/package.json, not from the
  // root package, whose `>=20` is where the CLI and the tests run.
  const functionsPkg = JSON.parse(await readFile(join(ROOT, 'azure/package.json'), 'utf8')) as {
    engines: Record<string, string>;
  };
  const app = {
    name: 'makoto-lake-functions',
    version: pkg.version,
    private: true,
    type: 'module',
    main: 'index.mjs',
    engines: functionsPkg.engines,
    dependencies: { [DUCKDB_PACKAGE]: pkg.dependencies[DUCKDB_PACKAGE] },
  };
  await writeFile(join(azure, 'package.json'), `${JSON.stringify(app, null, 2)}\n`);
  await copyModules(duckdbModules, join(azure, 'node_modules'));
  artifacts.push({ name: 'Azure Functions app', path: azure, bytes: await sizeOf(azure) });
  return artifacts;
}

/** The Node.js the artifacts run on: Lambda nodejs22.x and Azure Functions Node 22 (docs/AWS.md, "Runtime"). */
export const NODE_TARGET = 'node22';

const COMMON = {
  bundle: true,
  platform: 'node',
  target: NODE_TARGET,
  sourcemap: true,
  sourcesContent: false,
  minify: false,
  legalComments: 'none',
  logLevel: 'warning',
} as const;

/** azure/index.mjs registers tsx to run the TypeScript sources in place; the bundle is JavaScript already. */
const noTsx: Plugin = {
  name: 'no-tsx',
  setup(b) {
    b.onResolve({ filter: /^tsx\/esm\/api$/ }, () => ({ path: 'tsx', namespace: 'no-tsx' }));
    b.onLoad({ filter: /.*/, namespace: 'no-tsx' }, () => ({ contents: 'export function register() {}', loader: 'js' }));
  },
};

/**
 * Leaves the other cloud's store (and its SDK) out of a package: createStore imports each store only when the
 * config selects it, so in this package selecting it fails with a clear error instead.
 */
function withoutStore(store: string, imports: RegExp): Plugin {
  return {
    name: `without-${store}`,
    setup(b) {
      b.onResolve({ filter: imports }, (args) =>
        args.importer.endsWith(join('stores', 'createStore.ts')) ? { path: args.path, namespace: 'without-store' } : undefined,
      );
      b.onLoad({ filter: /.*/, namespace: 'without-store' }, () => ({
        contents: `throw new Error(${JSON.stringify(`the ${store} store is not part of this package (check the storage settings)`)});`,
        loader: 'js',
      }));
    },
  };
}

/** A package and every package it loads, as installed in node_modules (optional ones only when installed). */
async function packageClosure(name: string): Promise<string[]> {
  const seen = new Set<string>();
  const visit = async (dep: string, optional: boolean) => {
    if (seen.has(dep)) return;
    let manifest: { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    try {
      manifest = JSON.parse(await readFile(join(ROOT, 'node_modules', dep, 'package.json'), 'utf8'));
    } catch (error) {
      if (optional && (error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    seen.add(dep);
    for (const d of Object.keys(manifest.dependencies ?? {})) await visit(d, false);
    for (const d of Object.keys(manifest.optionalDependencies ?? {})) await visit(d, true);
  };
  await visit(name, false);
  return [...seen].sort();
}

/**
 * Copies installed packages, hard-linking each file where it can (same file system: no second copy of
 * DuckDB's 70 MB library per artifact, and a build of seconds); a zip or an upload reads them as files.
 */
async function copyModules(names: readonly string[], target: string): Promise<void> {
  for (const name of names) await linkTree(join(ROOT, 'node_modules', name), join(target, name));
}

async function linkTree(from: string, to: string): Promise<void> {
  const info = await stat(from);
  if (info.isDirectory()) {
    await mkdir(to, { recursive: true });
    for (const entry of await readdir(from)) await linkTree(join(from, entry), join(to, entry));
    return;
  }
  try {
    await link(from, to);
  } catch (error) {
    if (!['EXDEV', 'EPERM', 'ENOTSUP'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
    await copyFile(from, to);
  }
}

async function sizeOf(path: string): Promise<number> {
  const info = await stat(path);
  if (!info.isDirectory()) return info.size;
  let total = 0;
  for (const entry of await readdir(path)) total += await sizeOf(join(path, entry));
  return total;
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

/** The size report: each artifact, then what counts against each platform limit. */
export function sizeReport(artifacts: readonly BuiltArtifact[]): string[] {
  const size = (name: string) => artifacts.find((a) => a.name === name)?.bytes ?? 0;
  const layer = size('Lambda layer duckdb');
  const lines = artifacts.map((a) => `${a.name.padEnd(24)} ${mb(a.bytes).padStart(10)}  ${a.path}`);
  for (const fn of LAMBDA_FUNCTIONS) {
    const total = size(`Lambda ${fn.name}`) + (WITH_DUCKDB_LAYER.has(fn.name) ? layer : 0);
    lines.push(`${fn.name} function + layers: ${mb(total)} of ${mb(LAMBDA_UNZIPPED_LIMIT)} unzipped (Lambda limit)`);
  }
  lines.push(
    `Azure Functions app: ${mb(size('Azure Functions app'))} of ${mb(AZURE_CONSUMPTION_STORAGE_LIMIT)} (Consumption plan storage)`,
  );
  return lines;
}

/** `npm run build [OUT_DIR]` (default dist/). */
export async function main(argv: readonly string[]): Promise<number> {
  const out = resolve(argv[0] ?? join(ROOT, 'dist'));
  const started = Date.now();
  const artifacts = await buildArtifacts(out);
  for (const line of sizeReport(artifacts)) console.log(line);
  console.log(`built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return 0;
}
