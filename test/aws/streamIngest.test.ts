import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { DeleteItemCommand, DynamoDBClient, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import { TransientStoreError } from '../../src/ports/store/errors.js';
import { getBytes, listAll, type ObjectStore, type PutOptions } from '../../src/ports/store/ObjectStore.js';
import { S3Store } from '../../stores/s3/S3Store.js';
import { StreamBatchFailedError } from '../../stream-ingest/errors.js';
import { ingestStreamEvent } from '../../stream-ingest/handler.js';
import { quietTelemetry } from '../../tools/quietTelemetry.js';
import type { RunningServer } from '../../tools/servers.js';
import { streamEvent as asStreamEvent, createMessagesTable, LOCAL_CREDENTIALS, readStream } from './support/dynamoStream.js';
import { REGION, type S3rver, startDynamoDbLocal, startS3rver } from './support/localAws.js';

const NOW = Date.parse('2025-08-11T05:00:00.000Z');
const config = loadConfig({});
const BIG = '12345678901234567890123456789012345678';

/** Fails every put whose key matches, as a store outage for one group would. */
class FailingStore implements ObjectStore {
  readonly location: string;
  readonly attempted: string[] = [];
  constructor(
    private readonly base: ObjectStore,
    public fails: (key: string) => boolean,
  ) {
    this.location = base.location;
  }
  list(p: string) {
    return this.base.list(p);
  }
  listFolders(p: string) {
    return this.base.listFolders(p);
  }
  head(k: string) {
    return this.base.head(k);
  }
  getStream(k: string) {
    return this.base.getStream(k);
  }
  getToFile(k: string, p: string) {
    return this.base.getToFile(k, p);
  }
  putFile(k: string, p: string, o?: PutOptions) {
    return this.base.putFile(k, p, o);
  }
  delete(k: string) {
    return this.base.delete(k);
  }
  async putBytes(key: string, body: Uint8Array | string, options?: PutOptions) {
    this.attempted.push(key);
    if (this.fails(key)) throw new TransientStoreError(`injected outage for ${key}`, { context: { key } });
    return this.base.putBytes(key, body, options);
  }
}

describe('stream-ingest handler on real DynamoDB Streams records', () => {
  let ddb: RunningServer & { endpoint: string };
  let s3: S3rver;
  let dynamo: DynamoDBClient;
  let tables = 0;

  beforeAll(async () => {
    [ddb, s3] = await Promise.all([startDynamoDbLocal(), startS3rver()]);
    dynamo = new DynamoDBClient({ endpoint: ddb.endpoint, region: REGION, credentials: LOCAL_CREDENTIALS });
  });
  afterAll(async () => {
    dynamo?.destroy();
    await ddb?.stop();
    await s3?.stop();
  });

  /** A fresh table and bucket per test, so each test reads only its own stream. */
  async function fresh() {
    tables++;
    const streamArn = await createMessagesTable(dynamo, `messages-${tables}`);
    const bucket = `lake-${tables}`;
    await s3.createBucket(bucket);
    const store = new S3Store({ bucket, client: s3.client() });
    return { table: `messages-${tables}`, streamArn, store };
  }
  /** `raw` attributes are DynamoDB JSON as is (a 38-digit number no JS number can carry). */
  const put = (table: string, item: Record<string, unknown>, raw: Record<string, { N: string }> = {}) =>
    dynamo.send(new PutItemCommand({ TableName: table, Item: { ...marshall(item, { removeUndefinedValues: true }), ...raw } }));
  const streamEvent = async (streamArn: string, expected: number) => {
    const records = await readStream(ddb.endpoint, streamArn);
    expect(records.length).toBe(expected);
    return asStreamEvent(records, streamArn);
  };
  const lines = async (store: ObjectStore, key: string) =>
    gunzipSync(await getBytes(store, key))
      .toString('utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const batchName = (streamArn: string) => `ddb-${createHash('sha256').update(streamArn).digest('hex').slice(0, 12)}`;
  const seqs = (event: { Records: { dynamodb?: { SequenceNumber?: string } }[] }) =>
    event.Records.map((r) => r.dynamodb?.SequenceNumber as string);
  const digits = (seq: string) => seq.replace(/^0+(?=\d)/, '');

  it('stages inserts, an update and a delete per tenant and JST day, with exact content', async () => {
    const { table, streamArn, store } = await fresh();
    await put(
      table,
      {
        tenantId: 'acme',
        messageId: 'm1',
        conversationId: 'c1',
        senderId: 'u1',
        role: 'user',
        content: '会議の資料を要約して📄',
        createdAt: '2025-08-11T01:00:00.000Z',
        tags: new Set(['urgent', 'archive']),
        blob: new Uint8Array([0, 1, 2, 250]),
        meta: { client: { app: 'ios', build: 42 }, flags: [true, null] },
      },
      { big: { N: BIG } },
    );
    await put(table, {
      tenantId: 'acme',
      messageId: 'm2',
      role: 'assistant',
      content: 'はい',
      createdAt: '2025-08-10T15:00:00.000Z',
    });
    await put(table, { tenantId: 'acme', messageId: 'm0', content: 'late night', createdAt: '2025-08-10T14:59:59.999Z' });
    await put(table, { tenantId: 'beta', messageId: 'b1', content: 'hello', createdAt: 1754881200 });
    await dynamo.send(
      new UpdateItemCommand({
        TableName: table,
        Key: marshall({ tenantId: 'acme', messageId: 'm1' }),
        UpdateExpression: 'SET content = :c, updatedAt = :u',
        ExpressionAttributeValues: marshall({ ':c': '要約：三点です（編集済み）', ':u': '2025-08-11T01:05:00.000+09:00' }),
      }),
    );
    await dynamo.send(new DeleteItemCommand({ TableName: table, Key: marshall({ tenantId: 'acme', messageId: 'm2' }) }));
    const event = await streamEvent(streamArn, 6);
    expect(event.Records.map((r) => r.eventName)).toStrictEqual(['INSERT', 'INSERT', 'INSERT', 'INSERT', 'MODIFY', 'REMOVE']);
    const s = seqs(event);

    const answer = await ingestStreamEvent(event, { store, config, now: () => NOW, ...quietTelemetry() });

    expect(answer).toStrictEqual({ batchItemFailures: [] });
    const name = batchName(streamArn);
    const keys = (await listAll(store, '')).map((o) => o.key);
    expect(keys).toStrictEqual([
      `staging/messages/tenant_id=acme/dt=2025-08-10/${name}_${digits(s[2]!)}_${digits(s[2]!)}.ndjson.gz`,
      `staging/messages/tenant_id=acme/dt=2025-08-11/${name}_${digits(s[0]!)}_${digits(s[5]!)}.ndjson.gz`,
      `staging/messages/tenant_id=beta/dt=2025-08-11/${name}_${digits(s[3]!)}_${digits(s[3]!)}.ndjson.gz`,
    ]);
    const staged = (await lines(store, keys[1]!)).map((l) => ({ ...l, attributes: JSON.parse(l.attributes as string) }));
    const base = { tenant_id: 'acme', dt: '2025-08-11', source: 'dynamodb', ingested_at: NOW };
    const m1 = {
      ...base,
      message_id: 'm1',
      conversation_id: 'c1',
      sender_id: 'u1',
      role: 'user',
      content: '会議の資料を要約して📄',
      created_at: Date.parse('2025-08-11T01:00:00.000Z'),
      updated_at: null,
      attributes: {
        tags: ['archive', 'urgent'],
        blob: Buffer.from([0, 1, 2, 250]).toString('base64'),
        meta: { client: { app: 'ios', build: 42 }, flags: [true, null] },
        big: BIG,
      },
    };
    const m2 = {
      ...base,
      message_id: 'm2',
      conversation_id: null,
      sender_id: null,
      role: 'assistant',
      content: 'はい',
      created_at: Date.parse('2025-08-10T15:00:00.000Z'),
      updated_at: null,
      attributes: {},
    };
    expect(staged).toStrictEqual([
      { ...m1, source_seq: digits(s[0]!), op: 'upsert' },
      { ...m2, source_seq: digits(s[1]!), op: 'upsert' },
      {
        ...m1,
        content: '要約：三点です（編集済み）',
        updated_at: Date.parse('2025-08-10T16:05:00.000Z'),
        source_seq: digits(s[4]!),
        op: 'upsert',
      },
      { ...m2, source_seq: digits(s[5]!), op: 'delete' },
    ]);
    expect(await lines(store, keys[0]!)).toStrictEqual([
      {
        tenant_id: 'acme',
        dt: '2025-08-10',
        message_id: 'm0',
        conversation_id: null,
        sender_id: null,
        role: null,
        content: 'late night',
        created_at: Date.parse('2025-08-10T14:59:59.999Z'),
        updated_at: null,
        attributes: '{}',
        source: 'dynamodb',
        source_seq: digits(s[2]!),
        ingested_at: NOW,
        op: 'upsert',
      },
    ]);
    expect((await lines(store, keys[2]!)).map((l) => [l.message_id, l.created_at, l.dt])).toStrictEqual([
      ['b1', 1754881200000, '2025-08-11'],
    ]);

    // Lambda re-delivering the same batch rewrites the same objects: no duplicates.
    await ingestStreamEvent(event, { store, config, now: () => NOW + 1, ...quietTelemetry() });
    expect((await listAll(store, '')).map((o) => o.key)).toStrictEqual(keys);
  });

  it('reports the first record of the group that could not be written; the retry writes the same key', async () => {
    const { table, streamArn, store } = await fresh();
    for (const [tenant, id] of [
      ['acme', 'a1'],
      ['acme', 'a2'],
      ['beta', 'b1'],
      ['beta', 'b2'],
      ['gamma', 'g1'],
    ]) {
      await put(table, { tenantId: tenant, messageId: id, content: id, createdAt: '2025-08-11T03:00:00Z' });
    }
    const event = await streamEvent(streamArn, 5);
    const s = seqs(event);
    const failing = new FailingStore(store, (key) => key.includes('tenant_id=beta/'));

    const answer = await ingestStreamEvent(event, { store: failing, config, now: () => NOW, ...quietTelemetry() });

    expect(answer).toStrictEqual({ batchItemFailures: [{ itemIdentifier: s[2] }] });
    const name = batchName(streamArn);
    const betaKey = `staging/messages/tenant_id=beta/dt=2025-08-11/${name}_${digits(s[2]!)}_${digits(s[3]!)}.ndjson.gz`;
    expect(failing.attempted).toContain(betaKey);
    expect((await listAll(store, '')).map((o) => o.key)).toStrictEqual([
      `staging/messages/tenant_id=acme/dt=2025-08-11/${name}_${digits(s[0]!)}_${digits(s[1]!)}.ndjson.gz`,
      `staging/messages/tenant_id=gamma/dt=2025-08-11/${name}_${digits(s[4]!)}_${digits(s[4]!)}.ndjson.gz`,
    ]);

    // Lambda retries from the reported record: the beta group gets exactly the key it would have had.
    failing.fails = () => false;
    const retry = await ingestStreamEvent(
      { Records: event.Records.slice(2) },
      { store: failing, config, now: () => NOW, ...quietTelemetry() },
    );
    expect(retry).toStrictEqual({ batchItemFailures: [] });
    expect(failing.attempted.filter((k) => k === betaKey).length).toBe(2);
    expect((await lines(store, betaKey)).map((l) => l.message_id)).toStrictEqual(['b1', 'b2']);
    expect((await listAll(store, 'staging/messages/tenant_id=beta/')).map((o) => o.key)).toStrictEqual([betaKey]);
  });

  it('fails the whole invocation when no record could be stored', async () => {
    const { table, streamArn, store } = await fresh();
    await put(table, { tenantId: 'acme', messageId: 'x1', content: 'x', createdAt: '2025-08-11T03:00:00Z' });
    await put(table, { tenantId: 'beta', messageId: 'x2', content: 'x', createdAt: '2025-08-11T03:00:00Z' });
    const event = await streamEvent(streamArn, 2);
    const failing = new FailingStore(store, () => true);

    const error = await ingestStreamEvent(event, { store: failing, config, ...quietTelemetry() }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(StreamBatchFailedError);
    expect((error as Error).cause).toBeInstanceOf(TransientStoreError);
    expect(await listAll(store, '')).toStrictEqual([]);
  });

  it('quarantines records that can never be accepted, with the reason, and stages the rest', async () => {
    const { table, streamArn, store } = await fresh();
    await put(table, { tenantId: 'bad tenant!', messageId: 'q1', content: 'x', createdAt: '2025-08-11T03:00:00Z' });
    await put(table, { tenantId: 'acme', messageId: 'q2', content: 'x', createdAt: 'yesterday-ish' });
    await put(table, { tenantId: 'acme', messageId: 'q3', content: 'no time at all' });
    await put(table, { tenantId: 'acme', messageId: 'ok', content: 'fine', createdAt: '2025-08-11T03:00:00Z' });
    const event = await streamEvent(streamArn, 4);
    const s = seqs(event);

    const answer = await ingestStreamEvent(event, { store, config, now: () => NOW, ...quietTelemetry() });

    expect(answer).toStrictEqual({ batchItemFailures: [] });
    const name = batchName(streamArn);
    const keys = (await listAll(store, '')).map((o) => o.key);
    const quarantineKey = `quarantine/ingest/source=dynamodb/dt=2025-08-11/${name}_${s[0]}_${s[2]}.ndjson.gz`;
    expect(keys).toStrictEqual([
      quarantineKey,
      `staging/messages/tenant_id=acme/dt=2025-08-11/${name}_${digits(s[3]!)}_${digits(s[3]!)}.ndjson.gz`,
    ]);
    const quarantined = await lines(store, quarantineKey);
    expect(quarantined.map((q) => [q.reason, q.position, (q.raw as { eventID: string }).eventID])).toStrictEqual([
      [`tenant id "bad tenant!" may contain only letters, digits, '-' and '_'`, s[0], event.Records[0]?.eventID],
      ['created_at: not an ISO-8601 timestamp: "yesterday-ish"', s[1], event.Records[1]?.eventID],
      ['no creation time (looked for created_at, createdAt)', s[2], event.Records[2]?.eventID],
    ]);
    expect(quarantined[0]).toStrictEqual({
      reason: quarantined[0]?.reason,
      source: 'dynamodb',
      position: s[0],
      batch_id: name,
      quarantined_at: new Date(NOW).toISOString(),
      raw: JSON.parse(JSON.stringify(event.Records[0])),
    });
  });
});
