/**
 * Delta Lake log actions, as delta-io/delta PROTOCOL.md defines them (reader version 1, writer version 2:
 * no deletion vectors, no column mapping, no table features). Only the fields this project writes or
 * reads are typed; a reader keeps unknown fields as they are.
 */

/** `tenant_id` and `dt` of one partition, as strings (Delta's partitionValues are always strings). */
export type PartitionValues = Record<string, string | null>;

export interface ProtocolAction {
  readonly minReaderVersion: number;
  readonly minWriterVersion: number;
}

export interface MetadataAction {
  readonly id: string;
  readonly name?: string | null;
  readonly description?: string | null;
  readonly format: { readonly provider: string; readonly options: Record<string, string> };
  /** The table's schema as Delta's JSON struct type, serialised. */
  readonly schemaString: string;
  readonly partitionColumns: readonly string[];
  readonly createdTime?: number | null;
  readonly configuration: Record<string, string>;
}

export interface AddAction {
  /** Relative to the table root, URL-encoded (`tenant_id=acme/dt=2025-08-11/part-….parquet`). */
  readonly path: string;
  readonly partitionValues: PartitionValues;
  readonly size: number;
  readonly modificationTime: number;
  readonly dataChange: boolean;
  /** JSON: `{numRecords, minValues, maxValues, nullCount}`. */
  readonly stats?: string | null;
  /** This project's own notes on a file (readers ignore tags): see TAG_* in table.ts. */
  readonly tags?: Record<string, string> | null;
}

export interface RemoveAction {
  readonly path: string;
  readonly deletionTimestamp?: number | null;
  readonly dataChange: boolean;
  readonly extendedFileMetadata?: boolean | null;
  readonly partitionValues?: PartitionValues | null;
  readonly size?: number | null;
  readonly tags?: Record<string, string> | null;
}

export interface TxnAction {
  readonly appId: string;
  readonly version: number;
  readonly lastUpdated?: number | null;
}

/** One line of a commit file: exactly one of these keys is set. */
export interface DeltaAction {
  readonly protocol?: ProtocolAction;
  readonly metaData?: MetadataAction;
  readonly add?: AddAction;
  readonly remove?: RemoveAction;
  readonly txn?: TxnAction;
  readonly commitInfo?: Record<string, unknown>;
}

/** `_delta_log/_last_checkpoint`. */
export interface LastCheckpoint {
  readonly version: number;
  /** Number of actions in the checkpoint. */
  readonly size: number;
}

/**
 * The `remove` of a file a version names, at `deletionTimestamp` (epoch ms): with its partition values, size
 * and tags (extended file metadata), so a reader of the tombstone alone knows what went.
 */
export function removeOf(file: AddAction, deletionTimestamp: number): RemoveAction {
  return {
    path: file.path,
    deletionTimestamp,
    dataChange: true,
    extendedFileMetadata: true,
    partitionValues: file.partitionValues,
    size: file.size,
    ...(file.tags ? { tags: file.tags } : {}),
  };
}

export const LOG_FOLDER = '_delta_log/';

/** `_delta_log/00000000000000000042.json` relative to the table root. */
export function commitFileName(version: number): string {
  return `${LOG_FOLDER}${pad(version)}.json`;
}

/** `_delta_log/00000000000000000040.checkpoint.parquet` relative to the table root (a classic one-part checkpoint). */
export function checkpointFileName(version: number): string {
  return `${LOG_FOLDER}${pad(version)}.checkpoint.parquet`;
}

export const LAST_CHECKPOINT_NAME = `${LOG_FOLDER}_last_checkpoint`;

export function pad(version: number): string {
  if (!Number.isSafeInteger(version) || version < 0) throw new RangeError(`invalid table version ${version}`);
  return String(version).padStart(20, '0');
}

/**
 * The version of a file directly in `_delta_log/`: a commit or a classic checkpoint; undefined for anything
 * else (`_last_checkpoint`, `.crc` files, a writer's `.tmp/` folder).
 */
export function logFileVersion(name: string): { version: number; kind: 'commit' | 'checkpoint' } | undefined {
  const m = /(?:^|\/)_delta_log\/(\d{20})\.(json|checkpoint\.parquet)$/.exec(name);
  if (!m) return undefined;
  return { version: Number(m[1]), kind: m[2] === 'json' ? 'commit' : 'checkpoint' };
}

/** The NDJSON body of a commit file. */
export function serialiseActions(actions: readonly DeltaAction[]): string {
  return `${actions.map((a) => JSON.stringify(a)).join('\n')}\n`;
}

/** Parses a commit file; a torn line is an error naming the file (a commit is written whole or not at all). */
export function parseActions(name: string, body: string): DeltaAction[] {
  const out: DeltaAction[] = [];
  for (const [i, line] of body.split('\n').entries()) {
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line) as DeltaAction);
    } catch (error) {
      throw new SyntaxError(`unreadable Delta log file ${name} line ${i + 1}: ${(error as Error).message}`, { cause: error });
    }
  }
  return out;
}
