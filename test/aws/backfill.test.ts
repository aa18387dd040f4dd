import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { CreateTableCommand, DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../compactor/cli.js';
import { DynamoExportReader } from '../../src/capture/backfill/DynamoExportReader.js';
import { runBackfill, runExportBackfill } from '../../src/capture/backfill/runBackfill.js';
import type { SourceReader } from '../../src/ports/SourceReader.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { getBytes, listAll } from '../../src/ports/store/ObjectStore.js';
import { DynamoTableReader } from '../../stores/dynamodb/DynamoTableReader.js';
import type { RunningServer } from '../../tools/servers.js';
import { restoreEnvironment } from '../kit/environment.js';
import { type ParsedLakeRow as LakeRow, readLake } from '../kit/readParquet.js';
import { tempDir } from '../kit/tempDir.js';
import { LOCAL_CREDENTIALS } from './support/dynamoStream.js';
import { REGION, startDynamoDbLocal } from './support/localAws.js';

const DATE = '2025-08-11';

/** The app's items: three tenants around the JST day's edges. */
const ITEMS: Record<string, unknown>[] = [
  { tenantId: 't1', messageId: 'm0', createdAt: '2025-08-10T14:59:59.999Z', content: 'the day before (JST)' },
  { tenantId: 't1', messageId: 'm1', createdAt: '2025-08-10T15:00:00.000Z', content: 'first millisecond', role: 'user' },
  { tenantId: 't1', messageId: 'm2', createdAt: '2025-08-11T23:59:59+09:00', content: '最後の一秒', role: 'assistant' },
  {
    tenantId: 't1',
    messageId: 'm3',
    createdAt: '2025-08-11T06:00:00Z',
    content: 'with extras',
    tokens: 42,
    tags: new Set(['b', 'a']),
  },
  { tenantId: 't1', messageId: 'm4', createdAt: '2025-08-11T15:00:00.000Z', content: 'next JST day' },
  { tenantId: 't2', messageId: 'n1', createdAt: '2025-08-11T00:00:00+09:00', content: 'こんにちは', userId: 'u-9' },
  { tenantId: 't2', messageId: 'n2', createdAt: '2025-08-11T12:00:00Z', content: 'second' },
  { tenantId: 't2', messageId: 'n3', createdAt: '2025-08-11T25:00:00Z', content: 'impossible hour' },
  { tenantId: 't3', messageId: 'x1', createdAt: '2025-08-11T01:00:00Z', content: 'tenant not asked for' },
];

/** The lake row an item of ITEMS becomes through a backfill. */
function row(messageId: string, over: Partial<LakeRow> = {}): LakeRow {
  const {
    tenantId,
    createdAt,
    content,
    role,
    userId,
    messageId: _,
    ...rest
  } = ITEMS.find((i) => i.messageId === messageId) ?? {};
  const attributes = Object.fromEntries(
    Object.entries(rest).map(([k, v]) => [k, v instanceof Set ? [...v].sort() : v]),
  ) as Record<string, unknown>;
  return {
    tenant_id: tenantId as string,
    dt: DATE,
    message_id: messageId,
    conversation_id: null,
    sender_id: (userId as string) ?? null,
    role: (role as string) ?? null,
    content: content as string,
    created_at: new Date(Date.parse(createdAt as string)).toISOString(),
    updated_at: null,
    source: 'dynamodb',
    source_seq: '0',
    attributes,
    ...over,
  };
}
const EXPECTED = () => [row('m1'), row('m2'), row('m3'), row('n1'), row('n2')];

let ddb: RunningServer & { endpoint: string };
let dynamo: DynamoDBClient;
let dir: { path: string; cleanup: () => Promise<void> };
const saved = { ...process.env };

/** A messages table (with the tenant + created-time index when asked) holding `items` (default: the suite's ITEMS). */
async function createTable(name: string, withIndex: boolean, items: readonly Record<string, unknown>[] = ITEMS) {
  await dynamo.send(
    new CreateTableCommand({
      TableName: name,
      KeySchema: [
        { AttributeName: 'tenantId', KeyType: 'HASH' },
        { AttributeName: 'messageId', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: 'tenantId', AttributeType: 'S' },
        { AttributeName: 'messageId', AttributeType: 'S' },
        ...(withIndex ? [{ AttributeName: 'createdAt', AttributeType: 'S' as const }] : []),
      ],
      BillingMode: 'PAY_PER_REQUEST',
      ...(withIndex
        ? {
            GlobalSecondaryIndexes: [
              {
                IndexName: 'byTenantCreated',
                KeySchema: [
                  { AttributeName: 'tenantId', KeyType: 'HASH' as const },
                  { AttributeName: 'createdAt', KeyType: 'RANGE' as const },
                ],
                Projection: { ProjectionType: 'ALL' as const },
              },
            ],
          }
        : {}),
    }),
  );
  for (const item of items) await dynamo.send(new PutItemCommand({ TableName: name, Item: marshall(item) }));
}

beforeAll(async () => {
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_EC2_METADATA_DISABLED: 'true' });
  ddb = await startDynamoDbLocal();
  dynamo = new DynamoDBClient({ endpoint: ddb.endpoint, region: REGION, credentials: LOCAL_CREDENTIALS });
  dir = await tempDir();
  await createTable('indexed', true);
  await createTable('plain', false);
});
afterAll(async () => {
  restoreEnvironment(saved);
  dynamo?.destroy();
  await ddb?.stop();
  await dir?.cleanup();
});

