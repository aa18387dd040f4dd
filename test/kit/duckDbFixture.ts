import { join } from 'node:path';
import type { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll } from 'vitest';
import type { CompactionDeps } from '../../src/engine/compactPartition.js';
import { openDuckDb } from '../../src/ports/duckdb/openDuckDb.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import type { ObjectStore } from '../../src/ports/store/ObjectStore.js';
import { tempDir } from './tempDir.js';

/** A test file's temp folder and its one DuckDB instance, opened before its tests and removed after them. */
export interface DuckDbFixture {
  /** The temp folder (DuckDB's own files are under `duckdb/`). */
  readonly path: string;
  readonly db: DuckDBInstance;
}

/**
 * Registers the file's beforeAll/afterAll: a temp folder named `prefix…` and a DuckDB instance working in it
 * (512 MB and 2 threads unless told), closed and removed after the file's tests. Read `path` and `db` inside
 * tests and hooks only.
 */
export function duckDbFixture(prefix: string, settings: { memoryLimit?: string; threads?: number } = {}): DuckDbFixture {
  let dir: Awaited<ReturnType<typeof tempDir>> | undefined;
  let db: DuckDBInstance | undefined;
  beforeAll(async () => {
    dir = await tempDir(prefix);
    db = await openDuckDb({
      memoryLimit: settings.memoryLimit ?? '512MB',
      threads: settings.threads ?? 2,
      workDirectory: join(dir.path, 'duckdb'),
    });
  });
  afterAll(async () => {
    db?.closeSync();
    await dir?.cleanup();
  });
  const opened = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error(`${prefix}: the fixture is read before its beforeAll ran`);
    return value;
  };
  return {
    get path() {
      return opened(dir).path;
    },
    get db() {
      return opened(db);
    },
  };
}

/**
 * Fresh local lakes in the fixture's folder: `newStore()` a new `lake-<n>`, `depsOf(store)` compaction deps
 * on the fixture's DuckDB with the latest lake's own work folder.
 */
export function lakesIn(fixture: DuckDbFixture) {
  let lakes = 0;
  return {
    newStore: () => new LocalStore(join(fixture.path, `lake-${++lakes}`)),
    depsOf: (store: ObjectStore, extra: Partial<CompactionDeps> = {}): CompactionDeps => ({
      store,
      db: fixture.db,
      workDirectory: join(fixture.path, `work-${lakes}`),
      ...extra,
    }),
  };
}
