import { createHash } from 'node:crypto';
import { UsageError } from '../errors.js';
import { cosmosChange } from '../model/cosmos.js';
import { type DynamoDBStreamRecordLike, dynamodbChange } from '../model/dynamodb.js';
import type { SourceChange } from '../model/normalise.js';

/**
 * A Lambda DynamoDB Streams event as source changes. The batch id names the stream (from the event source
 * ARN), so object names are `<stream>_<firstSeq>_<lastSeq>`: stable when Lambda re-delivers the batch.
 */
export function dynamodbEventChanges(event: unknown): { changes: SourceChange[]; batchId: string } {
  const records = (event as { Records?: unknown } | null)?.Records;
  if (!Array.isArray(records)) {
    throw new UsageError('a DynamoDB Streams event must be a JSON object {"Records": [...]}');
  }
  const changes = records.map((record) =>
    typeof record === 'object' && record !== null
      ? dynamodbChange(record as DynamoDBStreamRecordLike)
      : { item: undefined, op: 'upsert' as const, sourceSeq: '', raw: record },
  );
  const arn = (records[0] as DynamoDBStreamRecordLike | undefined)?.eventSourceARN ?? 'unknown';
  return { changes, batchId: `ddb-${shortHash(arn)}` };
}

/** Cosmos DB change-feed documents as source changes; `lease` names the feed range (lease token). */
export function cosmosDocumentChanges(documents: unknown, lease = 'cosmos'): { changes: SourceChange[]; batchId: string } {
  if (!Array.isArray(documents)) throw new UsageError('Cosmos DB change-feed input must be a JSON array of documents');
  return { changes: documents.map((d) => cosmosChange(d)), batchId: `cosmos-${lease}` };
}

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}
