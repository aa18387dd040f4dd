/**
 * The runbooks of docs/AWS.md and docs/AZURE.md, run as written: every code block marked
 * `<!-- runbook: NAME -->` is run verbatim with bash (after the runbook's setup block, as in the operator's
 * shell), against DynamoDB Local, s3rver (through the conditional proxy), a local SQS stand-in, Azurite and
 * cosmosdb-server. The shell gets only what an operator's has: credentials, the endpoint variables
 * src/core/config.ts reads, PATH. A doc edit that breaks a step (a store not exported, a wrong flag, a command
 * that is not on PATH) fails here.
 */
import { spawn } from 'node:child_process';
import { access, mkdir, mkdtemp, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from '@aws-sdk/client-dynamodb-streams';
import { marshall } from '@aws-sdk/util-dynamodb';
import { CosmosClient } from '@azure/cosmos';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writePoisonBatch } from '../../azure/poison.js';
import { BlobStore } from '../../stores/blob/BlobStore.js';
import { S3Store } from '../../stores/s3/S3Store.js';
import { COSMOS_KEY, startAzurite, startCosmos } from '../../tools/azureServers.js';
import type { RunningServer } from '../../tools/servers.js';
import { createMessagesTable } from '../aws/support/dynamoStream.js';
import { REGION, S3RVER_CREDENTIALS, type S3rver, startDynamoDbLocal, startS3rver } from '../aws/support/localAws.js';
import { startSqsStandIn } from '../aws/support/sqsStandIn.js';
import { readLake } from '../kit/readParquet.js';

const ROOT = resolve('.');

/** The blocks marked `<!-- runbook: NAME -->` right before a ```sh (or ```bash) fence, by name, in order. */
function runbookBlocks(markdown: string): Map<string, string> {
  const blocks = new Map<string, string>();
  for (const match of markdown.matchAll(/<!-- runbook: ([\w-]+) -->\n```(?:sh|bash)\n([\s\S]*?)```/g)) {
    const [, name, body] = match as unknown as [string, string, string];
    if (blocks.has(name)) throw new Error(`two runbook blocks named ${name}`);
    blocks.set(name, body);
  }
  return blocks;
}

async function blocksOf(doc: string, names: readonly string[]): Promise<Map<string, string>> {
  const blocks = runbookBlocks(await readFile(join(ROOT, doc), 'utf8'));
  expect([...blocks.keys()], `${doc}: the runbook blocks`).toStrictEqual(names);
  return blocks;
}

