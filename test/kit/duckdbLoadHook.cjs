// Preloaded with `node --require`: records DuckDB's allocator options as they stand in the environment when
// DuckDB's native library loads (jemalloc reads them then, once) and prints them as the process exits, on a
// line of its own: `ALLOCATOR "<options>"` ("unset" when absent; null when the process never loaded DuckDB).
let atLoad = null;
const dlopen = process.dlopen;
process.dlopen = function (module, filename, ...rest) {
  if (/duckdb\.node$/.test(filename)) atLoad = process.env.DUCKDB_JE_MALLOC_CONF ?? 'unset';
  return dlopen.call(this, module, filename, ...rest);
};
process.on('exit', () => process.stdout.write(`\nALLOCATOR ${JSON.stringify(atLoad)}\n`));
