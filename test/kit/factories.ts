import { marshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBStreamRecordLike } from '../../src/core/model/dynamodb.js';
import type { StagedRecord } from '../../src/core/schema/messageSchema.js';

/** An app item as the MAKOTO app writes it; override any field. */
export function chatItem(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    tenantId: 'acme',
    messageId: 'm1',
    conversationId: 'c1',
    senderId: 'u1',
    role: 'user',
    content: 'こんにちは',
    createdAt: '2025-08-11T01:00:00.000Z',
    ...overrides,
  };
}

/** A DynamoDB Streams record as Lambda delivers it. */
export function dynamodbRecord(options: {
  seq: string | number;
  item?: Record<string, unknown>;
  event?: 'INSERT' | 'MODIFY' | 'REMOVE';
  ttl?: boolean;
  image?: Record<string, unknown>;
}): DynamoDBStreamRecordLike {
  const event = options.event ?? 'INSERT';
  const image =
    options.image ?? (marshall(options.item ?? chatItem(), { removeUndefinedValues: true }) as Record<string, unknown>);
  return {
    eventID: `ev-${options.seq}`,
    eventName: event,
    eventSourceARN: 'arn:aws:dynamodb:ap-northeast-1:000000000000:table/messages/stream/2025-08-01T00:00:00.000',
    ...(options.ttl ? { userIdentity: { type: 'Service', principalId: 'dynamodb.amazonaws.com' } } : {}),
    dynamodb: { SequenceNumber: String(options.seq), ...(event === 'REMOVE' ? { OldImage: image } : { NewImage: image }) },
  };
}

/** A Cosmos DB change-feed document. */
export function cosmosDocument(lsn: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const { messageId, ...item } = chatItem();
  return { id: messageId, ...item, _rid: 'rid', _etag: `"e${lsn}"`, _ts: 1754874000, _lsn: lsn, ...overrides };
}

/** A staging line as the staging writer produces it. */
export function stagedRecord(overrides: Partial<StagedRecord> = {}): StagedRecord {
  return {
    tenant_id: 'acme',
    dt: '2025-08-11',
    message_id: 'm1',
    conversation_id: 'c1',
    sender_id: 'u1',
    role: 'user',
    content: 'こんにちは',
    created_at: Date.parse('2025-08-11T01:00:00.000Z'),
    updated_at: null,
    attributes: '{}',
    source: 'dynamodb',
    source_seq: '100',
    ingested_at: Date.parse('2025-08-11T01:00:05.000Z'),
    op: 'upsert',
    ...overrides,
  };
}
