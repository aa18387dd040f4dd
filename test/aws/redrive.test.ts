import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { DeleteItemCommand, DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient, type _Record as StreamRecord } from '@aws-sdk/client-dynamodb-streams';
import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { marshall } from '@aws-sdk/util-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../compactor/cli.js';
import { dynamodbBatchId } from '../../src/capture/ingest/sources.js';
import { runRedrive } from '../../src/capture/redrive/runRedrive.js';
import { loadConfig } from '../../src/core/config.js';
import { offboardedReason } from '../../src/lake/offboarded.js';
import { TransientStoreError } from '../../src/ports/store/errors.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { getBytes, listAll } from '../../src/ports/store/ObjectStore.js';
import { DynamoStreamBatchReader } from '../../stores/dynamodb/DynamoStreamBatchReader.js';
import { SqsFailureQueue } from '../../stores/sqs/SqsFailureQueue.js';
import { ingestStreamEvent } from '../../stream-ingest/handler.js';
import { redriveSqsEvent } from '../../stream-ingest/redrive.js';
import { quietTelemetry } from '../../tools/quietTelemetry.js';
import type { RunningServer } from '../../tools/servers.js';
import { restoreEnvironment } from '../kit/environment.js';
import { readLake } from '../kit/readParquet.js';
import { tempDir } from '../kit/tempDir.js';
import { createMessagesTable, LOCAL_CREDENTIALS, readStream, streamEvent, streamShards } from './support/dynamoStream.js';
import { REGION, startDynamoDbLocal } from './support/localAws.js';
import { startSqsStandIn } from './support/sqsStandIn.js';

const NOW = Date.parse('2025-08-11T05:00:00.000Z');
const TTL_IDENTITY = { PrincipalId: 'dynamodb.amazonaws.com', Type: 'Service' };

let ddb: RunningServer & { endpoint: string };
let dynamo: DynamoDBClient;
let streams: DynamoDBStreamsClient;
let dir: { path: string; cleanup: () => Promise<void> };
let tables = 0;

const saved = { ...process.env };
beforeAll(async () => {
  // The CLI builds its clients with the SDK's default credential chain, as in production.
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_EC2_METADATA_DISABLED: 'true' });
  ddb = await startDynamoDbLocal();
  dynamo = new DynamoDBClient({ endpoint: ddb.endpoint, region: REGION, credentials: LOCAL_CREDENTIALS });
  streams = new DynamoDBStreamsClient({ endpoint: ddb.endpoint, region: REGION, credentials: LOCAL_CREDENTIALS });
  dir = await tempDir();
});
afterAll(async () => {
  restoreEnvironment(saved);
  dynamo?.destroy();
  streams?.destroy();
  await ddb?.stop();
  await dir?.cleanup();
});

/** A fresh table, its stream and a fresh DATA_DIR store. */
async function fresh() {
  tables++;
  const table = `redrive-${tables}`;
  const streamArn = await createMessagesTable(dynamo, table);
  const dataDir = join(dir.path, `data-${tables}`);
  const env = {
    DATA_DIR: dataDir,
    TEMP_DIR: dir.path,
    DUCKDB_THREADS: '1',
    DYNAMODB_ENDPOINT: ddb.endpoint,
    AWS_DEFAULT_REGION: REGION,
  };
  return { table, streamArn, store: new LocalStore(dataDir), env };
}
const put = (table: string, item: Record<string, unknown>) =>
  dynamo.send(new PutItemCommand({ TableName: table, Item: marshall(item) }));
const msg = (tenantId: string, messageId: string, content: string, createdAt = '2025-08-11T03:00:00.000Z') => ({
  tenantId,
  messageId,
  content,
  createdAt,
});

