import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { marshall } from '@aws-sdk/util-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { ingestBatch } from '../../src/capture/ingest/ingestBatch.js';
import { dynamodbEventChanges } from '../../src/capture/ingest/sources.js';
import { cosmosChange } from '../../src/core/model/cosmos.js';
import { normaliseChange } from '../../src/core/model/normalise.js';
import { stagingPrefix } from '../../src/core/staging/layout.js';
import { type CompactionDeps, compactPartition } from '../../src/engine/compactPartition.js';
import { readManifest } from '../../src/lake/manifest.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { getBytes, listAll } from '../../src/ports/store/ObjectStore.js';
import { duckDbFixture } from '../kit/duckDbFixture.js';
import { chatItem, dynamodbRecord } from '../kit/factories.js';
import { readPartition } from '../kit/pipeline.js';

const D1 = '2025-08-11';
const D2 = '2025-08-12';
const AT_D1 = '2025-08-11T01:00:00.000Z';
const AT_D2 = '2025-08-12T01:00:00.000Z';
const NOW = Date.parse('2025-08-12T05:00:00.000Z');

let store: LocalStore;
let n = 0;

const fixture = duckDbFixture('makoto-lake-move-');
beforeAll(async () => {
  store = new LocalStore(join(fixture.path, 'data'));
});

const deps = (): CompactionDeps => ({ store, db: fixture.db, workDirectory: join(fixture.path, `work-${++n}`) });
const image = (item: Record<string, unknown>) => marshall(item) as Record<string, unknown>;

/** A MODIFY as Lambda delivers it with NEW_AND_OLD_IMAGES. */
function modify(seq: number, before: Record<string, unknown>, after: Record<string, unknown>) {
  const record = dynamodbRecord({ seq, event: 'MODIFY', item: after });
  return { ...record, dynamodb: { ...record.dynamodb, OldImage: image(before) } };
}

async function deliver(records: unknown[], now = NOW) {
  const { changes, batchId } = dynamodbEventChanges({ Records: records });
  return { batchId, result: await ingestBatch(store, changes, { source: 'dynamodb', batchId, now }) };
}

async function compact(...dates: string[]) {
  for (const date of dates) expect((await compactPartition(deps(), 'acme', date)).status).toBe('compacted');
}

/** The partition's rows as (id, content, position), read back through the table's current version. */
async function rows(date: string) {
  return (await readPartition(store, 'acme', date, join(fixture.path, `read-${++n}`))).map((r) => [
    r.message_id,
    r.content,
    r.source_seq,
  ]);
}

async function expireStaging(date: string) {
  for (const o of await listAll(store, stagingPrefix('acme', date))) await store.delete(o.key);
}

