import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../compactor/cli.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { listAll } from '../../src/ports/store/ObjectStore.js';
import type { RunningServer } from '../../tools/servers.js';
import { restoreEnvironment } from '../kit/environment.js';
import { type ParsedLakeRow, readLake } from '../kit/readParquet.js';
import { tempDir } from '../kit/tempDir.js';
import { createMessagesTable, LOCAL_CREDENTIALS } from './support/dynamoStream.js';
import { REGION, startDynamoDbLocal } from './support/localAws.js';

/**
 * Issue 21 item 10 for backfills: a backfilled version whose creation day is another than the day the table
 * holds the message in takes it out of that day — a table Scan and a full export through the message-day
 * lookup, an incremental export through its OldImage (as capture does).
 */
const D1 = '2025-08-11';
const D2 = '2025-08-12';
const ARN = 'arn:aws:dynamodb:ap-northeast-1:000000000000:table/messages/stream/2025-08-01T00:00:00.000';
const M1 = { tenantId: 't1', messageId: 'm1', createdAt: '2025-08-11T01:00:00.000Z', content: 'created on day 1', role: 'user' };
const M2 = { tenantId: 't1', messageId: 'm2', createdAt: '2025-08-11T02:00:00.000Z', content: 'stays on day 1', role: 'user' };
/** m1 after an edit that moved its creation time to day 2, whose stream batch was lost. */
const MOVED = { ...M1, createdAt: '2025-08-12T01:00:00.000Z', content: 'moved to day 2' };

let ddb: RunningServer & { endpoint: string };
let dynamo: DynamoDBClient;
let dir: { path: string; cleanup: () => Promise<void> };
const saved = { ...process.env };

beforeAll(async () => {
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_EC2_METADATA_DISABLED: 'true' });
  ddb = await startDynamoDbLocal();
  dynamo = new DynamoDBClient({ endpoint: ddb.endpoint, region: REGION, credentials: LOCAL_CREDENTIALS });
  dir = await tempDir();
});
afterAll(async () => {
  restoreEnvironment(saved);
  dynamo?.destroy();
  await ddb?.stop();
  await dir?.cleanup();
});