/** The on-failure record Lambda sends to the queue for a batch (docs: DDBStreamBatchInfo). */
function failureMessage(streamArn: string, shardId: string, records: readonly StreamRecord[]) {
  const first = records[0]?.dynamodb;
  const last = records[records.length - 1]?.dynamodb;
  return {
    requestContext: {
      requestId: 'c9b7e6a4-0000-4000-8000-000000000000',
      functionArn: 'arn:aws:lambda:ap-northeast-1:000000000000:function:makoto-stream-ingest',
      condition: 'RetryAttemptsExhausted',
      approximateInvokeCount: 11,
    },
    responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
    version: '1.0',
    timestamp: '2025-08-11T05:10:00.000Z',
    DDBStreamBatchInfo: {
      shardId,
      startSequenceNumber: first?.SequenceNumber,
      endSequenceNumber: last?.SequenceNumber,
      approximateArrivalOfFirstRecord: '2025-08-11T05:00:00Z',
      approximateArrivalOfLastRecord: '2025-08-11T05:00:01Z',
      batchSize: records.length,
      streamArn,
    },
  };
}

async function cli(argv: string[], env: Record<string, string>) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await main(argv, env, { stdout: (t) => stdout.push(t), stderr: (t) => stderr.push(t) });
  return { code, stdout: stdout.join('\n'), stderr: stderr.join('\n') };
}

/** The words bash makes of `text` (quotes removed, no expansion of a quoted '*'). */
const shellWords = (text: string): string[] =>
  execFileSync('bash', ['-c', `printf '%s\\0' ${text}`])
    .toString('utf8')
    .split('\0')
    .slice(0, -1);

