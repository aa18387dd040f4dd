// Imports the module named in argv[2] (TypeScript through tsx) and prints, as JSON, DuckDB's allocator
// options as they stood in the environment when DuckDB's native library was loaded ('unset' when absent,
// null when the import never loaded it). jemalloc reads them then, once: test/core/openDuckDb.test.ts.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { register } from 'tsx/esm/api';

register();
const dlopen = process.dlopen;
let atLoad = null;
process.dlopen = function (module, filename, ...rest) {
  if (/duckdb\.node$/.test(filename)) atLoad = process.env.DUCKDB_JE_MALLOC_CONF ?? 'unset';
  return dlopen.call(this, module, filename, ...rest);
};
await import(pathToFileURL(resolve(process.argv[2])).href);
process.stdout.write(JSON.stringify({ atLoad }));
