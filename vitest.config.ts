import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Suites start real servers (DynamoDB Local, s3rver, Azurite, Cosmos); two cores: keep forks few.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 60_000,
    hookTimeout: 120_000,
    env: { NODE_OPTIONS: '--openssl-legacy-provider' },
  },
});
