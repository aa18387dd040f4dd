import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DeleteItemCommand, DynamoDBClient, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../compactor/cli.js';
import { handler as compactorHandler } from '../../compactor/lambda.js';
import { analyticsPrefix } from '../../src/core/staging/layout.js';
import { readManifest } from '../../src/lake/manifest.js';
import { DeltaTable, partitionFiles, tableKey } from '../../src/lake/table/deltaTable.js';
import { listAll } from '../../src/ports/store/ObjectStore.js';
import { S3Store } from '../../stores/s3/S3Store.js';
import { handler as streamHandler } from '../../stream-ingest/handler.js';
import type { RunningServer } from '../../tools/servers.js';
import { restoreEnvironment } from '../kit/environment.js';
import { chatItem, dynamodbRecord } from '../kit/factories.js';
import { readParquetRows } from '../kit/readParquet.js';
import { tempDir } from '../kit/tempDir.js';
import { streamEvent as asStreamEvent, createMessagesTable, LOCAL_CREDENTIALS, readStream } from './support/dynamoStream.js';
import { lambdaEnvironment, REGION, type S3rver, startDynamoDbLocal, startS3rver } from './support/localAws.js';

describe('AWS end to end: DynamoDB Local → stream → ingest Lambda → s3rver → compactor Lambda → Parquet', () => {
  let ddb: RunningServer & { endpoint: string };
  let s3: S3rver;
  let work: Awaited<ReturnType<typeof tempDir>>;
  const saved = { ...process.env };
  /** The environment a deployed function would have, pointed at the local stand-ins. */
  const lambdaEnv = () => ({ ...lambdaEnvironment(s3, work.path), TENANT_ID: 'acme,beta' });

  beforeAll(async () => {
    [ddb, s3, work] = await Promise.all([startDynamoDbLocal(), startS3rver(), tempDir()]);
    await s3.createBucket('lake');
    await s3.createBucket('cli');
    Object.assign(process.env, lambdaEnv());
  });
  afterAll(async () => {
    restoreEnvironment(saved);
    await ddb?.stop();
    await s3?.stop();
    await work?.cleanup();
  });

  it('turns a day of table writes into exactly the expected Parquet rows', async () => {
    const dynamo = new DynamoDBClient({ endpoint: ddb.endpoint, region: REGION, credentials: LOCAL_CREDENTIALS });
    const streamArn = await createMessagesTable(dynamo, 'makoto-messages');
    const put = (item: Record<string, unknown>) =>
      dynamo.send(new PutItemCommand({ TableName: 'makoto-messages', Item: marshall(item) }));
    await put({
      tenantId: 'acme',
      messageId: 'a1',
      conversationId: 'c1',
      senderId: 'u1',
      role: 'user',
      content: 'おはよう☀️',
      createdAt: '2025-08-10T15:00:00.000Z',
    });
    await put({
      tenantId: 'acme',
      messageId: 'a2',
      conversationId: 'c1',
      senderId: 'makoto-ai',
      role: 'assistant',
      content: 'おはようございます',
      createdAt: '2025-08-10T15:00:01.500Z',
      tokens: 12,
    });
    await put({
      tenantId: 'acme',
      messageId: 'a3',
      conversationId: 'c1',
      senderId: 'u1',
      role: 'user',
      content: '消します',
      createdAt: '2025-08-11T02:00:00.000Z',
    });
    await put({
      tenantId: 'acme',
      messageId: 'a0',
      conversationId: 'c0',
      senderId: 'u1',
      role: 'user',
      content: 'previous day',
      createdAt: '2025-08-10T14:59:59.999Z',
    });
    await put({
      tenantId: 'beta',
      messageId: 'b1',
      conversationId: 'c9',
      senderId: 'u9',
      role: 'user',
      content: 'last second',
      createdAt: '2025-08-11T14:59:59.999Z',
    });
    await dynamo.send(
      new UpdateItemCommand({
        TableName: 'makoto-messages',
        Key: marshall({ tenantId: 'acme', messageId: 'a1' }),
        UpdateExpression: 'SET content = :c, updatedAt = :u',
        ExpressionAttributeValues: marshall({ ':c': 'おはよう☀️（編集済み）', ':u': '2025-08-10T15:10:00.000Z' }),
      }),
    );
    await dynamo.send(
      new DeleteItemCommand({ TableName: 'makoto-messages', Key: marshall({ tenantId: 'acme', messageId: 'a3' }) }),
    );
    dynamo.destroy();
    const records = await readStream(ddb.endpoint, streamArn);
    expect(records.length).toBe(7);
    const event = asStreamEvent(records, streamArn);
    const seq = (i: number) => String(event.Records[i]?.dynamodb?.SequenceNumber).replace(/^0+(?=\d)/, '');

    // Lambda delivers the shard in two batches.
    const t0 = Date.now();
    expect(await streamHandler({ Records: event.Records.slice(0, 4) })).toStrictEqual({ batchItemFailures: [] });
    expect(await streamHandler({ Records: event.Records.slice(4) })).toStrictEqual({ batchItemFailures: [] });
    const t1 = Date.now();

    const summary = await compactorHandler({ target_date: '2025-08-11' });

    expect(summary).toMatchObject({
      target_date: '2025-08-11',
      ok: true,
      totals: { tenants: 2, failed: 0, rows_read: 6, rows_written: 3, rows_rejected: 0 },
    });
    expect(
      summary.tenants.map((t) => [t.tenant_id, t.status, t.rows_read, t.versions_superseded, t.deletes_applied, t.rows_written]),
    ).toStrictEqual([
      ['acme', 'compacted', 5, 2, 1, 2],
      ['beta', 'compacted', 1, 0, 0, 1],
    ]);

    const store = new S3Store({ bucket: 'lake', client: s3.client() });
    const rows: Record<string, unknown>[] = [];
    for (const tenant of ['acme', 'beta']) {
      // the one file the table's current version names for the partition, read from the log in the bucket
      const parts = await listAll(store, analyticsPrefix(tenant, '2025-08-11'));
      const runId = summary.tenants.find((t) => t.tenant_id === tenant)?.run_id;
      expect(parts.map((p) => p.key)).toStrictEqual([
        `analytics/messages/tenant_id=${tenant}/dt=2025-08-11/part-0-${runId}.parquet`,
      ]);
      expect(
        partitionFiles(await new DeltaTable(store, {}).snapshot(), tenant, '2025-08-11').map((a) => tableKey(a.path)),
      ).toStrictEqual(parts.map((p) => p.key));
      const file = join(work.path, `${tenant}.parquet`);
      await store.getToFile(parts[0]?.key as string, file);
      rows.push(...(await readParquetRows(file, { orderBy: 'message_id' })).map((r) => ({ tenant, ...r })));
    }
    for (const row of rows) {
      const at = Date.parse(row.ingested_at as string);
      expect(at >= t0 - 1 && at <= t1 + 1, `ingested_at ${row.ingested_at}`).toBe(true);
      delete row.ingested_at;
    }
    expect(rows).toStrictEqual([
      {
        tenant: 'acme',
        message_id: 'a1',
        conversation_id: 'c1',
        sender_id: 'u1',
        role: 'user',
        content: 'おはよう☀️（編集済み）',
        created_at: '2025-08-10T15:00:00.000Z',
        updated_at: '2025-08-10T15:10:00.000Z',
        attributes: '{}',
        source: 'dynamodb',
        source_seq: seq(5),
      },
      {
        tenant: 'acme',
        message_id: 'a2',
        conversation_id: 'c1',
        sender_id: 'makoto-ai',
        role: 'assistant',
        content: 'おはようございます',
        created_at: '2025-08-10T15:00:01.500Z',
        updated_at: null,
        attributes: '{"tokens":12}',
        source: 'dynamodb',
        source_seq: seq(1),
      },
      {
        tenant: 'beta',
        message_id: 'b1',
        conversation_id: 'c9',
        sender_id: 'u9',
        role: 'user',
        content: 'last second',
        created_at: '2025-08-11T14:59:59.999Z',
        updated_at: null,
        attributes: '{}',
        source: 'dynamodb',
        source_seq: seq(4),
      },
    ]);
    expect(existsSync(join(work.path, 'data-must-stay-empty'))).toBe(false);
  });

  it('`makoto-lake ingest` and `compact` with S3_BUCKET_NAME read and write the bucket, and nothing lands in DATA_DIR', async () => {
    const env = { ...lambdaEnv(), S3_BUCKET_NAME: 'cli', AWS_LAMBDA_FUNCTION_MEMORY_SIZE: undefined, DUCKDB_THREADS: '1' };
    const file = join(work.path, 'event.json');
    await writeFile(
      file,
      JSON.stringify({
        Records: [
          dynamodbRecord({ seq: 10, item: chatItem({ messageId: 'm1', content: 'one' }) }),
          dynamodbRecord({ seq: 11, item: chatItem({ messageId: 'm2', content: 'two' }) }),
          dynamodbRecord({ seq: 12, item: chatItem({ messageId: 'm2', content: 'two' }), event: 'REMOVE' }),
        ],
      }),
    );
    const output: string[] = [];
    const out = { stdout: (t: string) => output.push(t), stderr: (t: string) => output.push(t) };

    expect(await main(['ingest', '--source', 'dynamodb', file], env, out)).toBe(0);
    expect(await main(['compact', '2025-08-11', 'acme', '--json'], env, out)).toBe(0);

    const store = new S3Store({ bucket: 'cli', client: s3.client() });
    const keys = (await listAll(store, '')).map((o) => o.key);
    const run = (await readManifest(store, 'acme', '2025-08-11'))?.run_id;
    expect(keys.filter((k) => !k.startsWith('staging/'))).toStrictEqual([
      // the table's first commit, naming the part (and, in its tags, the run manifest and remembered deletes)
      'analytics/messages/_delta_log/00000000000000000000.json',
      `analytics/messages/tenant_id=acme/dt=2025-08-11/part-0-${run}.parquet`,
      `manifests/messages/tenant_id=acme/dt=2025-08-11/${run}.json`,
      // the user delete of m2, remembered outside analytics/ (the manifest names it)
      (await readManifest(store, 'acme', '2025-08-11'))?.tombstones?.key,
    ]);
    expect(keys.filter((k) => k.startsWith('tombstones/'))).toStrictEqual([
      expect.stringMatching(/^tombstones\/messages\/tenant_id=acme\/dt=2025-08-11\/[^/]+\.parquet$/),
    ]);
    expect(keys.filter((k) => k.startsWith('staging/')).length).toBe(1);
    expect(output.join('\n')).toContain('in s3://cli');
    const parquet = join(work.path, 'cli.parquet');
    await store.getToFile(`analytics/messages/tenant_id=acme/dt=2025-08-11/part-0-${run}.parquet`, parquet);
    expect((await readParquetRows(parquet, { orderBy: 'message_id' })).map((r) => [r.message_id, r.content])).toStrictEqual([
      ['m1', 'one'],
    ]);
    expect(existsSync(env.DATA_DIR)).toBe(false);
  });
});
