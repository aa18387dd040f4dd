import { marshall } from '@aws-sdk/util-dynamodb';
import { describe, expect, it } from 'vitest';
import { cosmosChange } from '../../src/core/model/cosmos.js';
import { approximateCreationMs, dynamodbChange } from '../../src/core/model/dynamodb.js';
import { parseFieldMapping } from '../../src/core/model/fieldMapping.js';
import { normaliseChange } from '../../src/core/model/normalise.js';
import type { StagedRecord } from '../../src/core/schema/messageSchema.js';
import { chatItem, cosmosDocument, dynamodbRecord, stagedRecord } from '../kit/factories.js';

const context = { source: 'dynamodb' as const, ingestedAt: 1754900000000 };

describe('normaliseChange with DynamoDB records', () => {
  it('maps camelCase fields and keeps every other field in attributes', () => {
    const record = dynamodbRecord({ seq: '000123', item: chatItem({ model: 'gpt', tokens: 42 }) });
    expect(normaliseChange(dynamodbChange(record), context)).toStrictEqual({
      ok: true,
      // the factory's record is the chat item's canonical fields; only what this change adds differs
      record: stagedRecord({ attributes: '{"model":"gpt","tokens":42}', source_seq: '123', ingested_at: 1754900000000 }),
    });
  });

  it('accepts snake_case and epoch numbers, and userId as the sender', () => {
    const item = { tenant_id: 't_2', message_id: 7, userId: 'u9', created_at: 1754874000, updated_at: 1754874000123 };
    const result = normaliseChange(dynamodbChange(dynamodbRecord({ seq: 5, item })), context);
    expect(result.ok && result.record).toMatchObject({
      tenant_id: 't_2',
      message_id: '7',
      sender_id: 'u9',
      created_at: 1754874000000,
      updated_at: 1754874000123,
      attributes: '{}',
    });
  });

  it('keeps sets, binary, nested maps and 38-digit numbers exactly in attributes', () => {
    const image = {
      ...(marshall(chatItem()) as Record<string, unknown>),
      tags: { SS: ['b', 'a'] },
      scores: { NS: ['3', '1.5'] },
      blob: { B: Buffer.from('hi') },
      nested: { M: { deep: { L: [{ N: '12345678901234567890123456789012345678' }, { BOOL: true }, { NULL: true }] } } },
      price: { N: '0.1' },
    };
    const result = normaliseChange(dynamodbChange(dynamodbRecord({ seq: 1, image })), context);
    expect(result.ok && JSON.parse(result.record.attributes)).toStrictEqual({
      tags: ['a', 'b'],
      scores: [1.5, 3],
      blob: 'aGk=',
      nested: { deep: ['12345678901234567890123456789012345678', true, null] },
      price: 0.1,
    });
  });

  it('treats a REMOVE as a user delete, and a TTL removal as an expiry, in either casing of userIdentity', () => {
    const remove = dynamodbRecord({ seq: 9, event: 'REMOVE' });
    expect(normaliseChange(dynamodbChange(remove), context)).toMatchObject({ ok: true, record: { op: 'delete' } });
    const ttl = dynamodbRecord({ seq: 9, event: 'REMOVE', ttl: true });
    expect(normaliseChange(dynamodbChange(ttl), context)).toMatchObject({ ok: true, record: { op: 'expire' } });
    const { userIdentity: _, ...bare } = ttl;
    const sdk = { ...bare, userIdentity: { PrincipalId: 'dynamodb.amazonaws.com', Type: 'Service' } };
    expect(normaliseChange(dynamodbChange(sdk), context)).toMatchObject({ ok: true, record: { op: 'expire' } });
    const user = { ...bare, userIdentity: { PrincipalId: 'someone', Type: 'Service' } };
    expect(normaliseChange(dynamodbChange(user), context)).toMatchObject({ ok: true, record: { op: 'delete' } });
  });

  it('reads ApproximateCreationDateTime as epoch seconds (Lambda) or a Date (GetRecords)', () => {
    const at = Date.parse('2025-08-11T01:00:00.000Z');
    const seconds = { ...dynamodbRecord({ seq: 1 }), dynamodb: { ApproximateCreationDateTime: at / 1000 } };
    const date = { ...dynamodbRecord({ seq: 1 }), dynamodb: { ApproximateCreationDateTime: new Date(at) } };
    expect([approximateCreationMs(seconds), approximateCreationMs(date), approximateCreationMs({})]).toStrictEqual([
      at,
      at,
      undefined,
    ]);
  });

  it('gives a specific reason for each record it cannot accept', () => {
    const reason = (item: Record<string, unknown>) => {
      const r = normaliseChange(dynamodbChange(dynamodbRecord({ seq: 1, item })), context);
      return r.ok ? 'accepted' : r.reason;
    };
    expect(reason(chatItem({ tenantId: undefined }))).toBe('no tenant id (looked for tenant_id, tenantId)');
    expect(reason(chatItem({ tenantId: '../x' }))).toBe(`tenant id "../x" may contain only letters, digits, '-' and '_'`);
    expect(reason(chatItem({ tenantId: 'a/b' }))).toBe(`tenant id "a/b" may contain only letters, digits, '-' and '_'`);
    expect(reason(chatItem({ tenantId: 'x'.repeat(65) }))).toBe('tenant id is 65 characters long (at most 64)');
    expect(reason(chatItem({ tenantId: 'аcme' }))).toBe(`tenant id "аcme" may contain only letters, digits, '-' and '_'`);
    expect(reason(chatItem({ messageId: undefined }))).toBe('no message id (looked for message_id, messageId, id)');
    expect(reason(chatItem({ createdAt: undefined }))).toBe('no creation time (looked for created_at, createdAt)');
    expect(reason(chatItem({ createdAt: '2025-02-30T00:00:00Z' }))).toBe(
      'created_at: invalid calendar date in "2025-02-30T00:00:00Z"',
    );
    const noImage = normaliseChange(dynamodbChange({ eventName: 'MODIFY', dynamodb: { SequenceNumber: '4' } }), context);
    expect(noImage).toStrictEqual({
      ok: false,
      reason: 'MODIFY record has no NewImage (stream view type unknown; capture needs NEW_AND_OLD_IMAGES)',
    });
    const keysOnly = dynamodbChange({
      eventName: 'REMOVE',
      dynamodb: { SequenceNumber: '5', Keys: { messageId: { S: 'm1' } }, StreamViewType: 'KEYS_ONLY' },
    });
    expect(normaliseChange(keysOnly, context)).toStrictEqual({
      ok: false,
      reason: 'REMOVE record has no OldImage (stream view type KEYS_ONLY; capture needs NEW_AND_OLD_IMAGES)',
    });
    expect(normaliseChange(dynamodbChange({ eventName: 'PUT', dynamodb: { SequenceNumber: '6' } }), context)).toStrictEqual({
      ok: false,
      reason: 'eventName must be INSERT, MODIFY or REMOVE, got "PUT"',
    });
  });

  it('replaces unpaired UTF-16 surrogates so Parquet gets valid UTF-8', () => {
    const result = normaliseChange(
      dynamodbChange(dynamodbRecord({ seq: 1, item: chatItem({ content: 'a\ud800b', note: 'x\udfff' }) })),
      context,
    );
    expect(result.ok && [result.record.content, result.record.attributes]).toStrictEqual(['a\ufffdb', '{"note":"x\ufffd"}']);
  });

  it('keeps fields named like system columns inside attributes', () => {
    const result = normaliseChange(
      dynamodbChange(
        dynamodbRecord({ seq: 1, item: chatItem({ source: 'web', ingested_at: 1, dt: 'x', attributes: { a: 1 } }) }),
      ),
      context,
    );
    expect(result.ok && [result.record.source, result.record.dt, JSON.parse(result.record.attributes)]).toStrictEqual([
      'dynamodb',
      '2025-08-11',
      { source: 'web', ingested_at: 1, dt: 'x', attributes: { a: 1 } },
    ]);
  });

  it('follows a configured field mapping', () => {
    const mapping = parseFieldMapping('{"content":"text","sender_id":["author"]}');
    const item = chatItem({ content: undefined, text: 'mapped', author: 'bob', senderId: 'ignored' });
    const result = normaliseChange(dynamodbChange(dynamodbRecord({ seq: 1, item })), { ...context, mapping });
    expect(result.ok && [result.record.content, result.record.sender_id, result.record.attributes]).toStrictEqual([
      'mapped',
      'bob',
      '{"senderId":"ignored"}',
    ]);
    expect(() => parseFieldMapping('{"body":"text"}')).toThrow('FIELD_MAPPING: unknown field "body"');
  });
});

