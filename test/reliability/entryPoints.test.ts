import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../compactor/cli.js';
import { compactionRequest, runCompactorEvent } from '../../compactor/lambda.js';
import { loadConfig } from '../../src/core/config.js';
import { parseCompactionPayload } from '../../src/jobs/compactionPayload.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { quietTelemetry } from '../../tools/quietTelemetry.js';
import { tempDir } from '../kit/tempDir.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  dir = await tempDir('makoto-lake-entry-');
});
afterAll(() => dir.cleanup());

async function cli(argv: string[], env: Record<string, string> = {}) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await main(
    argv,
    { DATA_DIR: join(dir.path, 'data'), TEMP_DIR: dir.path, DUCKDB_THREADS: '1', ...env },
    { stdout: (t) => stdout.push(t), stderr: (t) => stderr.push(t) },
  );
  return { code, stdout: stdout.join('\n'), stderr: stderr.join('\n') };
}

/** The first line of a usage error; the usage text follows it. */
const firstLine = (text: string) => text.split('\n')[0];

describe('invalid CLI input gives a usage error (exit 2), never a stack trace', () => {
  it.each([
    [['compact', '2025-02-30'], 'makoto-lake: DATE must be a calendar date YYYY-MM-DD, got "2025-02-30"', {}],
    [['compact', '20250811'], 'makoto-lake: DATE must be a calendar date YYYY-MM-DD, got "20250811"', {}],
    [
      ['compact', '2025-08-11', '../etc'],
      `makoto-lake: TENANTS: tenant id "../etc" may contain only letters, digits, '-' and '_'`,
      {},
    ],
    [['compact', '2025-08-11', 'a,b', 'c'], 'makoto-lake: compact takes at most DATE and TENANTS, got 3 arguments', {}],
    [
      ['compact', '--bogus'],
      `makoto-lake: Unknown option '--bogus'. To specify a positional argument starting with a '-', place it at the end of the command after '--', as in '-- "--bogus"`,
      {},
    ],
    [['compact'], 'makoto-lake: TARGET_DATE_OFFSET must be between -3650 and 3650, got -99999', { TARGET_DATE_OFFSET: '-99999' }],
    [['compact'], 'makoto-lake: TARGET_DATE_OFFSET must be an integer, got "-1.5"', { TARGET_DATE_OFFSET: '-1.5' }],
    [
      ['compact'],
      'makoto-lake: DUCKDB_MEMORY_LIMIT must be a size such as 2GB or 512MB, got "-1GB"',
      { DUCKDB_MEMORY_LIMIT: '-1GB' },
    ],
    [['demo', '--messages=-5'], 'makoto-lake: --messages must be an integer from 2 to 1000000, got "-5"', {}],
    // node's parseArgs refuses a value that looks like an option: still a usage error, if a terse one
    [['demo', '--messages', '-5'], "makoto-lake: Option '--messages' argument is ambiguous.", {}],
    [['ingest', '--source', 'kafka', 'x.json'], 'makoto-lake: --source must be dynamodb or cosmos, got "kafka"', {}],
    [['frobnicate'], 'makoto-lake: unknown command "frobnicate"', {}],
  ] as const)('%j', async (argv, message, env) => {
    const result = await cli([...argv], env);
    expect([result.code, firstLine(result.stderr)]).toStrictEqual([2, message]);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('an unknown tenant: nothing to compact, the partition is left alone, exit 4 (0 with --allow-empty)', async () => {
    const result = await cli(['compact', '2025-08-11', 'nobody']);
    expect(result.code).toBe(4);
    expect(result.stderr.split('\n').slice(1)).toStrictEqual([
      '· nobody 2025-08-11 no staging objects, partition left as it was',
      'makoto-lake: no staging objects for nobody on 2025-08-11',
      '(capture may be broken; --allow-empty accepts an empty day)',
    ]);
    expect((await cli(['compact', '2025-08-11', 'nobody', '--allow-empty'])).code).toBe(0);
  });

  it('a file that is not JSON is a usage error naming the file', async () => {
    const result = await cli(['ingest', '--source', 'dynamodb', join(dir.path, 'missing.json')]);
    expect(result.code).toBe(2);
    expect(firstLine(result.stderr)).toMatch(/^makoto-lake: cannot read .*missing\.json as JSON: ENOENT/);
  });
});

describe('invalid Lambda / HTTP payloads are usage errors with the field and value', () => {
  const config = loadConfig({ TENANT_ID: 'acme' });
  it.each([
    [{ target_date: '2025-02-30' }, 'target_date must be a calendar date YYYY-MM-DD, got "2025-02-30"'],
    [{ target_date: -1 }, 'target_date must be a string YYYY-MM-DD, got -1'],
    [{ tenants: ['../x'] }, `tenants: tenant id "../x" may contain only letters, digits, '-' and '_'`],
    [{ tenants: 'acme' }, 'tenants must be a non-empty array of tenant ids or "*", got "acme"'],
    [{ late: 1 }, 'late must be true or false, got 1'],
    [{ offset: -3 }, 'unknown field(s) offset; expected target_date, tenants, late, intraday'],
    ['2025-08-11', 'the payload must be a JSON object like {"target_date": "2025-08-11", "tenants": ["tenant-a"]}'],
  ])('%j', async (payload, message) => {
    expect(() => parseCompactionPayload(payload)).toThrow(message);
    expect(() => compactionRequest(payload, config, Date.now())).toThrow(message);
    await expect(
      runCompactorEvent(payload, { config, store: new LocalStore(join(dir.path, 'lambda')), ...quietTelemetry() }),
    ).rejects.toMatchObject({ name: 'UsageError', message });
  });
});
