import { availableParallelism, tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { ConfigError } from './errors.js';
import { DEFAULT_FIELD_MAPPING, type FieldMapping, parseFieldMapping } from './model/fieldMapping.js';
import { parseRetentionSetting, type RetentionSetting } from './retentionSetting.js';
import { DEFAULT_SPLIT_THRESHOLD_BYTES } from './splitShape.js';
import { assertTenantId } from './tenant.js';

/**
 * Every setting the project reads, parsed once at the edge (CLI, Lambda, Function) from the environment.
 * Nothing below the entry points reads process.env. Names follow the seed where it had one.
 */
export interface Config {
  /** TENANT_ID: comma list, or '*' for every tenant found in staging. Default `default_tenant`. */
  readonly tenants: readonly string[] | 'all';
  /** TARGET_DATE_OFFSET: days added to today in JST to get the default date. Default -1 (yesterday). */
  readonly targetDateOffset: number;
  /** DATA_DIR: the local store's root when no cloud store is configured. Default ./data. */
  readonly dataDir: string;
  /**
   * Whether DATA_DIR was set (or the CLI's --data-dir given): the local store was chosen, not fallen back
   * to. Commands that read a cloud source refuse an implicit ./data (see `isStoreChosen`).
   */
  readonly dataDirGiven: boolean;
  /** TEMP_DIR: parent of the per-run work folder. Default the OS temp directory. */
  readonly tempDir: string;
  readonly compaction: {
    /** COMPACT_CONCURRENCY: tenants compacted at once. Default 4. */
    readonly concurrency: number;
    /** PARQUET_COMPRESSION: snappy (default) or zstd. */
    readonly compression: 'snappy' | 'zstd';
    /** PARQUET_TARGET_FILE_MB: a partition rolls over to another file past this size. Default 256. */
    readonly targetFileBytes: number;
    /** PARQUET_ROW_GROUP_SIZE: rows per row group. Default 122880. */
    readonly rowGroupSize: number;
    /** PARQUET_ROW_GROUP_MB: a row group also ends at this size (writer memory per thread). Default 32. */
    readonly rowGroupBytes: number;
    /** TRANSFER_CONCURRENCY: parallel object downloads/uploads per partition. Default 8. */
    readonly transferConcurrency: number;
    /** LATE_DATA_LOOKBACK_DAYS: optional bound on the days the nightly planner checks; 0 (default) = every day. */
    readonly lateDataLookbackDays: number;
    /**
     * SPLIT_THRESHOLD_BYTES: a tenant-day with at least this many bytes of staging is compacted as a split
     * (K map + B reduce tasks, docs/SCALING.md); 0 = never split. Unset: 1 GiB (DEFAULT_SPLIT_THRESHOLD_BYTES).
     */
    readonly splitThresholdBytes: number;
    /** INTRADAY_MINUTES: minutes between intraday runs (Azure's `intraday_batch` timer); 0 = none. Default 60. */
    readonly intradayMinutes: number;
  };
  readonly duckdb: {
    /** DUCKDB_MEMORY_LIMIT, e.g. '2GB'. Default 2GB. */
    readonly memoryLimit: string;
    /** DUCKDB_THREADS. Default: the number of CPUs. */
    readonly threads: number;
  };
  /** FIELD_MAPPING: JSON overriding which item fields map to the canonical ones. */
  readonly fieldMapping: FieldMapping;
  /** LAKE_RETENTION_DAYS: days of partitions kept (`365`, or `365,acme=90`: per-tenant overrides); unset = for ever. */
  readonly retention: RetentionSetting;
  readonly aws: {
    /** S3_BUCKET_NAME selects the S3 store for every command. */
    readonly bucket: string | undefined;
    /** S3_ENDPOINT: any S3-compatible server (tests: s3rver). */
    readonly endpoint: string | undefined;
    /** S3_FORCE_PATH_STYLE=true for servers without virtual-host addressing. */
    readonly forcePathStyle: boolean;
    /** AWS_DEFAULT_REGION (or AWS_REGION, which the Lambda runtime sets). */
    readonly region: string | undefined;
    /** DYNAMODB_TABLE_NAME: the messages table (backfill). */
    readonly tableName: string | undefined;
    /** DYNAMODB_ENDPOINT: the DynamoDB and DynamoDB Streams endpoint for redrive/backfill (tests: DynamoDB Local). */
    readonly dynamodbEndpoint: string | undefined;
    /** DYNAMODB_BACKFILL_MAX_RCU: read capacity units per second a table backfill may consume. Default 100. */
    readonly backfillMaxRcu: number;
    /** STREAM_FAILURE_QUEUE_URL: the stream ingest's on-failure SQS queue (redrive). */
    readonly failureQueueUrl: string | undefined;
    /** SQS_ENDPOINT: an SQS-compatible endpoint instead of the region's. */
    readonly sqsEndpoint: string | undefined;
    /** STAGING_TRANSPORT: 's3' (default, direct writes) or 'firehose'. */
    readonly stagingTransport: 's3' | 'firehose';
    /** FIREHOSE_STREAM_NAME: required with STAGING_TRANSPORT=firehose. */
    readonly firehoseStreamName: string | undefined;
  };
  readonly azure: {
    /** AZURE_STORAGE_CONNECTION_STRING selects the Blob store for every command. */
    readonly connectionString: string | undefined;
    /** AZURE_STORAGE_ACCOUNT_URL: Blob store with a token credential (production, managed identity). */
    readonly accountUrl: string | undefined;
    /** AZURE_STORAGE_CONTAINER. Default `makoto`. */
    readonly container: string;
    /** COSMOS_ENDPOINT, COSMOS_KEY as in the seed; COSMOS_DATABASE / COSMOS_CONTAINER name the messages container. */
    readonly cosmosEndpoint: string | undefined;
    readonly cosmosKey: string | undefined;
    readonly cosmosDatabase: string;
    readonly cosmosContainer: string;
  };
}

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Typed readers over an environment, each throwing ConfigError that names the variable and the bad value.
 * Every entry point's settings go through these (loadConfig here; the Functions app's trigger settings).
 */