interface Shell {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `script` with `bash -eo pipefail` (a failing line fails the block) in `cwd`, with exactly `env`. */
function bash(script: string, env: Record<string, string>, cwd: string): Promise<Shell> {
  return new Promise((done, fail) => {
    const child = spawn('bash', ['-eo', 'pipefail', '-c', script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

/**
 * An operator's shell: PATH (with node_modules/.bin, as after `npm ci`), HOME, and what `extra` adds
 * (credentials and endpoints). Nothing else of this process's environment (no DATA_DIR, no store).
 */
function operatorEnv(extra: Record<string, string>): Record<string, string> {
  return {
    PATH: `${join(ROOT, 'node_modules/.bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    HOME: process.env.HOME ?? '/root',
    ...extra,
  };
}

/** What a block exported: the variables `script` adds to `env`. */
async function exported(script: string, env: Record<string, string>, cwd: string): Promise<Record<string, string>> {
  const run = await bash(`${script}\nnode -e 'process.stdout.write(JSON.stringify(process.env))'`, env, cwd);
  expect(run.code, run.stderr).toBe(0);
  const after = JSON.parse(run.stdout) as Record<string, string>;
  return Object.fromEntries(Object.entries(after).filter(([k, v]) => env[k] !== v && k !== '_' && k !== 'SHLVL' && k !== 'PWD'));
}

/**
 * The operator's working folder: inside the project, so `npx makoto-lake` finds the project's own bin as in
 * the checkout (npx looks for the nearest package.json; below node_modules it does not find it and asks the
 * registry), in `data/`, which git and biome ignore. Removed after the suite.
 */
async function workFolder(): Promise<string> {
  const parent = join(ROOT, 'data');
  await mkdir(parent, { recursive: true });
  return await mkdtemp(join(parent, '.runbook-'));
}

/** Removes the folder, and data/ too when nothing else is in it (it did not exist before, or was empty). */
async function removeWorkFolder(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
  await rmdir(join(ROOT, 'data')).catch(() => undefined);
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

const lakeRows = async (store: S3Store | BlobStore) =>
  (await readLake(store)).map((r) => [r.tenant_id, r.dt, r.message_id, r.content, r.source]);

describe('docs/AWS.md "When capture failed (runbook)", run verbatim', () => {
  let ddb: RunningServer & { endpoint: string };
  let s3: S3rver;
  let cwd: string;
  beforeAll(async () => {
    [ddb, s3] = await Promise.all([startDynamoDbLocal(), startS3rver()]);
    cwd = await workFolder();
  }, 120_000);
  afterAll(async () => {
    await Promise.all([ddb?.stop(), s3?.stop()]);
    if (cwd) await removeWorkFolder(cwd);
  });

  it('setup, redrive from the queue and from a file, backfill from the table and an export, compact and status', async () => {
    const blocks = await blocksOf('docs/AWS.md', [
      'aws-setup',
      'aws-redrive-queue',
      'aws-redrive-file',
      'aws-backfill-table',
      'aws-backfill-export',
      'aws-compact',
    ]);
    const setup = blocks.get('aws-setup') as string;
    const credentials = {
      AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      AWS_DEFAULT_REGION: REGION,
      AWS_EC2_METADATA_DISABLED: 'true',
    };
    // The names the operator put in (the doc's example values): the local servers get exactly those.
    const names = await exported(setup, operatorEnv(credentials), cwd);
    expect(Object.keys(names).sort()).toStrictEqual(['DYNAMODB_TABLE_NAME', 'S3_BUCKET_NAME', 'STREAM_FAILURE_QUEUE_URL']);
    const bucket = names.S3_BUCKET_NAME as string;
    const table = names.DYNAMODB_TABLE_NAME as string;
    await s3.createBucket(bucket);
    const store = new S3Store({ bucket, client: s3.client() });

    // The table as the app writes it: two messages whose stream batches failed, one capture never saw.
    const dynamo = new DynamoDBClient({ endpoint: ddb.endpoint, region: REGION, credentials: S3RVER_CREDENTIALS });
    const streamArn = await createMessagesTable(dynamo, table);
    const put = (item: Record<string, unknown>) => dynamo.send(new PutItemCommand({ TableName: table, Item: marshall(item) }));
    await put({ tenantId: 't1', messageId: 'a1', createdAt: '2025-08-11T03:00:00.000Z', content: 'redriven from the queue' });
    await put({ tenantId: 't2', messageId: 'b1', createdAt: '2025-08-11T03:01:00.000Z', content: 'redriven from a file' });
    await put({ tenantId: 't1', messageId: 'a2', createdAt: '2025-08-11T04:00:00.000Z', content: 'only in the table' });
    dynamo.destroy();
    const { shardId, records } = await streamRecords(ddb.endpoint, streamArn);
    expect(records.length).toBe(3);
    const failure = (i: number) =>
      JSON.stringify({
        version: '1.0',
        timestamp: '2025-08-11T05:10:00.000Z',
        requestContext: { condition: 'RetryAttemptsExhausted', approximateInvokeCount: 11 },
        DDBStreamBatchInfo: {
          shardId,
          startSequenceNumber: records[i]?.dynamodb?.SequenceNumber,
          endSequenceNumber: records[i]?.dynamodb?.SequenceNumber,
          approximateArrivalOfFirstRecord: '2025-08-11T05:00:00Z',
          approximateArrivalOfLastRecord: '2025-08-11T05:00:00Z',
          batchSize: 1,
          streamArn,
        },
      });
    const sqs = await startSqsStandIn([failure(0)]);
    const shell = operatorEnv({
      ...credentials,
      S3_ENDPOINT: s3.endpoint,
      S3_FORCE_PATH_STYLE: 'true',
      DYNAMODB_ENDPOINT: ddb.endpoint,
      SQS_ENDPOINT: sqs.endpoint,
    });
    const run = (name: string) => bash(`${setup}\n${blocks.get(name)}`, shell, cwd);
    try {
      // A shell without step 0 (the store not exported): refused, nothing read or written.
      await writeFile(
        join(cwd, 'failures.json'),
        JSON.stringify({ Messages: [{ MessageId: 'm-2', ReceiptHandle: 'r-2', Body: failure(1) }] }),
      );
      const unset = await bash(blocks.get('aws-redrive-file') as string, shell, cwd);
      expect([unset.code, unset.stderr.trim()]).toStrictEqual([
        2,
        'makoto-lake: redrive stages records it reads from DynamoDB Streams, but no store is set: export S3_BUCKET_NAME (S3) or ' +
          'AZURE_STORAGE_CONNECTION_STRING / AZURE_STORAGE_ACCOUNT_URL (Blob) to write to the lake, or give --data-dir DIR ' +
          `(or DATA_DIR) to write to a local folder; refusing to fill ${join(cwd, 'data')} (nothing was read or written)`,
      ]);

      // 1. from the queue: the message is deleted once its records are staged
      const fromQueue = await run('aws-redrive-queue');
      expect(fromQueue.code, fromQueue.stderr).toBe(0);
      expect([sqs.remaining(), sqs.requests]).toStrictEqual([[], ['ReceiveMessage', 'DeleteMessage', 'ReceiveMessage']]);
      expect(fromQueue.stderr.split('\n').slice(-3)).toStrictEqual([
        'staged 1 tenant-day: t1 2025-08-11',
        '  compact them with: npx makoto-lake compact 2025-08-11 t1',
        '',
      ]);
      // 1. from a file as `aws sqs receive-message` prints it
      const fromFile = await run('aws-redrive-file');
      expect(fromFile.code, fromFile.stderr).toBe(0);

      // 2. from the table, then from an export (DynamoDB's layout, written where the export command puts it)
      const fromTable = await run('aws-backfill-table');
      expect(fromTable.code, fromTable.stderr).toBe(0);
      expect(
        (JSON.parse(fromTable.stdout) as { results: Record<string, unknown>[] }).results.map((r) => [
          r.tenant,
          r.status,
          r.staged,
        ]),
      ).toStrictEqual([
        ['t1', 'ok', 2],
        ['t2', 'ok', 1],
      ]);
      await writeFullExport(store, 'exports/messages', [
        { tenantId: 't2', messageId: 'b2', createdAt: '2025-08-11T06:00:00.000Z', content: 'only in the export' },
      ]);
      const fromExport = await run('aws-backfill-export');
      expect(fromExport.code, fromExport.stderr).toBe(0);
      expect(
        (JSON.parse(fromExport.stdout) as { results: Record<string, unknown>[] }).results.map((r) => [
          r.tenant,
          r.status,
          r.staged,
        ]),
      ).toStrictEqual([
        ['t1', 'ok', 0],
        ['t2', 'ok', 1],
      ]);

      // 3. compact and check
      const compacted = await run('aws-compact');
      expect(compacted.code, compacted.stderr).toBe(0);
      expect(compacted.stdout.trimEnd().split('\n').at(-1)).toBe('nothing needs attention');
    } finally {
      await sqs.stop();
    }
    expect(await lakeRows(store)).toStrictEqual([
      ['t1', '2025-08-11', 'a1', 'redriven from the queue', 'dynamodb'],
      ['t1', '2025-08-11', 'a2', 'only in the table', 'dynamodb'],
      ['t2', '2025-08-11', 'b1', 'redriven from a file', 'dynamodb'],
      ['t2', '2025-08-11', 'b2', 'only in the export', 'dynamodb'],
    ]);
    // nothing went to the operator's folder
    expect(await exists(join(cwd, 'data'))).toBe(false);
  }, 480_000);
});

/**
 * The stream's first shard and its records, read with the operator's credentials: DynamoDB Local keeps a
 * database per access key, and the CLI uses the shell's (s3rver's) key.
 */
async function streamRecords(endpoint: string, streamArn: string) {
  const client = new DynamoDBStreamsClient({ endpoint, region: REGION, credentials: S3RVER_CREDENTIALS });
  try {
    const described = await client.send(new DescribeStreamCommand({ StreamArn: streamArn }));
    const shardId = described.StreamDescription?.Shards?.[0]?.ShardId as string;
    const { ShardIterator } = await client.send(
      new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: shardId, ShardIteratorType: 'TRIM_HORIZON' }),
    );
    const page = await client.send(new GetRecordsCommand({ ShardIterator }));
    return { shardId, records: page.Records ?? [] };
  } finally {
    client.destroy();
  }
}

/** One FULL_EXPORT in DynamoDB's documented layout (manifest-summary.json, manifest-files.json, data/*.json.gz). */
async function writeFullExport(store: S3Store, prefix: string, items: Record<string, unknown>[]): Promise<void> {
  const folder = `${prefix}/AWSDynamoDB/01754900000000-abcdef12`;
  const dataKey = `${folder}/data/file0.json.gz`;
  await store.putBytes(dataKey, gzipSync(`${items.map((item) => JSON.stringify({ Item: marshall(item) })).join('\n')}\n`));
  await store.putBytes(
    `${folder}/manifest-files.json`,
    `${JSON.stringify({ itemCount: items.length, dataFileS3Key: dataKey })}\n`,
  );
  await store.putBytes(
    `${folder}/manifest-summary.json`,
    JSON.stringify({
      exportTime: '2025-08-12T00:00:00.000Z',
      manifestFilesS3Key: `${folder}/manifest-files.json`,
      itemCount: items.length,
      outputFormat: 'DYNAMODB_JSON',
      exportType: 'FULL_EXPORT',
    }),
  );
}

describe('docs/AZURE.md "When capture failed (runbook)", run verbatim', () => {
  let azurite: RunningServer & { connectionString: string };
  let cosmos: RunningServer & { endpoint: string };
  let cwd: string;
  beforeAll(async () => {
    [azurite, cosmos] = await Promise.all([startAzurite(), startCosmos()]);
    cwd = await workFolder();
  }, 120_000);
  afterAll(async () => {
    await Promise.all([azurite?.stop(), cosmos?.stop()]);
    if (cwd) await removeWorkFolder(cwd);
  });

  it('setup, replay a poison batch, backfill from the container, compact and status', async () => {
    const blocks = await blocksOf('docs/AZURE.md', ['azure-setup', 'azure-replay', 'azure-backfill', 'azure-compact']);
    const setup = blocks.get('azure-setup') as string;
    const credentials = {
      AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString,
      COSMOS_ENDPOINT: cosmos.endpoint,
      COSMOS_KEY,
    };
    const shell = operatorEnv(credentials);
    const names = await exported(setup, shell, cwd);
    expect(Object.keys(names).sort()).toStrictEqual(['AZURE_STORAGE_CONTAINER', 'COSMOS_CONTAINER', 'COSMOS_DATABASE']);
    const store = new BlobStore({
      connectionString: azurite.connectionString,
      containerName: names.AZURE_STORAGE_CONTAINER as string,
    });
    const client = new CosmosClient({
      endpoint: cosmos.endpoint,
      key: COSMOS_KEY,
      connectionPolicy: { enableEndpointDiscovery: false },
    });
    const { database } = await client.databases.createIfNotExists({ id: names.COSMOS_DATABASE as string });
    const { container } = await database.containers.createIfNotExists({
      id: names.COSMOS_CONTAINER as string,
      partitionKey: { paths: ['/tenantId'] },
    });
    await container.items.create({ id: 'c1', tenantId: 't1', createdAt: '2025-08-11T01:00:00Z', content: 'never captured' });
    await container.items.create({
      id: 'c2',
      tenantId: 't2',
      createdAt: '2025-08-11T02:00:00Z',
      content: 'never captured either',
    });
    const poisonKey = await writePoisonBatch(store, {
      source: 'cosmos',
      batchId: 'cosmos-b0123456789abcdef',
      firstPosition: '501',
      lastPosition: '501',
      documents: [
        { id: 'p1', tenantId: 't2', createdAt: '2025-08-11T03:00:00Z', content: 'set aside by the trigger', _lsn: 501 },
      ],
      error: new Error('staging unavailable'),
      functionName: 'ingest_changefeed',
      invocationId: 'inv-1',
      retryCount: 5,
    });
    const run = (name: string) => bash(`${setup}\n${blocks.get(name)}`, shell, cwd);

    // 1. `az storage blob download … -f batch.json.gz`, then the replay; then `az storage blob delete`
    await store.getToFile(poisonKey, join(cwd, 'batch.json.gz'));
    const replay = await run('azure-replay');
    expect(replay.code, replay.stderr).toBe(0);
    expect(replay.stderr.split('\n').slice(-3)).toStrictEqual([
      'staged 1 tenant-day: t2 2025-08-11',
      '  compact them with: npx makoto-lake compact 2025-08-11 t2',
      '',
    ]);
    await store.delete(poisonKey);

    // 2. backfill from the container
    const backfill = await run('azure-backfill');
    expect(backfill.code, backfill.stderr).toBe(0);
    expect(
      (JSON.parse(backfill.stdout) as { results: Record<string, unknown>[] }).results.map((r) => [r.tenant, r.status, r.staged]),
    ).toStrictEqual([
      ['t1', 'ok', 1],
      ['t2', 'ok', 1],
    ]);

    // 3. compact and check
    const compacted = await run('azure-compact');
    expect(compacted.code, compacted.stderr).toBe(0);
    expect(compacted.stdout.trimEnd().split('\n').at(-1)).toBe('nothing needs attention');
    expect(await lakeRows(store)).toStrictEqual([
      ['t1', '2025-08-11', 'c1', 'never captured', 'cosmos'],
      ['t2', '2025-08-11', 'c2', 'never captured either', 'cosmos'],
      ['t2', '2025-08-11', 'p1', 'set aside by the trigger', 'cosmos'],
    ]);
    expect(await exists(join(cwd, 'data'))).toBe(false);
  }, 480_000);
});