let runs = 0;
/** Every record in the store's capture quarantine (source=dynamodb), with the object that holds it, in order. */
async function quarantined(store: LocalStore): Promise<{ reason: string; raw: unknown; object: string }[]> {
  const records: { reason: string; raw: unknown; object: string }[] = [];
  for (const o of await listAll(store, 'quarantine/ingest/source=dynamodb/')) {
    const text = gunzipSync(await getBytes(store, o.key)).toString('utf8');
    for (const line of text.split('\n').filter((l) => l !== '')) {
      const { reason, raw } = JSON.parse(line) as { reason: string; raw: unknown };
      records.push({ reason, raw, object: o.key });
    }
  }
  return records;
}

function lake(table?: string) {
  runs++;
  const dataDir = join(dir.path, `data-${runs}`);
  const env: Record<string, string> = {
    DATA_DIR: dataDir,
    TEMP_DIR: dir.path,
    DUCKDB_THREADS: '1',
    DYNAMODB_ENDPOINT: ddb.endpoint,
    AWS_DEFAULT_REGION: REGION,
    ...(table ? { DYNAMODB_TABLE_NAME: table } : {}),
  };
  return { env, dataDir, store: new LocalStore(dataDir) };
}
async function cli(argv: string[], env: Record<string, string>) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await main(argv, env, { stdout: (t) => stdout.push(t), stderr: (t) => stderr.push(t) });
  return { code, stdout: stdout.join('\n'), stderr: stderr.join('\n') };
}

/**
 * `real`, stopped after `pages` pages (a crash, a timeout): the next page read throws "interrupted". `onPage`
 * sees every page read, and whether it was handed on.
 */
function stoppedAfter(
  real: DynamoTableReader,
  pages: number,
  onPage: (page: { consumedCapacity?: number }, kept: boolean) => void = () => {},
): SourceReader {
  let read = 0;
  return {
    source: 'dynamodb',
    location: real.location,
    async *pages(tenant, day, from) {
      for await (const page of real.pages(tenant, day, from)) {
        const kept = ++read <= pages;
        onPage(page, kept);
        if (!kept) throw new Error('interrupted');
        yield page;
      }
    },
  };
}

