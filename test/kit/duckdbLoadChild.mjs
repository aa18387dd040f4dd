// Imports the module named in argv[2] (TypeScript through tsx), nothing else: run with
// `node --require test/kit/duckdbLoadHook.cjs`, it tells whether and how that import loaded DuckDB
// (test/core/openDuckDb.test.ts).
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { register } from 'tsx/esm/api';

register();
await import(pathToFileURL(resolve(process.argv[2])).href);
