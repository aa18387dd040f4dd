import { describe, expect, it } from 'vitest';
import { cloudStoreSetting, isStoreChosen, loadConfig } from '../../src/core/config.js';

describe('loadConfig', () => {
  it('has the seed defaults', () => {
    const config = loadConfig({});
    expect([config.tenants, config.targetDateOffset, config.azure.container, config.compaction.compression]).toStrictEqual([
      ['default_tenant'],
      -1,
      'makoto',
      'snappy',
    ]);
    expect(config.compaction.targetFileBytes).toBe(256 * 1024 * 1024);
  });

  it('reads the seed variables', () => {
    const config = loadConfig({
      TENANT_ID: 'a, b',
      TARGET_DATE_OFFSET: '-2',
      S3_BUCKET_NAME: 'lake',
      S3_FORCE_PATH_STYLE: 'true',
    });
    expect([config.tenants, config.targetDateOffset, config.aws.bucket, config.aws.forcePathStyle]).toStrictEqual([
      ['a', 'b'],
      -2,
      'lake',
      true,
    ]);
    expect(loadConfig({ TENANT_ID: '*' }).tenants).toBe('all');
  });

  it('reads the tuning variables the README lists, with their defaults and bounds', () => {
    const tuning = (env: Record<string, string>) => {
      const c = loadConfig(env);
      return [c.compaction.rowGroupSize, c.compaction.rowGroupBytes, c.compaction.transferConcurrency, c.aws.backfillMaxRcu];
    };
    expect(tuning({})).toStrictEqual([122_880, 32 * 1024 * 1024, 8, 100]);
    expect(
      tuning({
        PARQUET_ROW_GROUP_SIZE: '2048',
        PARQUET_ROW_GROUP_MB: '4',
        TRANSFER_CONCURRENCY: '2',
        DYNAMODB_BACKFILL_MAX_RCU: '5',
      }),
    ).toStrictEqual([2048, 4 * 1024 * 1024, 2, 5]);
    expect(() => loadConfig({ TRANSFER_CONCURRENCY: '65' })).toThrow('TRANSFER_CONCURRENCY must be between 1 and 64, got 65');
    expect(() => loadConfig({ DYNAMODB_BACKFILL_MAX_RCU: '0' })).toThrow(
      'DYNAMODB_BACKFILL_MAX_RCU must be between 1 and 1000000, got 0',
    );
  });

  it('says whether the store was chosen: a cloud setting or DATA_DIR, not the ./data fallback', () => {
    const chosen = (env: Record<string, string>) => {
      const config = loadConfig(env);
      return [config.dataDirGiven, cloudStoreSetting(config), isStoreChosen(config)];
    };
    expect(chosen({})).toStrictEqual([false, undefined, false]);
    expect(chosen({ DATA_DIR: ' ' })).toStrictEqual([false, undefined, false]);
    expect(chosen({ DATA_DIR: '/tmp/lake' })).toStrictEqual([true, undefined, true]);
    expect(chosen({ S3_BUCKET_NAME: 'lake' })).toStrictEqual([false, 'S3_BUCKET_NAME', true]);
    expect(chosen({ AZURE_STORAGE_CONNECTION_STRING: 'UseDevelopmentStorage=true' })).toStrictEqual([
      false,
      'AZURE_STORAGE_CONNECTION_STRING',
      true,
    ]);
    expect(chosen({ AZURE_STORAGE_ACCOUNT_URL: 'https://a.blob.core.windows.net' })).toStrictEqual([
      false,
      'AZURE_STORAGE_ACCOUNT_URL',
      true,
    ]);
  });

  it('names the variable and the value it cannot use', () => {
    const error = (env: Record<string, string>) => {
      try {
        loadConfig(env);
        return 'no error';
      } catch (e) {
        return `${(e as Error).name}: ${(e as Error).message}`;
      }
    };
    expect(error({ TARGET_DATE_OFFSET: '1.5' })).toBe('ConfigError: TARGET_DATE_OFFSET must be an integer, got "1.5"');
    expect(error({ COMPACT_CONCURRENCY: '0' })).toBe('ConfigError: COMPACT_CONCURRENCY must be between 1 and 256, got 0');
    expect(error({ PARQUET_COMPRESSION: 'gzip' })).toBe(
      'ConfigError: PARQUET_COMPRESSION must be one of snappy, zstd, got "gzip"',
    );
    expect(error({ DUCKDB_MEMORY_LIMIT: 'lots' })).toBe(
      'ConfigError: DUCKDB_MEMORY_LIMIT must be a size such as 2GB or 512MB, got "lots"',
    );
    // well-formed but too small for DuckDB to run (every tenant failed with out of memory): refused at start-up
    for (const tooSmall of ['0GB', '127MB', '0.1GB', '100MiB']) {
      expect(error({ DUCKDB_MEMORY_LIMIT: tooSmall })).toBe(
        `ConfigError: DUCKDB_MEMORY_LIMIT must be at least 128MB (DuckDB runs out of memory below it), got "${tooSmall}"`,
      );
    }
    expect(['128MB', '0.128GB', '123MiB', '2GB'].map((m) => error({ DUCKDB_MEMORY_LIMIT: m }))).toStrictEqual([
      'no error',
      'no error',
      'no error',
      'no error',
    ]);
    expect(error({ S3_FORCE_PATH_STYLE: 'yes' })).toBe('ConfigError: S3_FORCE_PATH_STYLE must be true or false, got "yes"');
    expect(error({ TENANT_ID: 'ok,b a' })).toBe(
      `ConfigError: TENANT_ID: tenant id "b a" may contain only letters, digits, '-' and '_'`,
    );
    expect(error({ STAGING_TRANSPORT: 'firehose' })).toBe('ConfigError: STAGING_TRANSPORT=firehose needs FIREHOSE_STREAM_NAME');
  });
});
