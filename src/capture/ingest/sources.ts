import { createHash, type Hash } from 'node:crypto';
import { UsageError } from '../../core/errors.js';
import { cosmosChange } from '../../core/model/cosmos.js';
import { type DynamoDBStreamRecordLike, dynamodbChange } from '../../core/model/dynamodb.js';
import type { SourceChange } from '../../core/model/normalise.js';

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
 * A hash of the batch's whole documents, in order: a re-delivered batch gets the same name (and
 * overwrites), a batch that differs in anything never collides, even when its documents carry no `id` and
 * share `_lsn`s with another's (different physical partitions). Each document is hashed as canonical JSON
 * (object keys sorted, so the key order a client chose does not change the name), written without recursion
 * so that a deeply nested document is hashed like any other. Shared by the Azure Function and the CLI.
 */
export function cosmosBatchName(documents: readonly unknown[]): string {
  const hash = createHash('sha256');
  for (const document of documents) {
    hashCanonicalJson(hash, document);
    hash.update('\n');
  }
  return `b${hash.digest('hex').slice(0, 16)}`;
}

/** A literal piece of output, next to values still to be written on the work stack. */
class Literal {
  constructor(readonly text: string) {}
}

/**
 * Feeds `value` to the hash as JSON with sorted object keys (properties whose value is undefined are left
 * out and undefined array elements written as null, as JSON.stringify does), using an explicit stack.
 */
function hashCanonicalJson(hash: Hash, value: unknown): void {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const next = stack.pop();
    if (next instanceof Literal) {
      hash.update(next.text);
    } else if (Array.isArray(next)) {
      stack.push(new Literal(']'));
      for (let i = next.length - 1; i >= 0; i--) {
        stack.push(next[i] === undefined ? null : next[i]);
        if (i > 0) stack.push(new Literal(','));
      }
      stack.push(new Literal('['));
    } else if (typeof next === 'object' && next !== null) {
      const record = next as Record<string, unknown>;
      const keys = Object.keys(record)
        .filter((k) => record[k] !== undefined)
        .sort();
      stack.push(new Literal('}'));
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i] as string;
        stack.push(record[key]);
        stack.push(new Literal(`${i > 0 ? ',' : ''}${JSON.stringify(key)}:`));
      }
      stack.push(new Literal('{'));
    } else {
      // strings (lone surrogates escaped), numbers, booleans, null; a bigint as its digits; anything else as null
      hash.update(typeof next === 'bigint' ? next.toString() : (JSON.stringify(next) ?? 'null'));
    }
  }
}

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}
