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
  const arn = (records[0] as DynamoDBStreamRecordLike | undefined)?.eventSourceARN ?? 'unknown';
  return dynamodbStreamChanges(records, arn);
}

/**
 * Stream records of one stream (Lambda event records or a GetRecords answer, unconverted) as source
 * changes, named exactly as the Lambda names them: a redriven batch rewrites the objects a half-written
 * Lambda attempt left, never adding a second copy.
 */
export function dynamodbStreamChanges(
  records: readonly unknown[],
  streamArn: string,
): { changes: SourceChange[]; batchId: string } {
  const changes = records.map((record) =>
    typeof record === 'object' && record !== null
      ? dynamodbChange(record as DynamoDBStreamRecordLike)
      : {
          item: undefined,
          op: 'upsert' as const,
          sourceSeq: '',
          raw: record,
          problem: `a stream record must be a JSON object, got ${record === null ? 'null' : typeof record}`,
        },
  );
  return { changes, batchId: dynamodbBatchId(streamArn) };
}

/** The batch id of every staging object captured from one stream: `ddb-<hash of the stream ARN>`. */
export function dynamodbBatchId(streamArn: string): string {
  return `ddb-${shortHash(streamArn)}`;
}

/**
 * Cosmos DB change-feed documents as source changes. The batch is named by its content
 * (`cosmos-<cosmosBatchName>`), never by a label: `_lsn` values of different physical partitions
 * coincide, so a name from the feed range's positions alone would let two batches overwrite each other.
 */
export function cosmosDocumentChanges(documents: unknown, label?: string): { changes: SourceChange[]; batchId: string } {
  if (!Array.isArray(documents)) throw new UsageError('Cosmos DB change-feed input must be a JSON array of documents');
  // A label (a caller's name for the run) may prefix the name; the content hash always follows it.
  const name = label === undefined ? cosmosBatchName(documents) : `${label}-${cosmosBatchName(documents)}`;
  return { changes: documents.map((d) => cosmosChange(d)), batchId: `cosmos-${name}` };
}

/**
 * A hash of the batch's (id, position) pairs: a re-delivered batch gets the same name (and overwrites),
 * a different batch never collides. Shared by the Azure Function and the CLI. Both change-feed shapes count
 * (latest version: `id`, `_lsn`; all versions and deletes: the id of `current`/`previous`, `metadata.lsn`).
 */
export function cosmosBatchName(documents: readonly unknown[]): string {
  const hash = createHash('sha256');
  for (const d of documents) {
    const doc = (typeof d === 'object' && d !== null ? d : {}) as Record<string, unknown>;
    const metadata = (typeof doc.metadata === 'object' && doc.metadata !== null ? doc.metadata : {}) as Record<string, unknown>;
    const inner = (doc.current ?? doc.previous ?? {}) as Record<string, unknown>;
    const id = doc.id ?? inner.id ?? metadata.id ?? null;
    const lsn = doc._lsn ?? metadata.lsn ?? null;
    hash.update(`${JSON.stringify(id)}\u0000${JSON.stringify(lsn)}\u0001`);
  }
  return `b${hash.digest('hex').slice(0, 16)}`;
}

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}