const stagedLines = async (store: LocalStore, key: string) =>
  gunzipSync(await getBytes(store, key))
    .toString('utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('redrive --source dynamodb: failed batches re-read from DynamoDB Local’s stream', () => {
  it('CLI from a file: re-reads exactly the batch, overwrites what a half-written Lambda attempt left, no duplicates', async () => {
    const { table, streamArn, store, env } = await fresh();
    await put(table, msg('before', 'p0', 'not in the failed batch'));
    await put(table, msg('acme', 'a1', 'こんにちは'));
    await put(table, msg('beta', 'b1', 'hello'));
    await put(table, msg('acme', 'a2', '二通目'));
    await put(table, msg('after', 'z9', 'not in the failed batch either'));
    const records = await readStream(ddb.endpoint, streamArn);
    expect(records.length).toBe(5);
    const batch = records.slice(1, 4);
    const [shardId] = await streamShards(ddb.endpoint, streamArn);

    // The Lambda got the batch, wrote acme's group, failed on beta's: half written, then dead-lettered.
    const half = {
      ...store,
      location: store.location,
      list: store.list.bind(store),
      listFolders: store.listFolders.bind(store),
      head: store.head.bind(store),
      getStream: store.getStream.bind(store),
      getToFile: store.getToFile.bind(store),
      putFile: store.putFile.bind(store),
      delete: store.delete.bind(store),
      putBytes: async (key: string, body: Uint8Array | string) => {
        if (key.includes('tenant_id=beta/')) throw new TransientStoreError('injected outage');
        return store.putBytes(key, body);
      },
    };
    const answer = await ingestStreamEvent(streamEvent(batch, streamArn), {
      store: half,
      config: loadConfig({}),
      now: () => NOW,
      ...quietTelemetry(),
    });
    const seq = batch.map((r) => String(r.dynamodb?.SequenceNumber).replace(/^0+(?=\d)/, ''));
    expect(answer).toStrictEqual({ batchItemFailures: [{ itemIdentifier: batch[1]?.dynamodb?.SequenceNumber }] });
    const name = dynamodbBatchId(streamArn);
    const acmeKey = `staging/messages/tenant_id=acme/dt=2025-08-11/${name}_${seq[0]}_${seq[2]}.ndjson.gz`;
    const betaKey = `staging/messages/tenant_id=beta/dt=2025-08-11/${name}_${seq[1]}_${seq[1]}.ndjson.gz`;
    expect((await listAll(store, '')).map((o) => o.key)).toStrictEqual([acmeKey]);
    const lambdaLines = await stagedLines(store, acmeKey);

    const file = join(dir.path, 'failures.json');
    await writeFile(file, JSON.stringify([failureMessage(streamArn, shardId as string, batch)]));
    const result = await cli(['redrive', '--source', 'dynamodb', file, '--json'], env);

    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout);
    expect(summary).toStrictEqual({
      ok: true,
      messages: 1,
      staged: 3,
      quarantined: 0,
      quarantine: [],
      days: [
        { tenant: 'acme', dt: '2025-08-11' },
        { tenant: 'beta', dt: '2025-08-11' },
      ],
      results: [
        {
          message: `${file}#1`,
          batch: `${shardId} ${batch[0]?.dynamodb?.SequenceNumber}..${batch[2]?.dynamodb?.SequenceNumber} of ${streamArn}`,
          status: 'staged',
          received: 3,
          staged: 3,
          quarantined: 0,
          quarantine: [],
          objects: [acmeKey, betaKey],
          days: [
            { tenant: 'acme', dt: '2025-08-11' },
            { tenant: 'beta', dt: '2025-08-11' },
          ],
          acknowledged: true,
        },
      ],
    });
    // Exactly the Lambda's object names: acme's object was rewritten, not duplicated; beta's is there now.
    expect((await listAll(store, '')).map((o) => o.key)).toStrictEqual([acmeKey, betaKey]);
    const redriven = await stagedLines(store, acmeKey);
    expect(redriven.map((l) => ({ ...l, ingested_at: 0 }))).toStrictEqual(lambdaLines.map((l) => ({ ...l, ingested_at: 0 })));
    expect((await stagedLines(store, betaKey)).map((l) => [l.message_id, l.content, l.op])).toStrictEqual([
      ['b1', 'hello', 'upsert'],
    ]);
  });

  it('names every (tenant, day) the batch staged, across days, and the compact command for each day', async () => {
    const { table, streamArn, store, env } = await fresh();
    await put(table, msg('acme', 'a1', 'JST morning of the 11th', '2025-08-10T20:00:00.000Z'));
    await put(table, msg('acme', 'a2', 'an edit of an old message', '2025-08-09T03:00:00.000Z'));
    await put(table, msg('beta', 'b1', 'after midnight JST', '2025-08-11T16:00:00.000Z'));
    await put(table, msg('beta', 'b2', 'the 11th', '2025-08-11T03:00:00.000Z'));
    const records = await readStream(ddb.endpoint, streamArn);
    const [shardId] = await streamShards(ddb.endpoint, streamArn);
    const file = join(dir.path, 'days.json');
    await writeFile(file, JSON.stringify([failureMessage(streamArn, shardId as string, records)]));

    const result = await cli(['redrive', '--source', 'dynamodb', file, '--json'], env);

    expect(result.code, result.stderr).toBe(0);
    const days = [
      { tenant: 'acme', dt: '2025-08-09' },
      { tenant: 'acme', dt: '2025-08-11' },
      { tenant: 'beta', dt: '2025-08-11' },
      { tenant: 'beta', dt: '2025-08-12' },
    ];
    const summary = JSON.parse(result.stdout);
    expect([summary.days, summary.results[0].days]).toStrictEqual([days, days]);
    expect(result.stderr.split('\n').slice(-4)).toStrictEqual([
      'staged 4 tenant-days: acme 2025-08-09, acme 2025-08-11, beta 2025-08-11, beta 2025-08-12',
      '  compact them with: npx makoto-lake compact 2025-08-09 acme',
      '  compact them with: npx makoto-lake compact 2025-08-11 acme,beta',
      '  compact them with: npx makoto-lake compact 2025-08-12 beta',
    ]);
    // the list is exactly the partitions that hold staging now
    expect(
      (await listAll(store, 'staging/')).map((o) =>
        o.key.replace(/^staging\/messages\/tenant_id=([^/]+)\/dt=([^/]+)\/.*$/, '$1 $2'),
      ),
    ).toStrictEqual(days.map((d) => `${d.tenant} ${d.dt}`));
  });

  it('a batch of an offboarded tenant: its records quarantined with the reason (erase/offboard), the others staged', async () => {
    const { table, streamArn, store, env } = await fresh();
    expect((await cli(['offboard', '--tenant', 'globex'], env)).code).toBe(0);
    await put(table, msg('acme', 'r1', 'kept'));
    await put(table, msg('globex', 'r2', 'refused'));
    const records = await readStream(ddb.endpoint, streamArn);
    const [shardId] = await streamShards(ddb.endpoint, streamArn);
    const file = join(dir.path, 'offboarded.json');
    await writeFile(file, JSON.stringify([failureMessage(streamArn, shardId as string, records)]));

    const result = await cli(['redrive', '--source', 'dynamodb', file, '--json'], env);

    expect(result.code, result.stderr).toBe(1); // a record was quarantined
    const summary = JSON.parse(result.stdout);
    expect([summary.days, summary.results[0].staged, summary.results[0].quarantined]).toStrictEqual([
      [{ tenant: 'acme', dt: '2025-08-11' }],
      1,
      1,
    ]);
    expect((await listAll(store, 'staging/')).map((o) => o.key.split('/').slice(2, 4).join('/'))).toStrictEqual([
      'tenant_id=acme/dt=2025-08-11',
    ]);
    const [quarantined] = await listAll(store, 'quarantine/ingest/');
    const lines = await stagedLines(store, quarantined?.key as string);
    expect(lines.map((l) => l.reason)).toStrictEqual([offboardedReason('globex')]);
  });

  it('a TTL expiry re-read with GetRecords stays an expiry: the message stays in the lake', async () => {
    const { table, streamArn, store, env } = await fresh();
    await put(table, msg('acme', 'keep', '期限切れでも残る'));
    await put(table, msg('acme', 'gone', 'deleted by the user'));
    await dynamo.send(new DeleteItemCommand({ TableName: table, Key: marshall({ tenantId: 'acme', messageId: 'keep' }) }));
    await dynamo.send(new DeleteItemCommand({ TableName: table, Key: marshall({ tenantId: 'acme', messageId: 'gone' }) }));
    const records = await readStream(ddb.endpoint, streamArn);
    const [shardId] = await streamShards(ddb.endpoint, streamArn);
    expect(records.map((r) => r.eventName)).toStrictEqual(['INSERT', 'INSERT', 'REMOVE', 'REMOVE']);
    // DynamoDB Local deletes nothing by TTL; the service's removal is this same record plus the
    // userIdentity GetRecords returns for it ({PrincipalId, Type}, as the SDK gives it).
    const real = new DynamoStreamBatchReader({ client: streams });
    const reader = {
      readBatch: async (info: Parameters<typeof real.readBatch>[0]) =>
        (await real.readBatch(info)).map((r) =>
          r.eventName === 'REMOVE' && r.dynamodb?.OldImage?.messageId?.S === 'keep' ? { ...r, userIdentity: TTL_IDENTITY } : r,
        ),
    };
    const messages = {
      location: 'test',
      handed: false,
      async receive() {
        if (this.handed) return [];
        this.handed = true;
        return [{ id: 'm1', body: JSON.stringify(failureMessage(streamArn, shardId as string, records)) }];
      },
      async acknowledge() {},
    };

    const summary = await runRedrive({ store, reader, messages, now: NOW });

    expect(summary.results.map((r) => [r.status, r.staged])).toStrictEqual([['staged', 4]]);
    const [key] = (await listAll(store, 'staging/')).map((o) => o.key);
    expect((await stagedLines(store, key as string)).map((l) => [l.message_id, l.op])).toStrictEqual([
      ['keep', 'upsert'],
      ['gone', 'upsert'],
      ['keep', 'expire'],
      ['gone', 'delete'],
    ]);
    expect((await cli(['compact', '2025-08-11', 'acme'], env)).code).toBe(0);
    expect((await readLake(store)).map((r) => [r.message_id, r.content])).toStrictEqual([['keep', '期限切れでも残る']]);
  });

  it('records that aged out of the stream: a clear message naming the batch and pointing at backfill, exit 1', async () => {
    const { table, streamArn, env } = await fresh();
    await put(table, msg('acme', 'a1', 'x'));
    const records = await readStream(ddb.endpoint, streamArn);
    const [shardId] = await streamShards(ddb.endpoint, streamArn);
    // The stream is gone, as a disabled stream or a deleted table's stream is 24 hours later:
    // DynamoDB Local answers for it as the service does.
    const goneArn = streamArn.replace(`table/${table}/`, `table/${table}-deleted/`);
    const body = failureMessage(goneArn, shardId as string, records);
    const file = join(dir.path, 'aged.json');
    await writeFile(file, JSON.stringify(body));

    const result = await cli(['redrive', '--source', 'dynamodb', file], env);

    expect(result.code).toBe(1);
    const seq = `${records[0]?.dynamodb?.SequenceNumber}..${records[0]?.dynamodb?.SequenceNumber}`;
    // The exact commands that recover the batch's window: an incremental export from the minute of its first
    // record to at least 15 minutes later (DynamoDB's shortest period), then a backfill of every tenant it holds.
    const tableArn = goneArn.replace(/\/stream\/.*$/, '');
    expect(result.stderr.split('\n').slice(1, 6)).toStrictEqual([
      `✗ ${shardId} ${seq} of ${goneArn} aged-out: batch ${shardId} ${seq} of ${goneArn}: ` +
        'the records are no longer in the stream (ResourceNotFoundException). DynamoDB Streams keeps records 24 hours; ' +
        'its records were written 2025-08-11T05:00:00Z to 2025-08-11T05:00:01Z.',
      'Export 2025-08-11T05:00:00Z to 2025-08-11T05:15:00Z from the table (point-in-time recovery, kept up to 35 days) and, once the export is COMPLETED, backfill every tenant-day it holds:',
      `  aws dynamodb export-table-to-point-in-time --table-arn ${tableArn} --s3-bucket "$S3_BUCKET_NAME" --s3-prefix exports/stream-gaps ` +
        '--export-format DYNAMODB_JSON --export-type INCREMENTAL_EXPORT --incremental-export-specification ' +
        'ExportFromTime=1754888400,ExportToTime=1754889300,ExportViewType=NEW_AND_OLD_IMAGES',
      "  npx makoto-lake backfill --source dynamodb '*' --from-export exports/stream-gaps",
      'then run the npx makoto-lake compact command it prints for each day',
    ]);
    expect(tableArn).toBe(`arn:aws:dynamodb:ddblocal:000000000000:table/${table}-deleted`);
  });

  it('the aged-out advice, followed: its export window holds the lost edit and delete; its backfill and compact commands apply them', async () => {
    const { table, streamArn, store, env } = await fresh();
    const old = msg('t1', 'h1', 'as captured', '2025-08-09T03:00:00.000Z');
    const doomed = msg('t2', 'h2', 'deleted in the lost batch', '2025-08-11T03:00:00.000Z');
    await put(table, old);
    await put(table, doomed);
    const [shardId] = await streamShards(ddb.endpoint, streamArn);
    const captured = await readStream(ddb.endpoint, streamArn);
    const file = join(dir.path, 'captured.json');
    await writeFile(file, JSON.stringify(failureMessage(streamArn, shardId as string, captured)));
    expect((await cli(['redrive', '--source', 'dynamodb', file], env)).code).toBe(0);
    expect((await cli(['compact', '2025-08-09', 't1'], env)).code).toBe(0);
    expect((await cli(['compact', '2025-08-11', 't2'], env)).code).toBe(0);
    // A second later (stream times are whole seconds), an edit and a delete whose batch is lost.
    await new Promise((r) => setTimeout(r, 1100));
    const edited = { ...old, content: 'edited in the lost batch' };
    await put(table, edited);
    // when each write happened: what the export's WriteTimestampMicros says (the stream's times are coarser)
    const writes = [Date.now()];
    await dynamo.send(new DeleteItemCommand({ TableName: table, Key: marshall({ tenantId: 't2', messageId: 'h2' }) }));
    writes.push(Date.now());
    const lost = (await readStream(ddb.endpoint, streamArn)).slice(2);
    const times = lost.map((r) => Number(r.dynamodb?.ApproximateCreationDateTime?.getTime()));
    const goneArn = streamArn.replace(`table/${table}/`, `table/${table}-deleted/`);
    const info = failureMessage(goneArn, shardId as string, lost);
    info.DDBStreamBatchInfo.approximateArrivalOfFirstRecord = new Date(times[0] as number).toISOString();
    info.DDBStreamBatchInfo.approximateArrivalOfLastRecord = new Date(times[1] as number).toISOString();
    const agedFile = join(dir.path, 'lost.json');
    await writeFile(agedFile, JSON.stringify(info));

    const redriven = await cli(['redrive', '--source', 'dynamodb', agedFile], env);

    expect(redriven.code).toBe(1);
    const advice = redriven.stderr.split('\n');
    const exportLine = advice.find((l) => l.startsWith('  aws dynamodb export-table-to-point-in-time ')) as string;
    const window = /ExportFromTime=([^,]+),ExportToTime=([^,]+),/.exec(exportLine);
    const [from, to] = [Number(window?.[1]) * 1000, Number(window?.[2]) * 1000];
    // the window covers both lost records ([from, to): ExportToTime is exclusive)
    expect([...times, ...writes].map((t) => from <= t && t < to)).toStrictEqual([true, true, true, true]);
    // What DynamoDB writes for that incremental export (NEW_AND_OLD_IMAGES; no NewImage = a delete), under
    // the advice's prefix, in the store.
    const prefix = /--s3-prefix (\S+)/.exec(exportLine)?.[1] as string;
    const folder = join(env.DATA_DIR, prefix, 'AWSDynamoDB', '01754900000000-gap00001');
    await mkdir(join(folder, 'data'), { recursive: true });
    const line = (at: number, before: Record<string, unknown>, after?: Record<string, unknown>) =>
      JSON.stringify({
        Metadata: { WriteTimestampMicros: { N: String(at * 1000) } },
        Keys: marshall({ tenantId: before.tenantId, messageId: before.messageId }),
        OldImage: marshall(before),
        ...(after ? { NewImage: marshall(after) } : {}),
      });
    await writeFile(
      join(folder, 'data/file0.json.gz'),
      gzipSync(`${line(writes[0] as number, old, edited)}\n${line(writes[1] as number, doomed)}\n`),
    );
    await writeFile(
      join(folder, 'manifest-files.json'),
      `${JSON.stringify({ itemCount: 2, dataFileS3Key: `${prefix}/AWSDynamoDB/01754900000000-gap00001/data/file0.json.gz` })}\n`,
    );
    await writeFile(
      join(folder, 'manifest-summary.json'),
      JSON.stringify({ exportTime: new Date(to).toISOString(), outputFormat: 'DYNAMODB_JSON', exportType: 'INCREMENTAL_EXPORT' }),
    );

    // The advice's backfill line, split into words as bash splits it ('*' quoted), run as written.
    const backfillLine = advice.find((l) => l.startsWith('  npx makoto-lake backfill ')) as string;
    const backfill = await cli(shellWords(backfillLine.replace('  npx makoto-lake ', '')), env);
    expect(backfill.code, backfill.stderr).toBe(0);
    const compactLines = backfill.stderr.split('\n').filter((l) => l.startsWith('  compact them with: npx makoto-lake '));
    expect(backfill.stderr.split('\n').slice(-3)).toStrictEqual([
      'staged 2 tenant-days: t1 2025-08-09, t2 2025-08-11',
      '  compact them with: npx makoto-lake compact 2025-08-09 t1',
      '  compact them with: npx makoto-lake compact 2025-08-11 t2',
    ]);
    for (const compactLine of compactLines) {
      const compacted = await cli(shellWords(compactLine.replace('  compact them with: npx makoto-lake ', '')), env);
      expect(compacted.code, compacted.stderr).toBe(0);
    }
    // the lost edit is in the lake and the lost delete took the message out
    expect((await readLake(store)).map((r) => [r.tenant_id, r.dt, r.message_id, r.content])).toStrictEqual([
      ['t1', '2025-08-09', 'h1', 'edited in the lost batch'],
    ]);
  });

  it('from SQS (a stub client, no local SQS server): deletes a message only after its records are staged', async () => {
    const { table, streamArn, store } = await fresh();
    await put(table, msg('acme', 'a1', 'x'));
    await put(table, msg('acme', 'a2', 'y'));
    const records = await readStream(ddb.endpoint, streamArn);
    const [shardId] = await streamShards(ddb.endpoint, streamArn);
    const good = JSON.stringify(failureMessage(streamArn, shardId as string, records));
    const aged = JSON.stringify(failureMessage(`${streamArn}-gone`, shardId as string, records));
    const calls: string[] = [];
    let deliveries = 0;
    const stub = {
      async send(command: unknown) {
        if (command instanceof ReceiveMessageCommand) {
          calls.push(`receive ${command.input.QueueUrl} max=${command.input.MaxNumberOfMessages}`);
          deliveries++;
          if (deliveries > 1) return { Messages: [] };
          return {
            Messages: [
              { MessageId: 'm-good', ReceiptHandle: 'r-good', Body: good },
              { MessageId: 'm-aged', ReceiptHandle: 'r-aged', Body: aged },
              { MessageId: 'm-junk', ReceiptHandle: 'r-junk', Body: '{"hello":1}' },
            ],
          };
        }
        if (command instanceof DeleteMessageCommand) {
          // by then the good batch's records must be in staging
          calls.push(`delete ${command.input.ReceiptHandle} after ${(await listAll(store, 'staging/')).length} staged object(s)`);
          return {};
        }
        throw new Error('unexpected command');
      },
    };
    const queue = new SqsFailureQueue(stub as never, 'https://sqs.ap-northeast-1.amazonaws.com/000000000000/failures');

    const summary = await runRedrive({
      store,
      reader: new DynamoStreamBatchReader({ client: streams }),
      messages: queue,
      now: NOW,
    });

    expect(summary.results.map((r) => [r.message, r.status, r.acknowledged])).toStrictEqual([
      ['m-good', 'staged', true],
      ['m-aged', 'aged-out', false],
      ['m-junk', 'invalid', false],
    ]);
    expect(summary.results[2]?.error).toBe(
      'DDBStreamBatchInfo.streamArn is missing (the message is not a DynamoDB Streams on-failure record)',
    );
    expect(summary.ok).toBe(false);
    expect(calls).toStrictEqual([
      'receive https://sqs.ap-northeast-1.amazonaws.com/000000000000/failures max=10',
      'delete r-good after 1 staged object(s)',
      'receive https://sqs.ap-northeast-1.amazonaws.com/000000000000/failures max=10',
    ]);
  });

  it('the optional redrive Lambda: an SQS event of on-failure messages → staged, or reported back to stay in the queue', async () => {
    const { table, streamArn, store } = await fresh();
    await put(table, msg('acme', 'a1', 'x'));
    const records = await readStream(ddb.endpoint, streamArn);
    const [shardId] = await streamShards(ddb.endpoint, streamArn);
    const sqsRecord = (messageId: string, body: string) => ({
      messageId,
      receiptHandle: `r-${messageId}`,
      body,
      attributes: {
        ApproximateReceiveCount: '1',
        SentTimestamp: '1754888400000',
        SenderId: 'AIDAEXAMPLE',
        ApproximateFirstReceiveTimestamp: '1754888400001',
      },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:ap-northeast-1:000000000000:makoto-failures',
      awsRegion: REGION,
    });
    const logs: string[] = [];

    const answer = await redriveSqsEvent(
      {
        Records: [
          sqsRecord('m-ok', JSON.stringify(failureMessage(streamArn, shardId as string, records))),
          sqsRecord('m-bad', '[1, 2]'),
        ],
      },
      { store, config: loadConfig({}), reader: new DynamoStreamBatchReader({ client: streams }), log: (l) => logs.push(l) },
    );

    expect(answer).toStrictEqual({ batchItemFailures: [{ itemIdentifier: 'm-bad' }] });
    const seq = String(records[0]?.dynamodb?.SequenceNumber).replace(/^0+(?=\d)/, '');
    expect((await listAll(store, '')).map((o) => o.key)).toStrictEqual([
      `staging/messages/tenant_id=acme/dt=2025-08-11/${dynamodbBatchId(streamArn)}_${seq}_${seq}.ndjson.gz`,
    ]);
    expect(logs.map((l) => [JSON.parse(l).level, JSON.parse(l).status, JSON.parse(l).error])).toStrictEqual([
      ['INFO', 'staged', undefined],
      ['ERROR', 'invalid', 'an on-failure message must be a JSON object with DDBStreamBatchInfo'],
    ]);
  });

  it('runbook (docs/AWS.md): redrive from the queue with the real SQS client, then compact; messages that aged out stay', async () => {
    const { table, streamArn, store, env } = await fresh();
    await put(table, msg('acme', 'r1', 'redriven from the queue'));
    await put(table, msg('beta', 'r2', 'redriven from a file'));
    const records = await readStream(ddb.endpoint, streamArn);
    const [shardId] = await streamShards(ddb.endpoint, streamArn);
    const first = JSON.stringify(failureMessage(streamArn, shardId as string, records.slice(0, 1)));
    const second = JSON.stringify(failureMessage(streamArn, shardId as string, records.slice(1)));
    const aged = JSON.stringify(failureMessage(`${streamArn.replace(table, `${table}-gone`)}`, shardId as string, records));
    const sqs = await startSqsStandIn([first, aged]);
    try {
      // makoto-lake redrive --source dynamodb --queue-url "$QUEUE"
      const fromQueue = await cli(['redrive', '--source', 'dynamodb', '--queue-url', sqs.queueUrl], {
        ...env,
        SQS_ENDPOINT: sqs.endpoint,
      });
      expect(fromQueue.code).toBe(1);
      // the table's last columns: status, records, staged, quarantined, objects
      expect(
        fromQueue.stdout.split('\n').map((l) => l.trim().split(/\s+/).slice(-5)),
        fromQueue.stderr,
      ).toStrictEqual([
        ['status', 'records', 'staged', 'quarantined', 'objects'],
        ['--------', '-------', '------', '-----------', '-------'],
        ['staged', '1', '1', '0', '1'],
        ['aged-out', '0', '0', '0', '0'],
      ]);
      expect(sqs.remaining()).toStrictEqual(['msg-2']);
      expect(sqs.requests).toStrictEqual(['ReceiveMessage', 'DeleteMessage', 'ReceiveMessage']);
    } finally {
      await sqs.stop();
    }
    // aws sqs receive-message --queue-url "$QUEUE" --max-number-of-messages 10 > failures.json
    const file = join(dir.path, 'receive-message.json');
    await writeFile(file, JSON.stringify({ Messages: [{ MessageId: 'cli-1', ReceiptHandle: 'x', Body: second }] }));
    // makoto-lake redrive --source dynamodb failures.json
    expect((await cli(['redrive', '--source', 'dynamodb', file], env)).code).toBe(0);
    // makoto-lake compact 2025-08-11 acme,beta --json
    const compacted = await cli(['compact', '2025-08-11', 'acme,beta', '--json'], env);
    expect(
      JSON.parse(compacted.stdout).tenants.map((t: Record<string, unknown>) => [t.tenant_id, t.status, t.rows_written]),
    ).toStrictEqual([
      ['acme', 'compacted', 1],
      ['beta', 'compacted', 1],
    ]);
    expect((await readLake(store)).map((r) => [r.tenant_id, r.message_id, r.content])).toStrictEqual([
      ['acme', 'r1', 'redriven from the queue'],
      ['beta', 'r2', 'redriven from a file'],
    ]);
  });
  it('--max-messages N stops after N messages: the rest stay in the queue; a count that is not a positive integer is refused', async () => {
    const { table, streamArn, store, env } = await fresh();
    await put(table, msg('acme', 'm1', 'first batch'));
    await put(table, msg('acme', 'm2', 'second batch'));
    const records = await readStream(ddb.endpoint, streamArn);
    const [shardId] = await streamShards(ddb.endpoint, streamArn);
    const bodies = [records.slice(0, 1), records.slice(1)].map((r) =>
      JSON.stringify(failureMessage(streamArn, shardId as string, r)),
    );
    const sqs = await startSqsStandIn(bodies);
    try {
      const queueEnv = { ...env, SQS_ENDPOINT: sqs.endpoint };
      const refused = await cli(
        ['redrive', '--source', 'dynamodb', '--queue-url', sqs.queueUrl, '--max-messages', '0'],
        queueEnv,
      );
      expect([refused.code, refused.stderr.split('\n')[0]]).toStrictEqual([
        2,
        'makoto-lake: --max-messages must be a positive integer, got "0"',
      ]);
      expect(sqs.requests).toStrictEqual([]);

      const one = await cli(
        ['redrive', '--source', 'dynamodb', '--queue-url', sqs.queueUrl, '--max-messages', '1', '--json'],
        queueEnv,
      );
      expect(one.code, one.stderr).toBe(0);
      expect(sqs.remaining()).toStrictEqual(['msg-2']);
      expect(sqs.requests.filter((r) => r === 'DeleteMessage')).toStrictEqual(['DeleteMessage']);
    } finally {
      await sqs.stop();
    }
    expect((await cli(['compact', '2025-08-11', 'acme'], env)).code).toBe(0);
    expect((await readLake(store)).map((r) => [r.message_id, r.content])).toStrictEqual([['m1', 'first batch']]);
  });
});
