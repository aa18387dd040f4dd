/**
 * The one door to DuckDB's Node bindings for code that runs them: allocatorOptions.ts must run before the
 * native library loads, so shipped modules import DuckDB's values from here and only types from
 * '@duckdb/node-api' (test/build/imports.test.ts checks both).
 */
import './allocatorOptions.js';

export { BIGINT, BOOLEAN, DuckDBInstance, DuckDBScalarFunction, INTEGER, VARCHAR } from '@duckdb/node-api';