async function stagedLines(key: string) {
  return gunzipSync(await getBytes(store, key))
    .toString('utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

describe('one message, one partition: an edit that moves the creation day', () => {
  const m1 = chatItem({ messageId: 'm1', content: 'first', createdAt: AT_D1 });
  const m2 = chatItem({ messageId: 'm2', content: 'stays', createdAt: AT_D1 });
  const insertM1 = dynamodbRecord({ seq: 100, item: m1 });

  it('removes the message from the old day as a move-out, which stale versions lose to and newer versions beat', async () => {
    await deliver([insertM1, dynamodbRecord({ seq: 101, item: m2 })]);
    await compact(D1);
    expect(await rows(D1)).toStrictEqual([
      ['m1', 'first', '100'],
      ['m2', 'stays', '101'],
    ]);

    // the edit moves m1 to the next JST day: one staging object per day, both at the edit's position
    const moved = chatItem({ messageId: 'm1', content: 'moved', createdAt: AT_D2 });
    const { batchId, result } = await deliver([modify(200, m1, moved)]);
    expect(result.written.map((w) => [w.key, w.records])).toStrictEqual([
      [`staging/messages/tenant_id=acme/dt=${D2}/${batchId}_200_200.ndjson.gz`, 1],
      [`staging/messages/tenant_id=acme/dt=${D1}/${batchId}_200_200.ndjson.gz`, 1],
    ]);
    const [moveOut] = await stagedLines(result.written[1]?.key as string);
    expect([
      moveOut.dt,
      moveOut.message_id,
      moveOut.op,
      moveOut.source_seq,
      moveOut.created_at,
      moveOut.ingested_at,
    ]).toStrictEqual([D1, 'm1', 'delete', '200', Date.parse(AT_D1), NOW]);

    await compact(D1, D2);
    expect(await rows(D1)).toStrictEqual([['m2', 'stays', '101']]);
    expect(await rows(D2)).toStrictEqual([['m1', 'moved', '200']]);
    const manifest = await readManifest(store, 'acme', D1);
    expect([manifest?.deletes_applied, manifest?.rows_written]).toStrictEqual([1, 1]);

    // the old INSERT delivered again after the old day's staging expired: the remembered move-out keeps it out
    await expireStaging(D1);
    await deliver([insertM1]);
    await compact(D1);
    expect(await rows(D1)).toStrictEqual([['m2', 'stays', '101']]);
    expect(await rows(D2)).toStrictEqual([['m1', 'moved', '200']]);

    // moved back: newer than the move-out it lands on, and it moves out of the day it left
    const back = chatItem({ messageId: 'm1', content: 'back', createdAt: AT_D1 });
    await deliver([modify(300, moved, back)]);
    await compact(D1, D2);
    expect(await rows(D1)).toStrictEqual([
      ['m1', 'back', '300'],
      ['m2', 'stays', '101'],
    ]);
    expect(await rows(D2)).toStrictEqual([]);

    // deleted by the user, then created again in the day it moved out of: the move-out remembered there does
    // not suppress the new message (a later position), the user delete stays where the message was
    await deliver([
      dynamodbRecord({ seq: 400, event: 'REMOVE', item: back }),
      dynamodbRecord({ seq: 500, item: chatItem({ messageId: 'm1', content: 'again', createdAt: AT_D2 }) }),
    ]);
    await compact(D1, D2);
    expect(await rows(D1)).toStrictEqual([['m2', 'stays', '101']]);
    expect(await rows(D2)).toStrictEqual([['m1', 'again', '500']]);
  });

  it('stages nothing more for an edit within the same day, nor for a MODIFY without OldImage', async () => {
    const edited = chatItem({ messageId: 'm2', content: 'edited', createdAt: '2025-08-11T09:00:00.000Z' });
    const { batchId, result } = await deliver([
      modify(600, m2, edited),
      dynamodbRecord({ seq: 601, event: 'MODIFY', item: edited }),
    ]);
    expect(result.written.map((w) => [w.key, w.records])).toStrictEqual([
      [`staging/messages/tenant_id=acme/dt=${D1}/${batchId}_600_601.ndjson.gz`, 2],
    ]);
  });

  it('reads a Cosmos all-versions-and-deletes replace whose previous image is in another day as a move', () => {
    const doc = (createdAt: string, content: string) => ({ id: 'm9', tenantId: 'acme', createdAt, content });
    const change = cosmosChange({
      current: doc(AT_D2, 'later'),
      previous: doc(AT_D1, 'earlier'),
      metadata: { operationType: 'replace', lsn: 42, crts: 1754960000, previousImageLSN: 41 },
    });
    const result = normaliseChange(change, { source: 'cosmos', ingestedAt: NOW });
    expect(result).toStrictEqual({
      ok: true,
      record: {
        tenant_id: 'acme',
        dt: D2,
        message_id: 'm9',
        conversation_id: null,
        sender_id: null,
        role: null,
        content: 'later',
        created_at: Date.parse(AT_D2),
        updated_at: null,
        attributes: '{}',
        source: 'cosmos',
        source_seq: '42',
        ingested_at: NOW,
        op: 'upsert',
      },
      moveOut: {
        tenant_id: 'acme',
        dt: D1,
        message_id: 'm9',
        conversation_id: null,
        sender_id: null,
        role: null,
        content: 'earlier',
        created_at: Date.parse(AT_D1),
        updated_at: null,
        attributes: '{}',
        source: 'cosmos',
        source_seq: '42',
        ingested_at: NOW,
        op: 'delete',
      },
    });
    // a replace within the day, and a create, carry no move
    const same = cosmosChange({
      current: doc(AT_D1, 'b'),
      previous: doc('2025-08-11T02:00:00.000Z', 'a'),
      metadata: { operationType: 'replace', lsn: 43 },
    });
    expect(normaliseChange(same, { source: 'cosmos', ingestedAt: NOW })).not.toHaveProperty('moveOut');
  });
});
