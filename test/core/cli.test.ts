import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { marshall } from '@aws-sdk/util-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../compactor/cli.js';
import { dynamodbBatchId } from '../../src/capture/ingest/sources.js';
import { jstDate } from '../../src/core/time/jst.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { chatItem, cosmosDocument, dynamodbRecord } from '../kit/factories.js';
import { readLake } from '../kit/readParquet.js';
import { tempDir } from '../kit/tempDir.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  dir = await tempDir();
});
afterAll(() => dir.cleanup());

async function cli(argv: string[], env: Record<string, string> = {}) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await main(
    argv,
    { DATA_DIR: join(dir.path, 'data'), TEMP_DIR: dir.path, DUCKDB_THREADS: '2', ...env },
    {
      stdout: (t) => stdout.push(t),
      stderr: (t) => stderr.push(t),
    },
  );
  return { code, stdout: stdout.join('\n'), stderr: stderr.join('\n') };
}

describe('makoto-lake CLI', () => {
  it('ingests a captured stream event and compacts it, with a JSON summary', async () => {
    const event = join(dir.path, 'event.json');
    await writeFile(
      event,
      JSON.stringify({
        Records: [
          dynamodbRecord({ seq: 1, item: chatItem({ tenantId: 'default_tenant', messageId: 'a' }) }),
          dynamodbRecord({ seq: 2, item: chatItem({ tenantId: 'globex', messageId: 'b' }) }),
          dynamodbRecord({ seq: 3, item: chatItem({ tenantId: 'default_tenant', messageId: 'a', content: 'edited' }) }),
        ],
      }),
    );
    const ingested = await cli(['ingest', '--source', 'dynamodb', event]);
    expect(ingested.code).toBe(0);
    expect(ingested.stdout).toBe(
      [
        'received  staged  quarantined  objects  failed',
        '--------  ------  -----------  -------  ------',
        '       3       3            0        2       0',
      ].join('\n'),
    );

    // the seed's positional order: DATE then TENANT (default TENANT_ID = default_tenant)
    const compacted = await cli(['compact', '2025-08-11', '--json']);
    expect(compacted.code).toBe(0);
    const json = JSON.parse(compacted.stdout);
    expect(json.tenants.map((t: Record<string, unknown>) => [t.tenant_id, t.status, t.rows_read, t.rows_written])).toStrictEqual([
      ['default_tenant', 'compacted', 2, 1],
    ]);
    expect(compacted.stderr).toMatch(/✓ default_tenant 2025-08-11 read 2 \(1 objects\) → wrote 1 rows/);

    const all = await cli(['compact', '2025-08-11', '--all-tenants', '--json']);
    expect(JSON.parse(all.stdout).tenants.map((t: Record<string, unknown>) => t.tenant_id)).toStrictEqual([
      'default_tenant',
      'globex',
    ]);
    expect(await readdir(join(dir.path, 'data', 'analytics', 'messages'))).toStrictEqual([
      '_delta_log',
      'tenant_id=default_tenant',
      'tenant_id=globex',
    ]);
  });

  it('a tenant named twice is compacted once, its late day too (`compact D acme,acme,globex --late`)', async () => {
    const env = { DATA_DIR: join(dir.path, 'dedupe') };
    const event = join(dir.path, 'dedupe-event.json');
    const ingest = async (records: unknown[]) => {
      await writeFile(event, JSON.stringify({ Records: records }));
      expect((await cli(['ingest', '--source', 'dynamodb', event], env)).code).toBe(0);
    };
    const earlier = '2025-08-10T01:00:00.000Z';
    await ingest([
      dynamodbRecord({ seq: 1, item: chatItem({ tenantId: 'acme', messageId: 'old', createdAt: earlier }) }),
      dynamodbRecord({ seq: 2, item: chatItem({ tenantId: 'acme', messageId: 'a' }) }),
      dynamodbRecord({ seq: 3, item: chatItem({ tenantId: 'globex', messageId: 'g' }) }),
    ]);
    expect((await cli(['compact', '2025-08-10', 'acme'], env)).code).toBe(0);
    // a late edit of acme's message of the day before
    await ingest([
      dynamodbRecord({ seq: 4, item: chatItem({ tenantId: 'acme', messageId: 'old', createdAt: earlier, content: 'edited' }) }),
    ]);
    const result = await cli(['compact', '2025-08-11', 'acme,acme,globex', '--late', '--json'], env);
    expect(result.code).toBe(0);
    expect(
      JSON.parse(result.stdout).tenants.map((t: Record<string, unknown>) => [t.tenant_id, t.dt, t.status, t.rows_written]),
    ).toStrictEqual([
      ['acme', '2025-08-11', 'compacted', 1],
      ['globex', '2025-08-11', 'compacted', 1],
      ['acme', '2025-08-10', 'compacted', 1],
    ]);
    expect(result.stderr.split('\n').filter((l) => /^[✓✗]/.test(l))).toHaveLength(3);
  });

  it('exits 4 when a named tenant has no staging for the day, unless --allow-empty', async () => {
    const result = await cli(['compact', '2025-08-11', 'globex,nobody', '--json']);
    expect(result.code).toBe(4);
    expect(JSON.parse(result.stdout).tenants.map((t: Record<string, unknown>) => t.status)).toStrictEqual([
      'compacted',
      'no-input',
    ]);
    expect(result.stderr.split('\n').slice(-2)).toStrictEqual([
      'makoto-lake: no staging objects for nobody on 2025-08-11',
      '(capture may be broken; --allow-empty accepts an empty day)',
    ]);
    const allowed = await cli(['compact', '2025-08-11', 'globex,nobody', '--allow-empty']);
    expect([allowed.code, allowed.stderr.split('\n').at(-1)]).toStrictEqual([
      0,
      'makoto-lake: no staging objects for nobody on 2025-08-11',
    ]);
    const nothing = await cli(['compact', '2025-08-10', '--all-tenants']);
    expect([nothing.code, nothing.stderr.split('\n').slice(-2)]).toStrictEqual([
      4,
      [
        'makoto-lake: no tenant has staging objects for 2025-08-10',
        '(capture may be broken; --allow-empty accepts an empty day)',
      ],
    ]);
  });

  it('exits 3 when another run holds a partition’s lease, and 1 when a tenant fails (the others still compact)', async () => {
    const lease = join(dir.path, 'data', 'locks', 'messages', 'tenant_id=globex', 'dt=2025-08-11.lock');
    await mkdir(dirname(lease), { recursive: true });
    const until = new Date(Date.now() + 600_000).toISOString();
    await writeFile(lease, JSON.stringify({ run_id: 'other', holder: 'host:1', acquired_at: until, expires_at: until }));
    const locked = await cli(['compact', '2025-08-11', 'default_tenant,globex', '--json']);
    expect(locked.code).toBe(3);
    expect(JSON.parse(locked.stdout).tenants.map((t: Record<string, unknown>) => [t.tenant_id, t.status])).toStrictEqual([
      ['default_tenant', 'compacted'],
      ['globex', 'locked'],
    ]);
    await rm(lease);
    // a memory limit DuckDB cannot run under stops the command at start-up (exit 2), before any tenant fails
    const bad = await cli(['compact', '2025-08-11', 'globex'], { DUCKDB_MEMORY_LIMIT: '1KB' });
    expect([bad.code, bad.stderr.split('\n')[0]]).toStrictEqual([
      2,
      'makoto-lake: DUCKDB_MEMORY_LIMIT must be at least 128MB (DuckDB runs out of memory below it), got "1KB"',
    ]);
  });

  it('answers usage errors with exit 2 and a specific message', async () => {
    const cases: [string[], Record<string, string>, string][] = [
      [['compact', '2025-02-30'], {}, 'makoto-lake: DATE must be a calendar date YYYY-MM-DD, got "2025-02-30"'],
      [
        ['compact', '2025-08-11', '../etc'],
        {},
        `makoto-lake: TENANTS: tenant id "../etc" may contain only letters, digits, '-' and '_'`,
      ],
      [
        ['compact', '--nope'],
        {},
        `makoto-lake: Unknown option '--nope'. To specify a positional argument starting with a '-', place it at the end of the command after '--', as in '-- "--nope"`,
      ],
      [['compact'], { TARGET_DATE_OFFSET: 'x' }, 'makoto-lake: TARGET_DATE_OFFSET must be an integer, got "x"'],
      [['ingest', '--source', 'kafka', 'f.json'], {}, 'makoto-lake: --source must be dynamodb or cosmos, got "kafka"'],
      [['frobnicate'], {}, 'makoto-lake: unknown command "frobnicate"'],
    ];
    for (const [argv, env, message] of cases) {
      const result = await cli(argv, env);
      expect([result.code, result.stderr.split('\n')[0]]).toStrictEqual([2, message]);
    }
  });

  it('ingest, redrive and backfill refuse an implicit ./data (exit 2, nothing read); --data-dir or DATA_DIR chooses it', async () => {
    const noStore = { DATA_DIR: '' };
    const implicit = join(process.cwd(), 'data');
    const refusal = (reads: string) =>
      `makoto-lake: ${reads}, but no store is set: export S3_BUCKET_NAME (S3) or AZURE_STORAGE_CONNECTION_STRING / ` +
      'AZURE_STORAGE_ACCOUNT_URL (Blob) to write to the lake, or give --data-dir DIR (or DATA_DIR) to write to a local ' +
      `folder; refusing to fill ${implicit} (nothing was read or written)`;
    const missing = join(dir.path, 'not-there.json');
    const cases: [string[], string][] = [
      [['ingest', '--source', 'cosmos', missing], refusal(`ingest replays cosmos changes from ${missing}`)],
      [['redrive', '--source', 'dynamodb', missing], refusal('redrive stages records it reads from DynamoDB Streams')],
      [
        ['redrive', '--source', 'dynamodb', '--queue-url', 'https://sqs.ap-northeast-1.amazonaws.com/1/q'],
        refusal('redrive stages records it reads from DynamoDB Streams'),
      ],
      [
        ['backfill', '--source', 'cosmos', '2025-08-11', 'acme'],
        refusal('backfill stages what it reads from the Cosmos DB container messages'),
      ],
      [
        ['backfill', '--source', 'dynamodb', '2025-08-11', 'acme'],
        refusal('backfill stages what it reads from the DynamoDB table (DYNAMODB_TABLE_NAME)'),
      ],
      [
        ['backfill', '--source', 'dynamodb', '*', '--from-export', 'exports/messages'],
        refusal('backfill stages what it reads from the DynamoDB export exports/messages'),
      ],
    ];
    for (const [argv, message] of cases) {
      const result = await cli(argv, noStore);
      // the message alone: no usage text after it
      expect([result.code, result.stderr]).toStrictEqual([2, message]);
    }
    // with a cloud store, --data-dir is a contradiction
    const both = await cli(['ingest', '--source', 'cosmos', missing, '--data-dir', dir.path], { S3_BUCKET_NAME: 'lake' });
    expect([both.code, both.stderr.split('\n')[0]]).toStrictEqual([
      2,
      'makoto-lake: --data-dir names a local store, but S3_BUCKET_NAME selects the cloud store: give one',
    ]);
    // a table or container backfill reads per tenant: '*' only with --from-export
    const every = await cli(['backfill', '--source', 'cosmos', '2025-08-11', '*']);
    expect([every.code, every.stderr.split('\n')[0]]).toStrictEqual([
      2,
      'makoto-lake: backfill needs tenant ids (TENANTS or TENANT_ID), not * (every tenant: only with --from-export)',
    ]);
    // --data-dir chooses the local store: the replay lands there and names the day it staged
    const chosen = join(dir.path, 'chosen');
    const file = join(dir.path, 'replay.json');
    await writeFile(file, JSON.stringify([cosmosDocument(7, { id: 'r1', tenantId: 'acme', createdAt: '2025-08-11T01:00:00Z' })]));
    const replayed = await cli(['ingest', '--source', 'cosmos', file, '--data-dir', chosen], noStore);
    expect([replayed.code, replayed.stderr.split('\n').slice(-2)]).toStrictEqual([
      0,
      ['staged 1 tenant-day: acme 2025-08-11', '  compact them with: npx makoto-lake compact 2025-08-11 acme'],
    ]);
    expect(await readdir(join(chosen, 'staging/messages/tenant_id=acme/dt=2025-08-11'))).toHaveLength(1);
  });

  it('backfill --from-export with TENANT_ID=*: every tenant and day the export holds; an item without a tenant is quarantined under *', async () => {
    const data = join(dir.path, 'every-tenant');
    const folder = join(data, 'exports/all/AWSDynamoDB/01754900000000-abcdabcd');
    await mkdir(join(folder, 'data'), { recursive: true });
    const items = [
      { tenantId: 'acme', messageId: 'e1', createdAt: '2025-08-10T01:00:00Z', content: 'acme, the 10th' },
      { tenantId: 'globex', messageId: 'e2', createdAt: '2025-08-11T01:00:00Z', content: 'globex, the 11th' },
      { messageId: 'e3', createdAt: '2025-08-11T02:00:00Z', content: 'no tenant' },
    ];
    await writeFile(
      join(folder, 'data/file0.json.gz'),
      gzipSync(`${items.map((item) => JSON.stringify({ Item: marshall(item) })).join('\n')}\n`),
    );
    await writeFile(
      join(folder, 'manifest-files.json'),
      `${JSON.stringify({ itemCount: 3, dataFileS3Key: 'exports/all/AWSDynamoDB/01754900000000-abcdabcd/data/file0.json.gz' })}\n`,
    );
    await writeFile(
      join(folder, 'manifest-summary.json'),
      JSON.stringify({ exportTime: '2025-08-12T00:00:00.000Z', outputFormat: 'DYNAMODB_JSON', exportType: 'FULL_EXPORT' }),
    );

    const result = await cli(['backfill', '--source', 'dynamodb', '--from-export', 'exports/all', '--json'], {
      DATA_DIR: data,
      TENANT_ID: '*',
    });

    expect(result.code, result.stderr).toBe(1);
    const summary = JSON.parse(result.stdout) as { days: unknown; results: Record<string, unknown>[] };
    expect(summary.results.map((r) => [r.tenant, r.date, r.status, r.read, r.staged, r.quarantined, r.noTenant])).toStrictEqual([
      ['acme', '2025-08-10', 'ok', 1, 1, 0, 0],
      ['globex', '2025-08-11', 'ok', 1, 1, 0, 0],
      ['*', 'undated', 'ok', 1, 0, 1, 1],
    ]);
    expect(summary.days).toStrictEqual([
      { tenant: 'acme', dt: '2025-08-10' },
      { tenant: 'globex', dt: '2025-08-11' },
    ]);
    expect(result.stderr.split('\n')[0]).toBe(
      `backfilling every day for every tenant from file://${data}/exports/all into file://${data}`,
    );
  });

  it('runs the demo end to end', async () => {
    const result = await cli(['demo', '--date', '2025-08-11', '--messages', '40'], { DATA_DIR: join(dir.path, 'demo') });
    expect(result.code).toBe(0);
    expect(result.stdout.split('\n')[0]).toBe(
      'ingested 138 stream records in 3 batches → 137 staged in 6 objects, 1 quarantined',
    );
    expect(result.stdout).toMatch(/sakura-shop +2025-08-11 +compacted/);
    expect(result.stdout).toContain('read back from Parquet with DuckDB:');
  });

  it('ingest reads a replayed file with a byte order mark; refuses one with bytes that are not UTF-8 or trail its gzip, naming why', async () => {
    const env = { DATA_DIR: join(dir.path, 'replay-bytes') };
    const record = (messageId: string, content: string) =>
      dynamodbRecord({ seq: 21, item: chatItem({ tenantId: 'acme', messageId, content }) });
    const bom = join(dir.path, 'bom.json');
    await writeFile(
      bom,
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify({ Records: [record('b1', 'ok')] }))]),
    );
    const withBom = await cli(['ingest', '--source', 'dynamodb', bom, '--json'], env);
    expect([withBom.code, JSON.parse(withBom.stdout).staged]).toStrictEqual([0, 1]);

    // a record whose content holds the bytes FF FE (no UTF-8 character): refused, not read as U+FFFD
    const text = JSON.stringify({ Records: [record('u1', 'ok')] }, null, 1);
    const at = text.indexOf('"ok"') + 1;
    const badUtf8 = join(dir.path, 'bad-utf8.json');
    await writeFile(
      badUtf8,
      Buffer.concat([Buffer.from(text.slice(0, at)), Buffer.from([0xff, 0xfe]), Buffer.from(text.slice(at))]),
    );
    const line = text.slice(0, at).split('\n').length;
    const refused = await cli(['ingest', '--source', 'dynamodb', badUtf8], env);
    expect([refused.code, refused.stderr.split('\n')[0]]).toStrictEqual([
      2,
      `makoto-lake: cannot read ${badUtf8} as JSON: line ${line} is not valid UTF-8; nothing was staged`,
    ]);

    const junk = join(dir.path, 'junk.json.gz');
    await writeFile(junk, Buffer.concat([gzipSync(JSON.stringify({ Records: [record('j1', 'ok')] })), Buffer.from('junk\n')]));
    const trailing = await cli(['ingest', '--source', 'dynamodb', junk], env);
    expect([trailing.code, trailing.stderr.split('\n')[0]]).toStrictEqual([
      2,
      `makoto-lake: cannot read ${junk} as JSON: not a complete gzip file (incorrect header check: damaged, cut short, or followed by bytes that are not gzip); nothing was staged`,
    ]);
    // only the file with the byte order mark was staged
    expect(
      (await readdir(join(dir.path, 'replay-bytes', 'staging', 'messages'), { recursive: true })).filter((f) => f.endsWith('.gz'))
        .length,
    ).toBe(1);
  });

  it('ingest exits 1 when records were quarantined, with counts per reason on stderr and in --json', async () => {
    const data = join(dir.path, 'loud');
    const event = join(dir.path, 'loud.json');
    const good = chatItem({ tenantId: 'acme', messageId: 'ok' });
    await writeFile(
      event,
      JSON.stringify({
        Records: [
          dynamodbRecord({ seq: 11, item: chatItem({ tenantId: undefined }) }),
          dynamodbRecord({ seq: 12, item: good }),
          dynamodbRecord({ seq: 13, item: chatItem({ tenantId: undefined, messageId: 'm2' }) }),
          dynamodbRecord({ seq: 14, item: chatItem({ createdAt: 'soon' }) }),
          { eventName: 'REMOVE', dynamodb: { SequenceNumber: '15', StreamViewType: 'KEYS_ONLY', Keys: {} } },
        ],
      }),
    );
    const text = await cli(['ingest', '--source', 'dynamodb', event], { DATA_DIR: data });
    const arn = 'arn:aws:dynamodb:ap-northeast-1:000000000000:table/messages/stream/2025-08-01T00:00:00.000';
    const quarantineKey = `quarantine/ingest/source=dynamodb/dt=${jstDate(Date.now())}/${dynamodbBatchId(arn)}_11_15.ndjson.gz`;
    expect(text.code).toBe(1);
    expect(text.stderr.split('\n').slice(-4)).toStrictEqual([
      'quarantined 4 records (3 reasons):',
      `  2 × no tenant id (looked for tenant_id, tenantId) (e.g. position 11 in ${quarantineKey})`,
      `  1 × created_at: not an ISO-8601 timestamp: "soon" (e.g. position 14 in ${quarantineKey})`,
      `  1 × REMOVE record has no OldImage (stream view type KEYS_ONLY; capture needs NEW_AND_OLD_IMAGES) (e.g. position 15 in ${quarantineKey})`,
    ]);
    const json = await cli(['ingest', '--source', 'dynamodb', event, '--json'], { DATA_DIR: data });
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toStrictEqual({
      received: 5,
      staged: 1,
      quarantined: 4,
      quarantine: [
        { reason: 'no tenant id (looked for tenant_id, tenantId)', count: 2, example: 'position 11', object: quarantineKey },
        { reason: 'created_at: not an ISO-8601 timestamp: "soon"', count: 1, example: 'position 14', object: quarantineKey },
        {
          reason: 'REMOVE record has no OldImage (stream view type KEYS_ONLY; capture needs NEW_AND_OLD_IMAGES)',
          count: 1,
          example: 'position 15',
          object: quarantineKey,
        },
      ],
      objects: [`staging/messages/tenant_id=acme/dt=2025-08-11/${dynamodbBatchId(arn)}_12_12.ndjson.gz`, quarantineKey],
      failed: [],
    });
  });

  it('two Cosmos replays with the same _lsn range from different partitions keep both batches', async () => {
    const data = join(dir.path, 'replays');
    const partitionA = join(dir.path, 'partition-a.json');
    const partitionB = join(dir.path, 'partition-b.json');
    await writeFile(
      partitionA,
      JSON.stringify([cosmosDocument(5, { id: 'a1', tenantId: 'acme' }), cosmosDocument(9, { id: 'a2', tenantId: 'acme' })]),
    );
    await writeFile(
      partitionB,
      JSON.stringify([cosmosDocument(5, { id: 'b1', tenantId: 'acme' }), cosmosDocument(9, { id: 'b2', tenantId: 'acme' })]),
    );
    expect((await cli(['ingest', '--source', 'cosmos', partitionA], { DATA_DIR: data })).code).toBe(0);
    expect((await cli(['ingest', '--source', 'cosmos', partitionB], { DATA_DIR: data })).code).toBe(0);
    const staging = await readdir(join(data, 'staging/messages/tenant_id=acme/dt=2025-08-11'));
    expect(staging).toHaveLength(2);
    expect(staging.every((name) => /^cosmos-b[0-9a-f]{16}_5_9\.ndjson\.gz$/.test(name))).toBe(true);
    const compacted = await cli(['compact', '2025-08-11', 'acme', '--json'], { DATA_DIR: data });
    expect(JSON.parse(compacted.stdout).tenants.map((t: Record<string, unknown>) => [t.rows_read, t.rows_written])).toStrictEqual(
      [[4, 4]],
    );
  });

  it('Cosmos replays of documents without id that share _lsns keep every record; a re-delivery (keys in another order) overwrites its own object', async () => {
    const data = join(dir.path, 'replays-no-id');
    const noId = (lsn: number, messageId: string, content: string) =>
      cosmosDocument(lsn, { id: undefined, messageId, tenantId: 'acme', content });
    const batches = {
      a: [noId(5, 'x1', 'partition a, first'), noId(9, 'x2', 'partition a, second')],
      b: [noId(5, 'y1', 'partition b, first'), noId(9, 'y2', 'partition b, second')],
      // batch a again, as a client that orders keys differently would send it
      again: [noId(5, 'x1', 'partition a, first'), noId(9, 'x2', 'partition a, second')].map((d) =>
        Object.fromEntries(Object.entries(d).reverse()),
      ),
    };
    const staged: string[][] = [];
    for (const [name, documents] of Object.entries(batches)) {
      const path = join(dir.path, `no-id-${name}.json`);
      await writeFile(path, JSON.stringify(documents));
      const result = await cli(['ingest', '--source', 'cosmos', path, '--json'], { DATA_DIR: data });
      expect(result.code).toBe(0);
      staged.push(JSON.parse(result.stdout).objects);
    }
    expect(staged[0]).toHaveLength(1);
    expect(staged[1]).toHaveLength(1);
    expect(staged[0]).not.toStrictEqual(staged[1]);
    expect(staged[2]).toStrictEqual(staged[0]);
    expect((await readdir(join(data, 'staging/messages/tenant_id=acme/dt=2025-08-11'))).sort()).toStrictEqual(
      [...(staged[0] ?? []), ...(staged[1] ?? [])].map((key) => key.split('/').at(-1)).sort(),
    );
    expect((await cli(['compact', '2025-08-11', 'acme'], { DATA_DIR: data })).code).toBe(0);
    const rows = await readLake(new LocalStore(data));
    expect(rows.map((r) => [r.tenant_id, r.dt, r.message_id, r.content, r.source_seq])).toStrictEqual([
      ['acme', '2025-08-11', 'x1', 'partition a, first', '5'],
      ['acme', '2025-08-11', 'x2', 'partition a, second', '9'],
      ['acme', '2025-08-11', 'y1', 'partition b, first', '5'],
      ['acme', '2025-08-11', 'y2', 'partition b, second', '9'],
    ]);
  });

  it('the same replays under the same --lease label (the first build’s option) still keep both batches', async () => {
    const data = join(dir.path, 'replays-lease');
    for (const [file, ids] of [
      ['lease-a.json', ['a1', 'a2']],
      ['lease-b.json', ['b1', 'b2']],
    ] as const) {
      const path = join(dir.path, file);
      await writeFile(path, JSON.stringify(ids.map((id, i) => cosmosDocument(i === 0 ? 5 : 9, { id, tenantId: 'acme' }))));
      expect((await cli(['ingest', '--source', 'cosmos', path, '--lease', 'lease-0'], { DATA_DIR: data })).code).toBe(0);
    }
    const staging = await readdir(join(data, 'staging/messages/tenant_id=acme/dt=2025-08-11'));
    expect(staging).toHaveLength(2);
    expect(staging.every((name) => /^cosmos-lease-0-b[0-9a-f]{16}_5_9\.ndjson\.gz$/.test(name))).toBe(true);
    const dynamo = await cli(['ingest', '--source', 'dynamodb', join(dir.path, 'lease-a.json'), '--lease', 'x'], {
      DATA_DIR: data,
    });
    expect([dynamo.code, dynamo.stderr.split('\n')[0]]).toStrictEqual([2, 'makoto-lake: --lease goes with --source cosmos']);
  });
});
