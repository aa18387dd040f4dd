import { marshall } from '@aws-sdk/util-dynamodb';
import { describe, expect, it } from 'vitest';
import { cosmosChange } from '../../src/model/cosmos.js';
import { dynamodbChange } from '../../src/model/dynamodb.js';
import { parseFieldMapping } from '../../src/model/fieldMapping.js';
import { normaliseChange } from '../../src/model/normalise.js';
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

  it('treats a REMOVE as a user delete, and a TTL removal as an expiry', () => {
    const remove = dynamodbRecord({ seq: 9, event: 'REMOVE' });
    expect(normaliseChange(dynamodbChange(remove), context)).toMatchObject({ ok: true, record: { op: 'delete' } });
    const ttl = dynamodbRecord({ seq: 9, event: 'REMOVE', ttl: true });
    expect(normaliseChange(dynamodbChange(ttl), context)).toMatchObject({ ok: true, record: { op: 'expire' } });
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
      reason: 'upsert change has no item image (the stream must carry NEW_AND_OLD_IMAGES)',
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

  it('rejects a document without a position', () => {
    const { _lsn, ...doc } = cosmosDocument(1);
    expect(normaliseChange(cosmosChange(doc), cosmos)).toStrictEqual({
      ok: false,
      reason: 'source position must be decimal digits, got ""',
    });
  });
});