describe('normaliseChange with Cosmos documents', () => {
  const cosmos = { source: 'cosmos' as const, ingestedAt: 1754900000000 };

  it('uses id as the message id and _lsn as the position, never _ts as the creation time', () => {
    const result = normaliseChange(cosmosChange(cosmosDocument(42, { _ts: 1 })), cosmos);
    expect(result).toStrictEqual({
      ok: true,
      record: stagedRecord({
        attributes: '{"_cosmos":{"_rid":"rid","_etag":"\\"e42\\"","_ts":1}}',
        source: 'cosmos',
        source_seq: '42',
        ingested_at: 1754900000000,
      }),
    });
  });

  it('treats isDeleted/deleted as a user delete and ttl as an ordinary field', () => {
    expect(normaliseChange(cosmosChange(cosmosDocument(1, { isDeleted: true })), cosmos)).toMatchObject({
      record: { op: 'delete' },
    });
    expect(normaliseChange(cosmosChange(cosmosDocument(1, { deleted: true })), cosmos)).toMatchObject({
      record: { op: 'delete' },
    });
    expect(normaliseChange(cosmosChange(cosmosDocument(1, { ttl: 60 })), cosmos)).toMatchObject({ record: { op: 'upsert' } });
  });

  it('rejects a document without a position, naming _lsn', () => {
    const { _lsn, ...doc } = cosmosDocument(1);
    expect(normaliseChange(cosmosChange(doc), cosmos)).toStrictEqual({
      ok: false,
      reason: 'no _lsn (the change-feed position; only documents read from the change feed carry it)',
    });
    expect(normaliseChange(cosmosChange(cosmosDocument(1, { _lsn: 'x1' })), cosmos)).toStrictEqual({
      ok: false,
      reason: '_lsn must be decimal digits, got "x1"',
    });
  });

  it('reads the all-versions-and-deletes shape: create/replace upsert, delete, TTL expiry', () => {
    const { _lsn, _rid, _etag, _ts, ...doc } = cosmosDocument(0);
    const envelope = (operationType: string, extra: Record<string, unknown>) => ({
      ...extra,
      metadata: { operationType, lsn: 77, crts: 1754874000, ...(extra.metadata as object) },
    });
    const staged = (op: string, seq = '77') => ({
      ok: true,
      record: stagedRecord({ source: 'cosmos', source_seq: seq, ingested_at: 1754900000000, op: op as 'upsert' }),
    });
    expect(normaliseChange(cosmosChange(envelope('create', { current: doc })), cosmos)).toStrictEqual(staged('upsert'));
    expect(normaliseChange(cosmosChange(envelope('replace', { current: doc, previous: doc })), cosmos)).toStrictEqual(
      staged('upsert'),
    );
    expect(
      normaliseChange(
        cosmosChange(envelope('delete', { current: {}, previous: doc, metadata: { previousImageLSN: 70 } })),
        cosmos,
      ),
    ).toStrictEqual(staged('delete'));
    expect(
      normaliseChange(
        cosmosChange(envelope('delete', { current: null, previous: doc, metadata: { timeToLiveExpired: true } })),
        cosmos,
      ),
    ).toStrictEqual(staged('expire'));
    expect(normaliseChange(cosmosChange(envelope('delete', { current: {}, metadata: { id: 'm1' } })), cosmos)).toStrictEqual({
      ok: false,
      reason:
        'delete without a tenant: metadata.partitionKey names no tenant field (the partition key must be the tenant, a field FIELD_MAPPING.tenant_id lists) (looked for tenant_id, tenantId)',
    });
    expect(normaliseChange(cosmosChange(envelope('upsert', { current: doc })), cosmos)).toStrictEqual({
      ok: false,
      reason: 'all-versions-and-deletes metadata.operationType must be create, replace or delete, got "upsert"',
    });
    expect(normaliseChange(cosmosChange({ current: doc, metadata: { operationType: 'create' } }), cosmos)).toStrictEqual({
      ok: false,
      reason: 'no metadata.lsn (all-versions-and-deletes change without its position)',
    });
  });

  describe('a delete in all-versions-and-deletes mode as Microsoft documents it (metadata only)', () => {
    // docs/AZURE.md, "All versions and deletes": the delete's documented shape, no `current`, no `previous`
    const documented = (metadata: Record<string, unknown> = {}) => ({
      metadata: {
        operationType: 'delete',
        lsn: 123,
        crts: 1700000000,
        previousImageLSN: 100,
        timeToLiveExpired: false,
        id: 'm1',
        partitionKey: { tenantId: 'acme' },
        ...metadata,
      },
    });
    const noDay =
      'delete without a creation time: the change carries no previous image and no creation time, so it names no day (dt) partition; capture keeps it under pending/deletes/ until the nightly planner finds the message in the table (looked for created_at, createdAt)';
    const deleteRecord = (overrides: Partial<StagedRecord> = {}) => ({
      ok: true,
      record: stagedRecord({
        source: 'cosmos',
        source_seq: '123',
        ingested_at: 1754900000000,
        op: 'delete',
        conversation_id: null,
        sender_id: null,
        role: null,
        content: null,
        ...overrides,
      }),
    });

    it('is recognised (metadata.lsn is its position, not "no _lsn") and left unplaced: it names no day', () => {
      const { dt, created_at, ...unplaced } = deleteRecord().record;
      for (const shape of [documented(), { current: {}, ...documented() }, { current: null, ...documented() }]) {
        expect(normaliseChange(cosmosChange(shape), cosmos)).toStrictEqual({ ok: false, reason: noDay, unplaced });
        expect(cosmosChange(shape)).toMatchObject({ sourceSeq: '123', op: 'delete', positionField: 'metadata.lsn' });
      }
    });

    it('is staged as a user delete when a creation time comes with it; tenant from the partition key, id from metadata.id', () => {
      const createdAt = '2025-08-11T01:00:00.000Z';
      expect(normaliseChange(cosmosChange({ ...documented(), createdAt }), cosmos)).toStrictEqual(deleteRecord());
      // the Functions samples' `current: {}` changes nothing; a hierarchical key gives every level
      expect(
        normaliseChange(
          cosmosChange({
            current: {},
            created_at: createdAt,
            ...documented({ partitionKey: { tenantId: 'acme', conversationId: 'c1' } }),
          }),
          cosmos,
        ),
      ).toStrictEqual(deleteRecord({ conversation_id: 'c1' }));
      // a top-level id when metadata has none
      const { id, ...withoutId } = documented().metadata;
      expect(normaliseChange(cosmosChange({ id: 'm1', createdAt, metadata: withoutId }), cosmos)).toStrictEqual(deleteRecord());
    });

    it('takes the tenant from the partition key only when FIELD_MAPPING names that property as the tenant', () => {
      const shape = { ...documented({ partitionKey: { tenant: 'acme' } }), createdAt: '2025-08-11T01:00:00.000Z' };
      expect(normaliseChange(cosmosChange(shape), cosmos)).toStrictEqual({
        ok: false,
        reason:
          'delete without a tenant: metadata.partitionKey names no tenant field (the partition key must be the tenant, a field FIELD_MAPPING.tenant_id lists) (looked for tenant_id, tenantId)',
      });
      const mapping = parseFieldMapping('{"tenant_id":"tenant"}');
      expect(normaliseChange(cosmosChange(shape), { ...cosmos, mapping })).toStrictEqual(deleteRecord());
    });

    it('says what is missing: the message id, the position', () => {
      const { id, ...withoutId } = documented().metadata;
      expect(normaliseChange(cosmosChange({ metadata: withoutId }), cosmos)).toStrictEqual({
        ok: false,
        reason:
          'delete without a message id: no metadata.id or id that FIELD_MAPPING.message_id lists (looked for message_id, messageId, id)',
      });
      const { lsn, ...withoutLsn } = documented().metadata;
      expect(normaliseChange(cosmosChange({ metadata: withoutLsn }), cosmos)).toStrictEqual({
        ok: false,
        reason: 'no metadata.lsn (all-versions-and-deletes change without its position)',
      });
    });

    it('timeToLiveExpired: true is an expiry, not a user delete: quarantined without a previous image, staged as expire with one', () => {
      expect(normaliseChange(cosmosChange(documented({ timeToLiveExpired: true })), cosmos)).toStrictEqual({
        ok: false,
        reason:
          'TTL expiry (metadata.timeToLiveExpired) without a previous image: no version of the message to stage (an expiry keeps the message in the lake as last captured)',
      });
      const { _lsn, _rid, _etag, _ts, ...previous } = cosmosDocument(0);
      expect(
        normaliseChange(cosmosChange({ current: null, previous, ...documented({ timeToLiveExpired: true }) }), cosmos),
      ).toStrictEqual({
        ok: true,
        record: stagedRecord({ source: 'cosmos', source_seq: '123', ingested_at: 1754900000000, op: 'expire' }),
      });
    });

    it('the previous-image variant stages the previous version; the partition key fills a tenant the image lacks', () => {
      const { _lsn, _rid, _etag, _ts, tenantId, ...previous } = cosmosDocument(0);
      expect(normaliseChange(cosmosChange({ current: {}, previous, ...documented() }), cosmos)).toStrictEqual({
        ok: true,
        record: stagedRecord({ source: 'cosmos', source_seq: '123', ingested_at: 1754900000000, op: 'delete' }),
      });
    });
  });
});