describe('backfill --source dynamodb from DynamoDB Local', () => {
  it('plans a Query on the tenant + created-time index when there is one, else a parallel Scan', async () => {
    const options = { client: dynamo, maxRcu: 1000 };
    expect(await new DynamoTableReader({ ...options, table: 'indexed' }).tablePlan()).toStrictEqual({
      kind: 'query',
      index: 'byTenantCreated',
      tenantKey: 'tenantId',
      createdKey: 'createdAt',
      createdType: 'S',
    });
    expect(await new DynamoTableReader({ ...options, table: 'plain', segments: 3 }).tablePlan()).toStrictEqual({
      kind: 'scan',
      segments: 3,
    });
  });

  for (const table of ['indexed', 'plain']) {
    it(`CLI (${table}): exact rows after compaction, a version captured after the read wins, quarantine is loud`, async () => {
      const { env, store } = lake(table);
      // A version the stream captured after the backfill's read beats the backfilled one (it is newer).
      const captured = join(dir.path, `captured-${table}.json`);
      const arn = 'arn:aws:dynamodb:ap-northeast-1:000000000000:table/messages/stream/2025-08-01T00:00:00.000';
      await writeFile(
        captured,
        JSON.stringify({
          Records: [
            {
              eventName: 'MODIFY',
              eventSourceARN: arn,
              dynamodb: {
                SequenceNumber: '4100000000000000000001',
                NewImage: marshall({ ...ITEMS[1], content: 'edited (captured)' }),
              },
            },
          ],
        }),
      );
      const backfill = await cli(['backfill', '--source', 'dynamodb', DATE, 't1,t2', '--json'], env);
      expect((await cli(['ingest', '--source', 'dynamodb', captured], env)).code).toBe(0);

      expect(backfill.code, backfill.stderr).toBe(1);
      const summary = JSON.parse(backfill.stdout);
      const quarantineObject = summary.quarantine[0].object;
      expect(summary.quarantine).toStrictEqual([
        {
          reason: 'created_at: invalid time of day in "2025-08-11T25:00:00Z"',
          count: 1,
          example: 'key {"tenantId":"t2","messageId":"n3"}',
          object: quarantineObject,
        },
      ]);
      expect(backfill.stderr.split('\n').slice(-2)).toStrictEqual([
        'quarantined 1 record (1 reason):',
        `  1 × created_at: invalid time of day in "2025-08-11T25:00:00Z" (e.g. key {"tenantId":"t2","messageId":"n3"} in ${quarantineObject})`,
      ]);
      // read: what the Query or Scan returned (a Query widens the day by one each side); matched: t2's day
      expect(backfill.stderr.split('\n').filter((l) => l.startsWith('… t2 '))).toStrictEqual([
        `… t2 2025-08-11: read 3, matched 3, staged 0, ${table === 'indexed' ? 0.5 : 1} RCU`,
      ]);
      expect(
        summary.results.map((r: Record<string, unknown>) => [r.tenant, r.status, r.staged, r.quarantined, r.objects]),
      ).toStrictEqual([
        ['t1', 'ok', 3, 0, ['staging/messages/tenant_id=t1/dt=2025-08-11/backfill-dynamodb-2025-08-11-t1-p00001_0_0.ndjson.gz']],
        ['t2', 'ok', 2, 1, ['staging/messages/tenant_id=t2/dt=2025-08-11/backfill-dynamodb-2025-08-11-t2-p00001_0_0.ndjson.gz']],
      ]);
      expect(summary.days).toStrictEqual([
        { tenant: 't1', dt: DATE },
        { tenant: 't2', dt: DATE },
      ]);
      expect(backfill.stderr.split('\n').slice(-4, -2)).toStrictEqual([
        'staged 2 tenant-days: t1 2025-08-11, t2 2025-08-11',
        '  compact them with: npx makoto-lake compact 2025-08-11 t1,t2',
      ]);
      expect((await cli(['compact', DATE, 't1,t2'], env)).code).toBe(0);
      expect(await readLake(store)).toStrictEqual(
        EXPECTED().map((r) =>
          r.message_id === 'm1' ? { ...r, content: 'edited (captured)', source_seq: '4100000000000000000001' } : r,
        ),
      );
      expect(await listAll(store, 'checkpoints/')).toStrictEqual([]);
    });
  }

  it('a FIELD_MAPPING that matches no item: every item is quarantined once with its key, exit 1, nothing staged', async () => {
    const { env, store } = lake('plain');
    const backfill = await cli(['backfill', '--source', 'dynamodb', DATE, 't1,t2', '--json'], {
      ...env,
      FIELD_MAPPING: '{"tenant_id":"org"}',
    });
    expect(backfill.code).toBe(1);
    const summary = JSON.parse(backfill.stdout);
    const records = await quarantined(store);
    const first = records[0]?.raw as Record<string, unknown>;
    expect(summary.quarantine).toStrictEqual([
      {
        reason: 'no tenant id (looked for org)',
        count: ITEMS.length,
        example: `key ${JSON.stringify({ tenantId: first.tenantId, messageId: first.messageId })}`,
        object: records[0]?.object,
      },
    ]);
    expect(records.map((r) => [r.reason, (r.raw as Record<string, unknown>).messageId]).sort()).toStrictEqual(
      ITEMS.map((i) => ['no tenant id (looked for org)', i.messageId]).sort(),
    );
    // only the first tenant's pass reads them, so each is counted once
    expect(
      summary.results.map((r: Record<string, unknown>) => [
        r.tenant,
        r.status,
        r.read,
        r.matched,
        r.noTenant,
        r.staged,
        r.quarantined,
        r.objects,
      ]),
    ).toStrictEqual([
      ['t1', 'ok', ITEMS.length, 0, ITEMS.length, 0, ITEMS.length, []],
      ['t2', 'ok', 0, 0, 0, 0, 0, []],
    ]);
    const lines = backfill.stderr.split('\n');
    expect(lines.filter((l) => /^[…✓✗] /.test(l)).sort()).toStrictEqual([
      `… t1 2025-08-11: read 9, matched 0, staged 0, 9 matched no tenant (quarantined), 1 RCU`,
      `… t2 2025-08-11: read 0, matched 0, staged 0, 1 RCU`,
      `✓ t1 2025-08-11 read 9, matched 0 → staged 0 in 0 objects, 9 quarantined (9 matched no tenant), 0 outside the day`,
      `✓ t2 2025-08-11 read 0, matched 0 → staged 0 in 0 objects, 0 quarantined, 0 outside the day`,
    ]);
    expect(lines.slice(-2)).toStrictEqual([
      'quarantined 9 records (1 reason):',
      `  9 × no tenant id (looked for org) (e.g. ${summary.quarantine[0].example} in ${records[0]?.object})`,
    ]);
    expect(await listAll(store, 'staging/')).toStrictEqual([]);
    expect(summary.days).toStrictEqual([]);
  });

  it('resumes after an interruption from its checkpoint, and bounds the read rate', async () => {
    const { store } = lake();
    const sleeps: number[] = [];
    let clock = 0;
    const reader = () =>
      new DynamoTableReader({
        table: 'plain',
        client: dynamo,
        segments: 2,
        pageSize: 1,
        maxRcu: 2,
        now: () => clock,
        sleep: async (ms) => {
          sleeps.push(ms);
          clock += ms;
        },
      });
    // The first run dies after its third page (a crash, a timeout): pages 1-3 are staged and checkpointed.
    let firstCost = 0;
    let checkpointedCost = 0;
    const interrupted = stoppedAfter(reader(), 3, (page, kept) => {
      firstCost += page.consumedCapacity ?? 0;
      if (kept) checkpointedCost += page.consumedCapacity ?? 0;
    });
    const first = await runBackfill({ store, reader: interrupted, date: DATE, tenants: ['t1'], recordsPerObject: 1 });
    expect(first.results.map((r) => [r.status, r.error])).toStrictEqual([['failed', 'interrupted']]);
    const checkpoint = await listAll(store, 'checkpoints/');
    expect(checkpoint.map((o) => o.key)).toStrictEqual([
      'checkpoints/backfill/source=dynamodb/tenant_id=t1/dt=2025-08-11/checkpoint.json',
    ]);

    const second = await runBackfill({ store, reader: reader(), date: DATE, tenants: ['t1'], recordsPerObject: 1 });
    const [result] = second.results;
    expect([result?.status, result?.resumedAfterObject, result?.staged, result?.objects.length]).toStrictEqual([
      'ok',
      first.results[0]?.objects.length,
      3,
      3,
    ]);
    expect(await listAll(store, 'checkpoints/')).toStrictEqual([]);
    const { env } = { env: { DATA_DIR: store.root, TEMP_DIR: dir.path, DUCKDB_THREADS: '1' } };
    expect((await cli(['compact', DATE, 't1'], env)).code).toBe(0);
    expect(await readLake(store)).toStrictEqual([row('m1'), row('m2'), row('m3')]);
    // Every request reported its ConsumedCapacity (the resumed run carries the checkpointed part on);
    // at 2 RCU a second the readers waited exactly as long as what they consumed allows.
    const resumedCost = (result?.consumedCapacity ?? 0) - checkpointedCost;
    expect(firstCost).toBeGreaterThan(0);
    expect(resumedCost).toBeGreaterThan(0);
    expect(Math.round(sleeps.reduce((a, b) => a + b, 0))).toBe(Math.round(((firstCost + resumedCost) / 2) * 1000));
  });
  it('--restart starts over: the checkpoint is ignored, the day read again from the start, objects of the stopped run replaced', async () => {
    const { env, store } = lake('plain');
    // as the resume test above: it dies after its third page, with pages 1-3 staged and checkpointed
    const interrupted = stoppedAfter(new DynamoTableReader({ table: 'plain', client: dynamo, segments: 2, pageSize: 1 }), 3);
    const first = await runBackfill({ store, reader: interrupted, date: DATE, tenants: ['t1'], recordsPerObject: 1 });
    expect(first.results.map((r) => r.status)).toStrictEqual(['failed']);
    const stagingNames = async () => (await listAll(store, 'staging/')).map((o) => o.key.split('/').at(-1));
    // what the stopped run staged (pages of one record each; how many of its 3 pages held a t1 record of the day
    // depends on the segments' interleaving) and its checkpoint
    const stopped = await stagingNames();
    expect(stopped.length).toBeGreaterThan(0);
    expect(stopped).toStrictEqual(stopped.map((_, i) => `backfill-dynamodb-${DATE}-t1-p0000${i + 1}_0_0.ndjson.gz`));
    expect((await listAll(store, 'checkpoints/')).map((o) => o.key)).toStrictEqual([
      `checkpoints/backfill/source=dynamodb/tenant_id=t1/dt=${DATE}/checkpoint.json`,
    ]);

    const restarted = await cli(['backfill', '--source', 'dynamodb', DATE, 't1', '--restart'], env);
    expect(restarted.code, restarted.stderr).toBe(0);
    expect(restarted.stderr.split('\n').filter((l) => l.startsWith('✓'))).toStrictEqual([
      `✓ t1 ${DATE} read 5, matched 3 → staged 3 in 1 objects, 0 quarantined, 2 outside the day`,
    ]);
    expect(await listAll(store, 'checkpoints/')).toStrictEqual([]);
    expect(await stagingNames()).toStrictEqual([`backfill-dynamodb-${DATE}-t1-p00001_0_0.ndjson.gz`]);
    expect((await cli(['compact', DATE, 't1'], env)).code).toBe(0);
    expect(await readLake(store)).toStrictEqual([row('m1'), row('m2'), row('m3')]);
  });
});

