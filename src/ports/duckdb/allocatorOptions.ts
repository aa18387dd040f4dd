/**
 * Options of DuckDB's memory allocator (the jemalloc inside its native library), which reads them from the
 * environment once, when the library loads: nodeApi.ts imports this module before the bindings.
 *
 * DuckDB gives freed memory back to the kernel after about a second (dirty and muzzy decay of 1000 ms), so
 * the Parquet writer's page buffers and the readers' chunks faulted their pages in again for every row
 * group. Keeping freed pages for reuse took two thirds of the page faults and ~20% of the CPU out of a
 * 1M-message compaction, with the same peak memory: DUCKDB_MEMORY_LIMIT still bounds what is in use, and
 * DuckDB still purges explicitly past its flush thresholds (docs/PERFORMANCE.md §6e). A value already in the
 * environment is left as it is.
 */
export const ALLOCATOR_OPTIONS_VARIABLE = 'DUCKDB_JE_MALLOC_CONF';
export const ALLOCATOR_OPTIONS = 'dirty_decay_ms:-1,muzzy_decay_ms:-1';

process.env[ALLOCATOR_OPTIONS_VARIABLE] ??= ALLOCATOR_OPTIONS;