export function envReader(env: Env) {
  const read = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  };
  const int = (name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const text = read(name);
    if (text === undefined) return fallback;
    if (!/^[+-]?\d+$/.test(text)) throw new ConfigError(`${name} must be an integer, got ${JSON.stringify(text)}`);
    const n = Number(text);
    if (n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${n}`);
    return n;
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[], fallback: T): T => {
    const text = read(name)?.toLowerCase() ?? fallback;
    if (!(allowed as readonly string[]).includes(text)) {
      throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(read(name))}`);
    }
    return text as T;
  };
  const bool = (name: string): boolean => {
    const text = read(name)?.toLowerCase();
    if (text === undefined || text === 'false' || text === '0') return false;
    if (text === 'true' || text === '1') return true;
    throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(read(name))}`);
  };
  return { read, int, oneOf, bool };
}

/** Parses the environment into a Config, or throws ConfigError naming the variable and the bad value. */
export function loadConfig(env: Env): Config {
  const { read, int, oneOf, bool } = envReader(env);
  const memory = read('DUCKDB_MEMORY_LIMIT') ?? '2GB';
  const size = /^(\d+(?:\.\d+)?)\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i.exec(memory);
  if (!size) {
    throw new ConfigError(`DUCKDB_MEMORY_LIMIT must be a size such as 2GB or 512MB, got ${JSON.stringify(memory)}`);
  }
  if (sizeBytes(Number(size[1]), size[2] as string) < MIN_DUCKDB_MEMORY_BYTES) {
    throw new ConfigError(
      `DUCKDB_MEMORY_LIMIT must be at least 128MB (DuckDB runs out of memory below it), got ${JSON.stringify(memory)}`,
    );
  }
  const transport = oneOf('STAGING_TRANSPORT', ['s3', 'firehose'] as const, 's3');
  const firehoseStreamName = read('FIREHOSE_STREAM_NAME');
  if (transport === 'firehose' && !firehoseStreamName) {
    throw new ConfigError('STAGING_TRANSPORT=firehose needs FIREHOSE_STREAM_NAME');
  }
  return {
    tenants: parseTenantList(read('TENANT_ID') ?? 'default_tenant', 'TENANT_ID'),
    targetDateOffset: int('TARGET_DATE_OFFSET', -1, -3650, 3650),
    dataDir: resolve(read('DATA_DIR') ?? 'data'),
    dataDirGiven: read('DATA_DIR') !== undefined,
    tempDir: resolve(read('TEMP_DIR') ?? tmpdir()),
    compaction: {
      concurrency: int('COMPACT_CONCURRENCY', 4, 1, 256),
      compression: oneOf('PARQUET_COMPRESSION', ['snappy', 'zstd'] as const, 'snappy'),
      targetFileBytes: int('PARQUET_TARGET_FILE_MB', 256, 1, 10_240) * 1024 * 1024,
      rowGroupSize: int('PARQUET_ROW_GROUP_SIZE', 122_880, 1_024, 10_000_000),
      rowGroupBytes: int('PARQUET_ROW_GROUP_MB', 32, 1, 1_024) * 1024 * 1024,
      transferConcurrency: int('TRANSFER_CONCURRENCY', 8, 1, 64),
      lateDataLookbackDays: int('LATE_DATA_LOOKBACK_DAYS', 0, 0, 36500),
      splitThresholdBytes: int('SPLIT_THRESHOLD_BYTES', DEFAULT_SPLIT_THRESHOLD_BYTES, 0),
      intradayMinutes: int('INTRADAY_MINUTES', 60, 0, 1440),
    },
    duckdb: { memoryLimit: memory, threads: int('DUCKDB_THREADS', availableParallelism(), 1, 256) },
    fieldMapping: read('FIELD_MAPPING') ? parseFieldMapping(read('FIELD_MAPPING')) : DEFAULT_FIELD_MAPPING,
    retention: parseRetentionSetting(read('LAKE_RETENTION_DAYS')),
    aws: {
      bucket: read('S3_BUCKET_NAME'),
      endpoint: read('S3_ENDPOINT'),
      forcePathStyle: bool('S3_FORCE_PATH_STYLE'),
      region: read('AWS_DEFAULT_REGION') ?? read('AWS_REGION'),
      tableName: read('DYNAMODB_TABLE_NAME'),
      dynamodbEndpoint: read('DYNAMODB_ENDPOINT'),
      backfillMaxRcu: int('DYNAMODB_BACKFILL_MAX_RCU', 100, 1, 1_000_000),
      failureQueueUrl: read('STREAM_FAILURE_QUEUE_URL'),
      sqsEndpoint: read('SQS_ENDPOINT'),
      stagingTransport: transport,
      firehoseStreamName,
    },
    azure: {
      connectionString: read('AZURE_STORAGE_CONNECTION_STRING'),
      accountUrl: read('AZURE_STORAGE_ACCOUNT_URL'),
      container: read('AZURE_STORAGE_CONTAINER') ?? 'makoto',
      cosmosEndpoint: read('COSMOS_ENDPOINT'),
      cosmosKey: read('COSMOS_KEY'),
      cosmosDatabase: read('COSMOS_DATABASE') ?? 'makoto',
      cosmosContainer: read('COSMOS_CONTAINER') ?? 'messages',
    },
  };
}

/**
 * The smallest DUCKDB_MEMORY_LIMIT accepted: below it every compaction fails with "out of memory" (0GB is a
 * well-formed size), so the command stops at start-up instead.
 */
export const MIN_DUCKDB_MEMORY_BYTES = 128 * 1000 * 1000;

/** Bytes of a DuckDB size: KB, MB, GB, TB are powers of 1000, KiB … TiB powers of 1024 (DuckDB's own reading). */
function sizeBytes(amount: number, unit: string): number {
  const u = unit.toUpperCase();
  const power = ['K', 'M', 'G', 'T'].indexOf(u[0] as string) + 1;
  return amount * (u.includes('I') ? 1024 : 1000) ** power;
}

/** 'a,b' → ['a','b']; '*' → 'all'. Every id is validated. */
export function parseTenantList(text: string, what = 'tenants'): readonly string[] | 'all' {
  if (text.trim() === '*') return 'all';
  const ids = text
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  if (ids.length === 0) throw new ConfigError(`${what} must name at least one tenant (or '*'), got ${JSON.stringify(text)}`);
  for (const id of ids) {
    try {
      assertTenantId(id);
    } catch (error) {
      throw new ConfigError(`${what}: ${(error as Error).message}`, { cause: error });
    }
  }
  return ids;
}

/** The cloud store setting that selects the store (`S3_BUCKET_NAME`, ...), or undefined for the local DATA_DIR. */
export function cloudStoreSetting(config: Config): string | undefined {
  if (config.aws.bucket) return 'S3_BUCKET_NAME';
  if (config.azure.connectionString) return 'AZURE_STORAGE_CONNECTION_STRING';
  if (config.azure.accountUrl) return 'AZURE_STORAGE_ACCOUNT_URL';
  return undefined;
}

/**
 * Whether the store was chosen: a cloud store is configured, or DATA_DIR (--data-dir) names the local one.
 * False means the default ./data of the working directory, which a command reading a cloud source must
 * not fill silently (a runbook line without S3_BUCKET_NAME would "succeed" into the operator's folder).
 */
export function isStoreChosen(config: Config): boolean {
  return cloudStoreSetting(config) !== undefined || config.dataDirGiven;
}

/** The settings the compaction engine takes, from the config. */
export function compactionSettings(config: Config) {
  const { compression, targetFileBytes, rowGroupSize, rowGroupBytes, transferConcurrency } = config.compaction;
  return { compression, targetFileBytes, rowGroupSize, rowGroupBytes, transferConcurrency };
}