describe('backfill --source dynamodb --from-export (DynamoDB export to S3, documented layout)', () => {
  /** Writes one export as DynamoDB does: manifest-summary.json, manifest-files.json, data/*.json.gz. */
  async function writeExport(
    root: string,
    prefix: string,
    exportId: string,
    type: 'FULL_EXPORT' | 'INCREMENTAL_EXPORT',
    exportTime: string,
    lines: Record<string, unknown>[][],
  ) {
    const folder = `${prefix}/AWSDynamoDB/${exportId}`;
    const files = lines.map((_, i) => `${folder}/data/file${i}.json.gz`);
    const put = async (key: string, body: Buffer | string) => {
      await mkdir(dirname(join(root, key)), { recursive: true });
      await writeFile(join(root, key), body);
    };
    for (const [i, key] of files.entries()) {
      await put(key, gzipSync(`${(lines[i] ?? []).map((l) => JSON.stringify(l)).join('\n')}\n`));
    }
    await put(
      `${folder}/manifest-files.json`,
      `${files.map((key, i) => JSON.stringify({ itemCount: lines[i]?.length, md5Checksum: 'x', etag: 'y', dataFileS3Key: key })).join('\n')}\n`,
    );
    await put(
      `${folder}/manifest-summary.json`,
      JSON.stringify({
        version: type === 'FULL_EXPORT' ? '2020-06-30' : '2023-08-01',
        exportArn: `arn:aws:dynamodb:ap-northeast-1:000000000000:table/messages/export/${exportId}`,
        startTime: exportTime,
        endTime: exportTime,
        tableArn: 'arn:aws:dynamodb:ap-northeast-1:000000000000:table/messages',
        tableId: '12345a12-abcd-123a-ab12-1234abc12345',
        exportTime,
        s3Bucket: 'lake',
        s3Prefix: prefix,
        s3SseAlgorithm: 'AES256',
        manifestFilesS3Key: `${folder}/manifest-files.json`,
        billedSizeBytes: 0,
        itemCount: lines.flat().length,
        outputFormat: 'DYNAMODB_JSON',
        exportType: type,
      }),
    );
    await put(`${folder}/_started`, '');
  }
  const dynamoJson = (item: Record<string, unknown>) => marshall(item);
  const micros = (iso: string) => ({ N: String(Date.parse(iso) * 1000) });

  it('full export + incremental export: exact rows after compaction (latest wins, deletes applied, keys-only delete quarantined)', async () => {
    const { env, dataDir, store } = lake();
    const byId = (id: string) => ITEMS.find((i) => i.messageId === id) as Record<string, unknown>;
    await writeExport(dataDir, 'exports/messages', '01754900000000-aaaaaaaa', 'FULL_EXPORT', '2025-08-12T00:00:00.000Z', [
      ITEMS.slice(0, 5).map((i) => ({ Item: dynamoJson(i) })),
      ITEMS.slice(5).map((i) => ({ Item: dynamoJson(i) })),
    ]);
    await writeExport(dataDir, 'exports/messages', '01754990000000-bbbbbbbb', 'INCREMENTAL_EXPORT', '2025-08-13T00:00:00.000Z', [
      [
        {
          Metadata: { WriteTimestampMicros: micros('2025-08-12T03:00:00Z') },
          Keys: dynamoJson({ tenantId: 't1', messageId: 'm2' }),
          OldImage: dynamoJson(byId('m2')),
          NewImage: dynamoJson({ ...byId('m2'), content: 'edited later' }),
        },
        {
          Metadata: { WriteTimestampMicros: micros('2025-08-12T04:00:00Z') },
          Keys: dynamoJson({ tenantId: 't2', messageId: 'n2' }),
          OldImage: dynamoJson(byId('n2')),
        },
        {
          Metadata: { WriteTimestampMicros: micros('2025-08-12T05:00:00Z') },
          Keys: dynamoJson({ tenantId: 't1', messageId: 'm3' }),
        },
        {
          Metadata: { WriteTimestampMicros: micros('2025-08-12T06:00:00Z') },
          Keys: dynamoJson({ tenantId: 't2', messageId: 'gone-before' }),
        },
      ],
    ]);

    const backfill = await cli(
      ['backfill', '--source', 'dynamodb', DATE, 't1,t2', '--from-export', 'exports/messages', '--json'],
      env,
    );

    expect(backfill.code).toBe(1);
    const summary = JSON.parse(backfill.stdout);
    expect(summary.quarantine.map((q: Record<string, unknown>) => [q.reason, q.count])).toStrictEqual([
      ['created_at: invalid time of day in "2025-08-11T25:00:00Z"', 1],
      [
        'an incremental-export delete with only Keys (export view type NEW_IMAGE) and no earlier version under the prefix: its day is unknown',
        1,
      ],
    ]);
    expect((await cli(['compact', DATE, 't1,t2'], env)).code).toBe(0);
    expect(await readLake(store)).toStrictEqual([row('m1'), row('m2', { content: 'edited later' }), row('n1')]);

    const missing = await cli(['backfill', '--source', 'dynamodb', DATE, 't1', '--from-export', 'nothing-here'], env);
    expect([missing.code, missing.stderr.split('\n').at(-1)]).toStrictEqual([
      1,
      '✗ t1 2025-08-11 failed: no DynamoDB export under nothing-here/ (looked for AWSDynamoDB/<ExportId>/manifest-summary.json) (run the same command again to resume)',
    ]);
  });

  it('items that match no tenant are quarantined once each, named by file and line; a FIELD_MAPPING that matches nothing quarantines all', async () => {
    const { env, dataDir, store } = lake();
    const orphan = { messageId: 'orphan', createdAt: '2025-08-11T02:00:00Z', content: 'no tenant field' };
    const invalid = { tenantId: 'bad tenant', messageId: 'b1', createdAt: '2025-08-11T02:00:00Z', content: 'invalid tenant id' };
    const exportId = '01754900000000-cccccccc';
    await writeExport(dataDir, 'exports/loud', exportId, 'FULL_EXPORT', '2025-08-12T00:00:00.000Z', [
      ITEMS.slice(0, 5).map((i) => ({ Item: dynamoJson(i) })),
      [...ITEMS.slice(5), orphan, invalid].map((i) => ({ Item: dynamoJson(i) })),
    ]);
    const file = (n: number) => `exports/loud/AWSDynamoDB/${exportId}/data/file${n}.json.gz`;

    const backfill = await cli(
      ['backfill', '--source', 'dynamodb', DATE, 't1,t2', '--from-export', 'exports/loud', '--json'],
      env,
    );
    expect(backfill.code).toBe(1);
    const summary = JSON.parse(backfill.stdout);
    const object = (reason: string) => summary.quarantine.find((q: { reason: string }) => q.reason === reason)?.object;
    expect(summary.quarantine.map((q: Record<string, unknown>) => [q.reason, q.count, q.example])).toStrictEqual([
      ['no tenant id (looked for tenant_id, tenantId)', 1, `${file(1)} line 5`],
      [`tenant id "bad tenant" may contain only letters, digits, '-' and '_'`, 1, `${file(1)} line 6`],
      ['created_at: invalid time of day in "2025-08-11T25:00:00Z"', 1, `${file(1)} line 3`],
    ]);
    expect(object('no tenant id (looked for tenant_id, tenantId)')).toMatch(/-t1-p00001_0_0\.ndjson\.gz$/);
    expect(
      summary.results.map((r: Record<string, unknown>) => [r.tenant, r.read, r.matched, r.noTenant, r.staged, r.quarantined]),
    ).toStrictEqual([
      ['t1', 5, 3, 2, 3, 2],
      ['t2', 3, 3, 0, 2, 1],
    ]);
    expect((await quarantined(store)).map((r) => [r.reason, (r.raw as { Item: unknown }).Item])).toStrictEqual([
      ['no tenant id (looked for tenant_id, tenantId)', dynamoJson(orphan)],
      [`tenant id "bad tenant" may contain only letters, digits, '-' and '_'`, dynamoJson(invalid)],
      ['created_at: invalid time of day in "2025-08-11T25:00:00Z"', dynamoJson(ITEMS[7] as Record<string, unknown>)],
    ]);

    const { env: wrongEnv, store: wrongStore } = lake();
    await writeExport(wrongStore.root, 'exports/loud', exportId, 'FULL_EXPORT', '2025-08-12T00:00:00.000Z', [
      ITEMS.slice(0, 5).map((i) => ({ Item: dynamoJson(i) })),
      [...ITEMS.slice(5), orphan, invalid].map((i) => ({ Item: dynamoJson(i) })),
    ]);
    const wrong = await cli(['backfill', '--source', 'dynamodb', DATE, 't1,t2', '--from-export', 'exports/loud', '--json'], {
      ...wrongEnv,
      FIELD_MAPPING: '{"tenant_id":"org"}',
    });
    expect(wrong.code).toBe(1);
    const wrongSummary = JSON.parse(wrong.stdout);
    expect(wrongSummary.quarantine.map((q: Record<string, unknown>) => [q.reason, q.count, q.example])).toStrictEqual([
      ['no tenant id (looked for org)', 11, `${file(0)} line 1`],
    ]);
    expect(
      wrongSummary.results.map((r: Record<string, unknown>) => [
        r.tenant,
        r.read,
        r.matched,
        r.noTenant,
        r.staged,
        r.quarantined,
      ]),
    ).toStrictEqual([
      ['t1', 11, 0, 11, 0, 11],
      ['t2', 0, 0, 0, 0, 0],
    ]);
    expect((await quarantined(wrongStore)).length).toBe(11);
    expect(await listAll(wrongStore, 'staging/')).toStrictEqual([]);
  });

  it('without DATE, one streamed pass stages every tenant-day the export holds: exact keys, days and rows', async () => {
    const { env, dataDir, store } = lake();
    const days = [
      { tenantId: 't1', messageId: 'd10', createdAt: '2025-08-10T01:00:00Z', content: 'day 10' },
      { tenantId: 't1', messageId: 'd11', createdAt: '2025-08-11T01:00:00Z', content: 'day 11' },
      { tenantId: 't2', messageId: 'e11', createdAt: '2025-08-11T02:00:00Z', content: 'day 11, t2' },
      { tenantId: 't1', messageId: 'd12', createdAt: '2025-08-12T01:00:00Z', content: 'day 12', role: 'user' },
      { tenantId: 't1', messageId: 'x12', createdAt: '2025-08-12T02:00:00Z', content: 'deleted later' },
      { tenantId: 't3', messageId: 'z11', createdAt: '2025-08-11T01:00:00Z', content: 'tenant not asked for' },
    ];
    await writeExport(dataDir, 'exports/days', '01754900000000-dddddddd', 'FULL_EXPORT', '2025-08-13T00:00:00.000Z', [
      days.slice(0, 3).map((i) => ({ Item: dynamoJson(i) })),
      days.slice(3).map((i) => ({ Item: dynamoJson(i) })),
    ]);
    await writeExport(dataDir, 'exports/days', '01754990000000-dddddddd', 'INCREMENTAL_EXPORT', '2025-08-14T00:00:00.000Z', [
      [
        {
          Metadata: { WriteTimestampMicros: micros('2025-08-13T03:00:00Z') },
          Keys: dynamoJson({ tenantId: 't1', messageId: 'd10' }),
          NewImage: dynamoJson({ ...days[0], content: 'day 10, edited' }),
        },
        // keys only (NEW_IMAGE view): the full export's image names its day
        {
          Metadata: { WriteTimestampMicros: micros('2025-08-13T04:00:00Z') },
          Keys: dynamoJson({ tenantId: 't1', messageId: 'x12' }),
        },
      ],
    ]);

    const all = await cli(['backfill', '--source', 'dynamodb', 't1,t2', '--from-export', 'exports/days', '--json'], env);
    expect(all.code, all.stderr).toBe(0);
    const summary = JSON.parse(all.stdout);
    expect(summary.date).toBe('all');
    expect(summary.days).toStrictEqual([
      { tenant: 't1', dt: '2025-08-10' },
      { tenant: 't1', dt: '2025-08-11' },
      { tenant: 't2', dt: '2025-08-11' },
      { tenant: 't1', dt: '2025-08-12' },
    ]);
    expect(
      summary.results.map((r: Record<string, unknown>) => [
        r.tenant,
        r.date,
        r.status,
        r.read,
        r.matched,
        r.staged,
        r.quarantined,
      ]),
    ).toStrictEqual([
      ['t1', '2025-08-10', 'ok', 2, 2, 2, 0],
      ['t1', '2025-08-11', 'ok', 1, 1, 1, 0],
      ['t2', '2025-08-11', 'ok', 1, 1, 1, 0],
      ['t1', '2025-08-12', 'ok', 3, 3, 3, 0],
    ]);
    expect((await listAll(store, 'staging/')).map((o) => o.key.replace(/_[^/]*$/, ''))).toStrictEqual([
      'staging/messages/tenant_id=t1/dt=2025-08-10/backfill-dynamodb-export-20a18e4f-2025-08-10-t1-p00001',
      'staging/messages/tenant_id=t1/dt=2025-08-11/backfill-dynamodb-export-20a18e4f-2025-08-11-t1-p00001',
      'staging/messages/tenant_id=t1/dt=2025-08-12/backfill-dynamodb-export-20a18e4f-2025-08-12-t1-p00001',
      'staging/messages/tenant_id=t2/dt=2025-08-11/backfill-dynamodb-export-20a18e4f-2025-08-11-t2-p00001',
    ]);
    expect(all.stderr).toContain('staged 4 tenant-days: t1 2025-08-10, t1 2025-08-11, t2 2025-08-11, t1 2025-08-12');

    for (const [dt, tenants] of [
      ['2025-08-10', 't1'],
      ['2025-08-11', 't1,t2'],
      ['2025-08-12', 't1'],
    ] as const) {
      const run = await cli(['compact', dt, tenants], env);
      expect(run.code, run.stderr).toBe(0);
    }
    const lakeRowOf = (item: Record<string, unknown>, dt: string, over: Partial<LakeRow> = {}): LakeRow => ({
      tenant_id: item.tenantId as string,
      dt,
      message_id: item.messageId as string,
      conversation_id: null,
      sender_id: null,
      role: (item.role as string) ?? null,
      content: item.content as string,
      created_at: new Date(Date.parse(item.createdAt as string)).toISOString(),
      updated_at: null,
      source: 'dynamodb',
      source_seq: '0',
      attributes: {},
      ...over,
    });
    const [d10, d11, e11, d12] = days as unknown as Record<string, unknown>[] as [
      Record<string, unknown>,
      Record<string, unknown>,
      Record<string, unknown>,
      Record<string, unknown>,
    ];
    expect(await readLake(store)).toStrictEqual([
      lakeRowOf(d10, '2025-08-10', { content: 'day 10, edited' }),
      lakeRowOf(d11, '2025-08-11'),
      lakeRowOf(d12, '2025-08-12'),
      lakeRowOf(e11, '2025-08-11'),
    ]);

    // With DATE: that day only (a re-run replaces its objects).
    const one = await cli(
      ['backfill', '--source', 'dynamodb', '2025-08-11', 't1,t2', '--from-export', 'exports/days', '--json'],
      env,
    );
    expect(one.code, one.stderr).toBe(0);
    expect(JSON.parse(one.stdout).days).toStrictEqual([
      { tenant: 't1', dt: '2025-08-11' },
      { tenant: 't2', dt: '2025-08-11' },
    ]);
  });

  it('stages in bounded batches per tenant-day: objects of recordsPerObject, earlier when too many wait', async () => {
    const { dataDir, store } = lake();
    const items = Array.from({ length: 10 }, (_, i) => ({
      tenantId: i % 2 === 0 ? 't1' : 't2',
      messageId: `b${i}`,
      createdAt: `2025-08-1${i % 3}T01:00:00Z`,
      content: `item ${i}`,
    }));
    await writeExport(dataDir, 'exports/batches', '01754900000000-eeeeeeee', 'FULL_EXPORT', '2025-08-13T00:00:00.000Z', [
      items.map((i) => ({ Item: dynamoJson(i) })),
    ]);
    const summary = await runExportBackfill({
      store,
      reader: new DynamoExportReader(store, 'exports/batches'),
      tenants: ['t1', 't2'],
      recordsPerObject: 2,
      maxPending: 3,
    });
    expect(summary.ok).toBe(true);
    expect(summary.results.map((r) => [r.tenant, r.date, r.staged, r.objects.length])).toStrictEqual([
      ['t1', '2025-08-10', 2, 1],
      ['t2', '2025-08-10', 2, 2],
      ['t1', '2025-08-11', 1, 1],
      ['t2', '2025-08-11', 2, 1],
      ['t1', '2025-08-12', 2, 2],
      ['t2', '2025-08-12', 1, 1],
    ]);
    expect((await listAll(store, 'staging/')).length).toBe(8);
  });
});

