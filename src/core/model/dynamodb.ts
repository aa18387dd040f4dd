import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { SourceChange } from './normalise.js';

/**
 * A DynamoDB Streams record in either of the two shapes it arrives in, read by one normaliser:
 * - the Lambda event (`userIdentity: {type, principalId}`, `ApproximateCreationDateTime` in epoch seconds,
 *   binary values as base64 text, `eventSourceARN` set);
 * - a `GetRecords` answer as the SDK returns it (`userIdentity: {Type, PrincipalId}`,
 *   `ApproximateCreationDateTime` as a Date, binary values as bytes, no `eventSourceARN`).
 */
export interface DynamoDBStreamRecordLike {
  eventID?: string;
  eventName?: 'INSERT' | 'MODIFY' | 'REMOVE' | string;
  eventSourceARN?: string;
  userIdentity?: { type?: string; principalId?: string; Type?: string; PrincipalId?: string };
  dynamodb?: {
    SequenceNumber?: string;
    Keys?: Record<string, unknown>;
    NewImage?: Record<string, unknown>;
    OldImage?: Record<string, unknown>;
    ApproximateCreationDateTime?: number | Date;
    StreamViewType?: string;
  };
}

/**
 * DynamoDB removes expired items itself and says so in userIdentity. Such a removal is not a user delete:
 * the message keeps its place in the lake (it is staged as `expire`, carrying the last image).
 * Both casings count: a record re-read with GetRecords must not turn an expiry into a user delete.
 */
export function isTtlRemoval(record: DynamoDBStreamRecordLike): boolean {
  const identity = record.userIdentity;
  if (!identity) return false;
  return (
    (identity.type ?? identity.Type) === 'Service' && (identity.principalId ?? identity.PrincipalId) === 'dynamodb.amazonaws.com'
  );
}

/** `ApproximateCreationDateTime` as epoch milliseconds, whichever shape carried it. */
export function approximateCreationMs(record: DynamoDBStreamRecordLike): number | undefined {
  const value = record.dynamodb?.ApproximateCreationDateTime;
  if (value instanceof Date) return value.getTime();
  // The Lambda event gives epoch seconds (some producers send milliseconds).
  if (typeof value === 'number' && Number.isFinite(value)) return value < 1e11 ? value * 1000 : value;
  return undefined;
}

/** A stream record (either shape) as a source change. Never throws. */
export function dynamodbChange(record: DynamoDBStreamRecordLike): SourceChange {
  const seq = record.dynamodb?.SequenceNumber ?? '';
  const remove = record.eventName === 'REMOVE';
  const imageName = remove ? 'OldImage' : 'NewImage';
  const image = record.dynamodb?.[imageName];
  const op = remove ? (isTtlRemoval(record) ? 'expire' : 'delete') : 'upsert';
  if (!['INSERT', 'MODIFY', 'REMOVE'].includes(record.eventName ?? '')) {
    return {
      item: undefined,
      op,
      sourceSeq: seq,
      raw: record,
      problem: `eventName must be INSERT, MODIFY or REMOVE, got ${JSON.stringify(record.eventName ?? null)}`,
    };
  }
  if (!image) {
    const view = record.dynamodb?.StreamViewType;
    return {
      item: undefined,
      op,
      sourceSeq: seq,
      raw: record,
      problem: `${record.eventName} record has no ${imageName} (stream view type ${view ?? 'unknown'}; capture needs NEW_AND_OLD_IMAGES)`,
    };
  }
  let item: Record<string, unknown>;
  try {
    const malformed = Object.entries(image).find(([, value]) => !isAttributeValue(value));
    if (malformed) {
      const [name, value] = malformed;
      throw new TypeError(
        `attribute ${JSON.stringify(name)} is not an attribute value (one of ${TYPE_KEYS.join(', ')}), got ${safeText(value)}`,
      );
    }
    item = plainItem(image);
  } catch (error) {
    // a malformed attribute value (`{"X": ...}`, `{"N": "abc"}`) or nesting deeper than the stack: this
    // record is quarantined with the reason, the rest of its batch goes on
    return {
      item: undefined,
      op,
      sourceSeq: seq,
      raw: record,
      positionField: 'SequenceNumber',
      problem: `${imageName} is not a readable DynamoDB image: ${(error as Error).message}`,
    };
  }
  const previousItem = record.eventName === 'MODIFY' ? previousImage(record) : undefined;
  return { item, op, sourceSeq: seq, raw: record, positionField: 'SequenceNumber', ...(previousItem ? { previousItem } : {}) };
}

/**
 * A MODIFY's OldImage as a plain item (NEW_AND_OLD_IMAGES carries it), or undefined when it is absent or
 * unreadable: it only says where the message was before, so a bad one costs the move-out, never the record.
 */
function previousImage(record: DynamoDBStreamRecordLike): Record<string, unknown> | undefined {
  const image = record.dynamodb?.OldImage;
  if (!image || !Object.values(image).every(isAttributeValue)) return undefined;
  try {
    return plainItem(image);
  } catch {
    // too deeply nested or not unmarshallable: there is no earlier place to read, the change itself stands
    return undefined;
  }
}

/** The type keys of a DynamoDB attribute value (`{"S": "text"}`). */
const TYPE_KEYS = ['S', 'N', 'B', 'BOOL', 'NULL', 'M', 'L', 'SS', 'NS', 'BS'] as const;

/** `{"S": …}` and the like: an object with exactly one of TYPE_KEYS (what unmarshall reads). */
function isAttributeValue(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && (TYPE_KEYS as readonly string[]).includes(keys[0] as string);
}

/** The start of a value's JSON text, for a reason (never throws). */
function safeText(value: unknown): string {
  try {
    const text = JSON.stringify(value) ?? String(value);
    return text.length > 60 ? `${text.slice(0, 60)}…` : text;
  } catch {
    return typeof value;
  }
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
