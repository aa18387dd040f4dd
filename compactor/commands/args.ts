/**
 * What the commands share: the output pair, the exit codes, and the argument helpers more than one command
 * uses (the store a command writes to, TENANTS / --all-tenants, --as-of).
 */
import { resolve } from 'node:path';
import { type Config, cloudStoreSetting, isStoreChosen, parseTenantList } from '../../src/core/config.js';
import { UsageError } from '../../src/core/errors.js';

/** Where a command writes: stdout for the result, stderr for progress and diagnostics. */
export type Out = { stdout: (text: string) => void; stderr: (text: string) => void };

/** The CLI's exit codes; a failure outranks a lock, a lock outranks an empty day. */
export const EXIT = { ok: 0, failed: 1, usage: 2, locked: 3, empty: 4, attention: 5 } as const;

/** A command that reads a cloud source was given no store: refused before anything is read (exit 2, no usage text). */
export class NoStoreChosenError extends UsageError {}

/**
 * The config a command reading a cloud source writes with: `--data-dir DIR` chooses the local store (and
 * may not be combined with a cloud store setting); without it the store must have been chosen (a cloud
 * setting, or DATA_DIR). Otherwise the records would land in ./data of the operator's working directory,
 * where no compaction of the lake looks, and the command would report success.
 */
export function chosenStore(config: Config, dataDir: string | undefined, reads: string): Config {
  const cloud = cloudStoreSetting(config);
  if (dataDir !== undefined) {
    if (dataDir.trim() === '') throw new UsageError('--data-dir needs a directory');
    if (cloud !== undefined)
      throw new UsageError(`--data-dir names a local store, but ${cloud} selects the cloud store: give one`);
    return { ...config, dataDir: resolve(dataDir), dataDirGiven: true };
  }
  if (isStoreChosen(config)) return config;
  throw new NoStoreChosenError(
    `${reads}, but no store is set: export S3_BUCKET_NAME (S3) or AZURE_STORAGE_CONNECTION_STRING / ` +
      'AZURE_STORAGE_ACCOUNT_URL (Blob) to write to the lake, or give --data-dir DIR (or DATA_DIR) to write to a local ' +
      `folder; refusing to fill ${config.dataDir} (nothing was read or written)`,
  );
}

/** TENANTS, or --all-tenants ('all'), or the config's TENANT_ID list; giving both is a usage error. */
export function selectedTenants(allTenants: boolean, tenantsArg: string | undefined, config: Config): readonly string[] | 'all' {
  if (allTenants && tenantsArg !== undefined) throw new UsageError('give TENANTS or --all-tenants, not both');
  if (allTenants) return 'all';
  return tenantsArg === undefined ? config.tenants : parseTenantList(tenantsArg, 'TENANTS');
}

/** `--as-of 12` (a version) or `--as-of 2025-08-12T03:00:00Z` (the last version committed by then). */
export function parseAsOf(text: string | undefined): { version?: number; timestamp?: number } | undefined {
  if (text === undefined) return undefined;
  if (/^\d+$/.test(text)) return { version: Number(text) };
  const at = Date.parse(text);
  if (Number.isNaN(at)) throw new UsageError(`--as-of must be a table version or an ISO-8601 time, got ${JSON.stringify(text)}`);
  return { timestamp: at };
}