describe('order by time (issue 21): a backfilled version against captured ones and earlier backfills', () => {
  const ARN = 'arn:aws:dynamodb:ap-northeast-1:000000000000:table/messages/stream/2025-08-01T00:00:00.000';
  const E1 = { tenantId: 't1', messageId: 'e1', createdAt: '2025-08-11T01:00:00Z', content: 'as inserted', role: 'user' };
  const E2 = { tenantId: 't1', messageId: 'e2', createdAt: '2025-08-11T02:00:00Z', content: 'stays', role: 'user' };
  const edited = { ...E1, content: 'edited (its stream batch was lost)' };

  /** The lake row of one of these items at a feed position (`0`: backfilled). */
  const lakeRow = (item: typeof E1, sourceSeq: string): LakeRow => ({
    tenant_id: 't1',
    dt: DATE,
    message_id: item.messageId,
    conversation_id: null,
    sender_id: null,
    role: item.role,
    content: item.content,
    created_at: new Date(Date.parse(item.createdAt)).toISOString(),
    updated_at: null,
    source: 'dynamodb',
    source_seq: sourceSeq,
    attributes: {},
  });

  /** Stages stream records through `ingest` (as the stream Lambda does: captured now). */
  async function capture(env: Record<string, string>, name: string, records: [string, string, typeof E1][]) {
    const file = join(dir.path, `${name}.json`);
    await writeFile(
      file,
      JSON.stringify({
        Records: records.map(([eventName, seq, item]) => ({
          eventName,
          eventSourceARN: ARN,
          dynamodb: { SequenceNumber: seq, NewImage: marshall(item) },
        })),
      }),
    );
    expect((await cli(['ingest', '--source', 'dynamodb', file], env)).code).toBe(0);
  }

  /** `compact DATE t1 --json` (exit 0): the tenant-day's superseded, duplicate, deleted and written counts. */
  async function compact(env: Record<string, string>) {
    const run = await cli(['compact', DATE, 't1', '--json'], env);
    expect(run.code, run.stderr).toBe(0);
    const [t] = JSON.parse(run.stdout).tenants as Record<string, unknown>[];
    return [t?.versions_superseded, t?.duplicates_removed, t?.deletes_applied, t?.rows_written];
  }

  /** A table holding only `items`. */
  const table = (name: string, items: Record<string, unknown>[]) => createTable(name, false, items);

  it('table backfill: a newer image than the captured INSERT wins; a version captured after the read wins over it', async () => {
    const { env, store } = lake('timed-edit');
    await table('timed-edit', [E1, E2]);
    await capture(env, 'inserts', [
      ['INSERT', '4200000000000000000001', E1],
      ['INSERT', '4200000000000000000002', E2],
    ]);
    expect(await compact(env)).toStrictEqual([0, 0, 0, 2]);
    // The edit's stream batch is lost: only the table has it.
    await dynamo.send(new PutItemCommand({ TableName: 'timed-edit', Item: marshall(edited) }));

    expect((await cli(['backfill', '--source', 'dynamodb', DATE, 't1'], env)).code).toBe(0);
    // the read started after both captures: its images supersede the published captured rows
    expect(await compact(env)).toStrictEqual([2, 2, 0, 2]);
    expect(await readLake(store)).toStrictEqual([lakeRow(edited, '0'), lakeRow(E2, '0')]);

    // A change captured after the read is newer than the backfilled image.
    const again = { ...E1, content: 'edited again (captured)' };
    await capture(env, 'modify', [['MODIFY', '4200000000000000000003', again]]);
    expect(await compact(env)).toStrictEqual([3, 2, 0, 2]);
    expect(await readLake(store)).toStrictEqual([lakeRow(again, '4200000000000000000003'), lakeRow(E2, '0')]);
  });

  it('export: an incremental export written after the capture applies its edit and its delete; one written before loses', async () => {
    const { env, dataDir, store } = lake();
    await capture(env, 'inserts-export', [
      ['INSERT', '4300000000000000000001', E1],
      ['INSERT', '4300000000000000000002', E2],
    ]);
    expect(await compact(env)).toStrictEqual([0, 0, 0, 2]);
    const captured = [lakeRow(E1, '4300000000000000000001'), lakeRow(E2, '4300000000000000000002')];

    // Written before the capture (2025-08-12, the capture ran now): the captured versions are newer.
    await writeIncremental(dataDir, 'exports/early', '01754990000000-eeeeeeee', '2025-08-12T06:00:00.000Z', [
      { at: '2025-08-12T03:00:00Z', old: E1, new: { ...E1, content: 'older than the capture' } },
      { at: '2025-08-12T04:00:00Z', old: E2 },
    ]);
    const early = await cli(['backfill', '--source', 'dynamodb', DATE, 't1', '--from-export', 'exports/early'], env);
    expect(early.code, early.stderr).toBe(0);
    expect(await compact(env)).toStrictEqual([2, 2, 0, 2]);
    expect(await readLake(store)).toStrictEqual(captured);

    // Written after the capture: the edit and the user delete the lost stream batch carried.
    const later = (s: number) => new Date(Date.now() + s * 1000).toISOString();
    await writeIncremental(dataDir, 'exports/late', '01754990000000-ffffffff', later(3600), [
      { at: later(60), old: E1, new: edited },
      { at: later(120), old: E2 },
    ]);
    const late = await cli(['backfill', '--source', 'dynamodb', DATE, 't1', '--from-export', 'exports/late'], env);
    expect(late.code, late.stderr).toBe(0);
    // the early export's objects stay staged (another PREFIX never replaces them): superseded again
    expect(await compact(env)).toStrictEqual([4, 2, 1, 1]);
    expect(await readLake(store)).toStrictEqual([lakeRow(edited, '0')]);
  });

  it('a re-run corrects an earlier compacted backfill: a newer table image, then a newer export delete', async () => {
    const { env, dataDir, store } = lake('timed-rerun');
    await table('timed-rerun', [E1, E2]);
    expect((await cli(['backfill', '--source', 'dynamodb', DATE, 't1'], env)).code).toBe(0);
    expect(await compact(env)).toStrictEqual([0, 0, 0, 2]);
    expect(await readLake(store)).toStrictEqual([lakeRow(E1, '0'), lakeRow(E2, '0')]);

    await dynamo.send(new PutItemCommand({ TableName: 'timed-rerun', Item: marshall(edited) }));
    expect((await cli(['backfill', '--source', 'dynamodb', DATE, 't1'], env)).code).toBe(0);
    expect(await compact(env)).toStrictEqual([2, 0, 0, 2]);
    expect(await readLake(store)).toStrictEqual([lakeRow(edited, '0'), lakeRow(E2, '0')]);

    // A table read cannot see a delete; an incremental export (written after both reads) can.
    const later = (s: number) => new Date(Date.now() + s * 1000).toISOString();
    await writeIncremental(dataDir, 'exports/rerun', '01754990000000-abababab', later(3600), [{ at: later(60), old: E2 }]);
    expect((await cli(['backfill', '--source', 'dynamodb', DATE, 't1', '--from-export', 'exports/rerun'], env)).code).toBe(0);
    // the table backfill's objects stay staged (an export backfill never replaces them): duplicates of the published rows
    expect(await compact(env)).toStrictEqual([1, 2, 1, 1]);
    expect(await readLake(store)).toStrictEqual([lakeRow(edited, '0')]);

    // The same export staged again is the same version: a duplicate, nothing changes (the table backfill's
    // staged E2 is superseded by the delete again, its E1 a duplicate of the published row).
    expect((await cli(['backfill', '--source', 'dynamodb', DATE, 't1', '--from-export', 'exports/rerun'], env)).code).toBe(0);
    expect(await compact(env)).toStrictEqual([1, 2, 1, 1]);
    expect(await readLake(store)).toStrictEqual([lakeRow(edited, '0')]);
  });

  /** One incremental export (NEW_AND_OLD_IMAGES) in the documented layout: no `new` is a delete. */
  async function writeIncremental(
    root: string,
    prefix: string,
    exportId: string,
    exportTime: string,
    writes: { at: string; old: typeof E1; new?: typeof E1 }[],
  ) {
    const folder = `${prefix}/AWSDynamoDB/${exportId}`;
    const put = async (key: string, body: Buffer | string) => {
      await mkdir(dirname(join(root, key)), { recursive: true });
      await writeFile(join(root, key), body);
    };
    const lines = writes.map((w) => ({
      Metadata: { WriteTimestampMicros: { N: String(Date.parse(w.at) * 1000) } },
      Keys: marshall({ tenantId: w.old.tenantId, messageId: w.old.messageId }),
      OldImage: marshall(w.old),
      ...(w.new ? { NewImage: marshall(w.new) } : {}),
    }));
    await put(`${folder}/data/file0.json.gz`, gzipSync(`${lines.map((l) => JSON.stringify(l)).join('\n')}\n`));
    await put(
      `${folder}/manifest-files.json`,
      `${JSON.stringify({ itemCount: lines.length, dataFileS3Key: `${folder}/data/file0.json.gz` })}\n`,
    );
    await put(
      `${folder}/manifest-summary.json`,
      JSON.stringify({ exportTime, exportToTime: exportTime, outputFormat: 'DYNAMODB_JSON', exportType: 'INCREMENTAL_EXPORT' }),
    );
  }
});
