import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { SourceChange } from './normalise.js';

/** The parts of a DynamoDB Streams record (as Lambda delivers it) that we read. */
export interface DynamoDBStreamRecordLike {
  eventID?: string;
  eventName?: 'INSERT' | 'MODIFY' | 'REMOVE' | string;
  eventSourceARN?: string;
  userIdentity?: { type?: string; principalId?: string };
  dynamodb?: {
    SequenceNumber?: string;
    Keys?: Record<string, unknown>;
    NewImage?: Record<string, unknown>;
    OldImage?: Record<string, unknown>;
    ApproximateCreationDateTime?: number;
  };
}

/**
 * DynamoDB removes expired items itself and says so in userIdentity. Such a removal is not a user delete:
 * the message keeps its place in the lake (it is staged as `expire`, carrying the last image).
 */
export function isTtlRemoval(record: DynamoDBStreamRecordLike): boolean {
  return record.userIdentity?.type === 'Service' && record.userIdentity.principalId === 'dynamodb.amazonaws.com';
}

/** A stream record as a source change. Throws TypeError for records that are not DynamoDB JSON. */
export function dynamodbChange(record: DynamoDBStreamRecordLike): SourceChange {
  const seq = record.dynamodb?.SequenceNumber ?? '';
  const remove = record.eventName === 'REMOVE';
  const image = remove ? record.dynamodb?.OldImage : record.dynamodb?.NewImage;
  const op = remove ? (isTtlRemoval(record) ? 'expire' : 'delete') : 'upsert';
  if (!['INSERT', 'MODIFY', 'REMOVE'].includes(record.eventName ?? '')) {
    return { item: undefined, op, sourceSeq: seq, raw: record };
  }
  return { item: image ? plainItem(image) : undefined, op, sourceSeq: seq, raw: record };
}

/**
 * Unmarshalls an image keeping every value: numbers stay exact (a number that a double cannot hold is
 * kept as its decimal string), sets become sorted arrays, binary becomes base64 text.
 */
export function plainItem(image: Record<string, unknown>): Record<string, unknown> {
  const item = unmarshall(image as Parameters<typeof unmarshall>[0], {
    wrapNumbers: exactNumber,
  });
  return toPlain(item) as Record<string, unknown>;
}

function toPlain(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (value instanceof Set) {
    const items = [...value].map(toPlain);
    return items.sort((a, b) => (String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0));
  }
  if (Array.isArray(value)) return value.map(toPlain);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toPlain(v)]));
  }
  return value;
}

/**
 * A JSON number when a double holds it exactly (at most 15 significant digits), else the exact decimal
 * string: DynamoDB numbers have up to 38 digits and must not be rounded on their way to `attributes`.
 */
function exactNumber(text: string): number | string {
  const mantissa = text.replace(/^[+-]/, '').replace(/[eE].*$/, '');
  const digits = mantissa.replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
  const n = Number(text);
  return Number.isFinite(n) && digits.length <= 15 ? n : text;
}
