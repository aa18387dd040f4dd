import { mkdir } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { DuckDBInstance } from './nodeApi.js';

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
    block_allocator_memory: `${blockAllocatorBytes(settings.memoryLimit)}B`,
  });
}

const UNIT_BYTES: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** A DuckDB size ('2GB', '512MB', '1.5GiB'; KB..TB are powers of 1000, KiB..TiB of 1024) in bytes. */
export function sizeBytes(size: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)$/i.exec(size.trim());
  const unit = UNIT_BYTES[match?.[2]?.toLowerCase() ?? ''];
  if (!match || unit === undefined) throw new RangeError(`not a DuckDB size: ${JSON.stringify(size)}`);
  return Math.floor(Number(match[1]) * unit);
}

/** The memory this process may use: the machine's, or its cgroup's limit (a container, a Lambda) when lower. */
export function machineMemoryBytes(): number {
  const constrained = process.constrainedMemory?.() ?? 0;
  return constrained > 0 ? Math.min(totalmem(), constrained) : totalmem();
}

/**
 * Memory DuckDB's block allocator keeps for the instance's buffer blocks instead of taking them from the C
 * allocator, which gave pages back and faulted them in again: the 1M-message day took ~15% less CPU, the
 * 10M day 127.7 s against 156.9 s the day before (docs/PERFORMANCE.md §6d). Half the memory limit: the pool is never given back while
 * the instance lives, so the memory DuckDB takes outside its buffer manager (the Parquet writer's row groups,
 * the JSON reader's buffers) comes on top of it — a pool of the whole limit made the 10M day's peak RSS
 * 1.67 GB at a 1 GB limit, half of it 1.39 GB, with no loss of speed. Capped at 75% of the machine's memory:
 * DuckDB reserves address space for the pool of 80% of the memory it sees, and a pool above that aborts the
 * process. Freed when the instance closes.
 */
export function blockAllocatorBytes(memoryLimit: string, machineBytes: number = machineMemoryBytes()): number {
  return Math.min(Math.floor(sizeBytes(memoryLimit) / 2), Math.floor(machineBytes * 0.75));
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
