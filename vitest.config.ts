import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Vitest's results cache (it orders the files longest first) outside node_modules: npm keeps a hidden
  // lock file there and, once anything in node_modules is newer, every `npx makoto-lake` re-reads the whole
  // tree first (+0.5 s a call, and the runbook suite runs twenty of them). scripts/test.mjs also loads this
  // file with `--configLoader runner`, which writes no node_modules/.vite-temp.
  cacheDir: join(tmpdir(), 'makoto-lake-vitest'),
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
