#!/usr/bin/env node
// Runs a TypeScript module's exported `main(argv, env)` through tsx: `node bin/run-ts.mjs bench/bench.ts --messages 1000`.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { register } from 'tsx/esm/api';

register();
const [file, ...args] = process.argv.slice(2);
if (!file) {
  console.error('usage: run-ts.mjs FILE.ts [ARGS...]');
  process.exit(2);
}
const { main } = await import(pathToFileURL(resolve(file)).href);
process.exitCode = await main(args, process.env);
