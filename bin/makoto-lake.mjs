#!/usr/bin/env node
// The CLI's entry before 2026-12-07. npx keeps a local project's bin path in its cache (~/.npm/_npx), so a
// cache made then still runs this file: it starts the same CLI (bin/makoto-lake.cjs, package.json's bin); on
// Node 20 with libuv's default thread pool, which an ES module entry is read through before it could size it
// (docs/PERFORMANCE.md 8e). Removing ~/.npm/_npx makes npx use the new entry.
await import('./makoto-lake.cjs');