let lakes = 0;
function lake(table?: string) {
  const dataDir = join(dir.path, `data-${++lakes}`);
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

/** m1 and m2 captured by the stream Lambda (replayed through `ingest`) and compacted into day 1. */
async function capturedOnDay1(env: Record<string, string>, store: LocalStore) {
  const file = join(dir.path, `inserts-${lakes}.json`);
  const records = [M1, M2].map((item, i) => ({
    eventName: 'INSERT',
    eventSourceARN: ARN,
    dynamodb: { SequenceNumber: `420000000000000000000${i + 1}`, NewImage: marshall(item) },
  }));
  await writeFile(file, JSON.stringify({ Records: records }));
  expect((await cli(['ingest', '--source', 'dynamodb', file], env)).code).toBe(0);
  expect((await cli(['compact', D1, 't1'], env)).code).toBe(0);
  expect(await readLake(store)).toStrictEqual([
    lakeRow(D1, M1, '4200000000000000000001'),
    lakeRow(D1, M2, '4200000000000000000002'),
  ]);
}

/** A lake row of one of these items. */
function lakeRow(dt: string, item: typeof M1, sourceSeq: string): ParsedLakeRow {
  return {
    tenant_id: 't1',
    dt,
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
  };
}

/** `compact DATE t1 --json` (exit 0): the tenant-day's superseded, duplicate, deleted and written counts. */
async function compact(env: Record<string, string>, date: string) {
  const run = await cli(['compact', date, 't1', '--json'], env);
  expect(run.code, run.stderr).toBe(0);
  const [t] = JSON.parse(run.stdout).tenants as Record<string, unknown>[];
  return [t?.versions_superseded, t?.duplicates_removed, t?.deletes_applied, t?.rows_written];
}

/** The staging keys under the tenant, as names per day. */
async function staging(store: LocalStore) {
  return (await listAll(store, 'staging/messages/tenant_id=t1/'))
    .map((o) => o.key.slice('staging/messages/tenant_id=t1/'.length))
    .sort();
}

/** One DynamoDB export in the documented layout: `lines` are its data file's lines. */
async function writeExport(
  root: string,
  prefix: string,
  exportId: string,
  type: 'FULL_EXPORT' | 'INCREMENTAL_EXPORT',
  exportTime: string,
  lines: Record<string, unknown>[],
) {
  const folder = `${prefix}/AWSDynamoDB/${exportId}`;
  const put = async (key: string, body: Buffer | string) => {
    await mkdir(dirname(join(root, key)), { recursive: true });
    await writeFile(join(root, key), body);
  };
  await put(`${folder}/data/file0.json.gz`, gzipSync(`${lines.map((l) => JSON.stringify(l)).join('\n')}\n`));
  await put(
    `${folder}/manifest-files.json`,
    `${JSON.stringify({ itemCount: lines.length, dataFileS3Key: `${folder}/data/file0.json.gz` })}\n`,
  );
  await put(
    `${folder}/manifest-summary.json`,
    JSON.stringify({ exportTime, exportToTime: exportTime, outputFormat: 'DYNAMODB_JSON', exportType: type }),
  );
}

const later = (s: number) => new Date(Date.now() + s * 1000).toISOString();

describe('one message, one partition (issue 21 item 10): a backfill takes a moved message out of its old day', () => {
  it('table Scan: the message compacted in day 1, a backfill of day 2 reads it there → day 1 empty of it, day 2 holds it', async () => {
    const { env, store } = lake('moved-scan');
    await createMessagesTable(dynamo, 'moved-scan');
    for (const item of [MOVED, M2]) await dynamo.send(new PutItemCommand({ TableName: 'moved-scan', Item: marshall(item) }));
    await capturedOnDay1(env, store);

    const backfill = await cli(['backfill', '--source', 'dynamodb', D2, 't1'], env);
    expect(backfill.code, backfill.stderr).toBe(0);
    // the backfilled day, and the day the lookup found m1 in: both named, with their compact commands
    expect(backfill.stderr.split('\n').slice(-3)).toStrictEqual([
      `staged 2 tenant-days: t1 ${D1}, t1 ${D2}`,
      `  compact them with: npx makoto-lake compact ${D1} t1`,
      `  compact them with: npx makoto-lake compact ${D2} t1`,
    ]);
    expect((await staging(store)).filter((k) => k.includes('backfill-'))).toStrictEqual([
      `dt=${D1}/backfill-dynamodb-${D2}-t1-moves_0_0.ndjson.gz`,
      `dt=${D2}/backfill-dynamodb-${D2}-t1-p00001_0_0.ndjson.gz`,
    ]);

    // day 1 (its captured staging read again: 2 duplicates of the published rows): the move-out, later than
    // the capture, removes m1 and is remembered; day 2: m1 as read
    expect(await compact(env, D1)).toStrictEqual([1, 2, 1, 1]);
    expect(await compact(env, D2)).toStrictEqual([0, 0, 0, 1]);
    expect(await readLake(store)).toStrictEqual([lakeRow(D1, M2, '4200000000000000000002'), lakeRow(D2, MOVED, '0')]);

    // the same backfill again: the same objects, the same rows
    expect((await cli(['backfill', '--source', 'dynamodb', D2, 't1'], env)).code).toBe(0);
    await compact(env, D1);
    await compact(env, D2);
    expect(await readLake(store)).toStrictEqual([lakeRow(D1, M2, '4200000000000000000002'), lakeRow(D2, MOVED, '0')]);
  });

  it('the lookup works below TEMP_DIR: a TEMP_DIR that is not a folder fails the tenant-day, named, and stages no move', async () => {
    const { env, store } = lake('moved-temp');
    await createMessagesTable(dynamo, 'moved-temp');
    for (const item of [MOVED, M2]) await dynamo.send(new PutItemCommand({ TableName: 'moved-temp', Item: marshall(item) }));
    await capturedOnDay1(env, store);
    const notAFolder = join(dir.path, 'temp-is-a-file');
    await writeFile(notAFolder, 'x');

    const backfill = await cli(['backfill', '--source', 'dynamodb', D2, 't1'], { ...env, TEMP_DIR: notAFolder });
    expect(backfill.code).toBe(1);
    const failed = backfill.stderr.split('\n').find((l) => l.startsWith('✗'));
    expect(failed?.replace(/backfill-moves-\w{6}/, 'backfill-moves-?')).toBe(
      `✗ t1 ${D2} failed: ENOTDIR: not a directory, mkdtemp '${notAFolder}/backfill-moves-?' (run the same command again to resume)`,
    );
    expect((await staging(store)).filter((k) => k.includes('-moves'))).toStrictEqual([]);
  });

  it('full export: its version of the message names day 2 → out of day 1 by the lookup, into day 2', async () => {
    const { env, dataDir, store } = lake();
    await capturedOnDay1(env, store);
    await writeExport(dataDir, 'exports/full', '01754900000000-aaaaaaaa', 'FULL_EXPORT', later(3600), [
      { Item: marshall(MOVED) },
      { Item: marshall(M2) },
    ]);
    const backfill = await cli(['backfill', '--source', 'dynamodb', 't1', '--from-export', 'exports/full'], env);
    expect(backfill.code, backfill.stderr).toBe(0);
    const name = (date: string) => `backfill-dynamodb-export-${exportHash('exports/full')}-${date}-t1`;
    expect((await staging(store)).filter((k) => k.includes('backfill-'))).toStrictEqual([
      `dt=${D1}/${name(D1)}-p00001_0_0.ndjson.gz`,
      `dt=${D1}/${name(D2)}-moves_0_0.ndjson.gz`,
      `dt=${D2}/${name(D2)}-p00001_0_0.ndjson.gz`,
    ]);
    // day 1: the export's m2 and the move-out both supersede the captured versions
    expect(await compact(env, D1)).toStrictEqual([2, 2, 1, 1]);
    expect(await compact(env, D2)).toStrictEqual([0, 0, 0, 1]);
    expect(await readLake(store)).toStrictEqual([lakeRow(D1, M2, '0'), lakeRow(D2, MOVED, '0')]);
  });

  it('incremental export: the edit’s OldImage names day 1 → its move-out (as capture stages it), no second one from the lookup', async () => {
    const { env, dataDir, store } = lake();
    await capturedOnDay1(env, store);
    await writeExport(dataDir, 'exports/incremental', '01754990000000-bbbbbbbb', 'INCREMENTAL_EXPORT', later(3600), [
      {
        Metadata: { WriteTimestampMicros: { N: String(Date.parse(later(60)) * 1000) } },
        Keys: marshall({ tenantId: 't1', messageId: 'm1' }),
        OldImage: marshall(M1),
        NewImage: marshall(MOVED),
      },
    ]);
    const backfill = await cli(['backfill', '--source', 'dynamodb', 't1', '--from-export', 'exports/incremental'], env);
    expect(backfill.code, backfill.stderr).toBe(0);
    const name = `backfill-dynamodb-export-${exportHash('exports/incremental')}-${D2}-t1-p00001`;
    expect((await staging(store)).filter((k) => k.includes('backfill-'))).toStrictEqual([
      `dt=${D1}/${name}_0_0.ndjson.gz`,
      `dt=${D2}/${name}_0_0.ndjson.gz`,
    ]);
    expect(backfill.stderr.split('\n').slice(-3)).toStrictEqual([
      `staged 2 tenant-days: t1 ${D1}, t1 ${D2}`,
      `  compact them with: npx makoto-lake compact ${D1} t1`,
      `  compact them with: npx makoto-lake compact ${D2} t1`,
    ]);
    expect(await compact(env, D1)).toStrictEqual([1, 2, 1, 1]);
    expect(await compact(env, D2)).toStrictEqual([0, 0, 0, 1]);
    expect(await readLake(store)).toStrictEqual([lakeRow(D1, M2, '4200000000000000000002'), lakeRow(D2, MOVED, '0')]);
  });

  it('an export older than the table’s row: its version of another day is taken out of that day, the row stays', async () => {
    const { env, dataDir, store } = lake();
    await capturedOnDay1(env, store);
    // the export (day 2) is older than the captured INSERTs (made just now): its move-out loses to them
    await writeExport(dataDir, 'exports/old', '01754900000000-cccccccc', 'FULL_EXPORT', '2025-08-12T06:00:00.000Z', [
      { Item: marshall(MOVED) },
    ]);
    expect((await cli(['backfill', '--source', 'dynamodb', 't1', '--from-export', 'exports/old'], env)).code).toBe(0);
    const name = `backfill-dynamodb-export-${exportHash('exports/old')}-${D2}-t1`;
    expect((await staging(store)).filter((k) => k.includes('backfill-'))).toStrictEqual([
      `dt=${D2}/${name}-moves_0_0.ndjson.gz`,
      `dt=${D2}/${name}-p00001_0_0.ndjson.gz`,
    ]);
    // day 2: the table's row in day 1 is newer than the export's version, so the export's m1 leaves day 2
    expect(await compact(env, D2)).toStrictEqual([1, 0, 1, 0]);
    expect(await readLake(store)).toStrictEqual([
      lakeRow(D1, M1, '4200000000000000000001'),
      lakeRow(D1, M2, '4200000000000000000002'),
    ]);
  });
});

/** The 8 hex digits the export reader names a prefix's objects with. */
function exportHash(prefix: string): string {
  return createHash('sha256').update(prefix).digest('hex').slice(0, 8);
}
