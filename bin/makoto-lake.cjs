#!/usr/bin/env node
// The CLI is TypeScript run through tsx, so `npm ci` is the only install step (no build).
// CommonJS on purpose: libuv sizes its thread pool from UV_THREADPOOL_SIZE when the pool is first used, and on
// Node 20 an ES module entry is itself read through that pool (Node 22 reads it without). Each running DuckDB statement holds one of its threads, so
// at COMPACT_CONCURRENCY 4 the default 4 left the file-system calls waiting for statements; 8 unless set
// (docs/PERFORMANCE.md 8e).
process.env.UV_THREADPOOL_SIZE ??= '8';
require('tsx/esm/api').register();
import('../compactor/cli.ts').then(async ({ main }) => {
  process.exitCode = await main(process.argv.slice(2), process.env);
});
