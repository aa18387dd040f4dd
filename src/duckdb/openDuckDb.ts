import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';

export interface DuckDbSettings {
  /** DuckDB memory_limit, e.g. '2GB'. Larger work spills to `tempDirectory`. */
  readonly memoryLimit: string;
  readonly threads: number;
  /** Spill files, home and extension directories go below this folder (on Lambda: under /tmp). */
  readonly workDirectory: string;
}

/**
 * Creates an in-memory DuckDB instance with every resource setting explicit. json and parquet are
 * built into the Node bindings; nothing is ever downloaded (autoinstall is off).
 */
export async function openDuckDb(settings: DuckDbSettings): Promise<DuckDBInstance> {
  const spill = join(settings.workDirectory, 'duckdb-spill');
  const home = join(settings.workDirectory, 'duckdb-home');
  await mkdir(spill, { recursive: true });
  await mkdir(home, { recursive: true });
  return DuckDBInstance.create(':memory:', {
    memory_limit: settings.memoryLimit,
    threads: String(settings.threads),
    temp_directory: spill,
    home_directory: home,
    extension_directory: join(home, 'extensions'),
    autoinstall_known_extensions: 'false',
    // Output row order carries no meaning here; keeping it costs memory in COPY and window operators.
    preserve_insertion_order: 'false',
  });
}

/** Runs `work` on a fresh connection and always closes it. */
export async function withConnection<T>(
  db: DuckDBInstance,
  work: (connection: DuckDBConnection) => Promise<T>,
  /** When it aborts (a lost lease, a stopped run), the running statement is interrupted instead of awaited. */
  signal?: AbortSignal,
): Promise<T> {
  const connection = await db.connect();
  const interrupt = () => connection.interrupt();
  signal?.addEventListener('abort', interrupt, { once: true });
  try {
    return await work(connection);
  } finally {
    signal?.removeEventListener('abort', interrupt);
    connection.closeSync();
  }
}
