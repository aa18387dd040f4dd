import { CreateTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type _Record as StreamRecord,
} from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { REGION } from './localAws.js';

export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

/** A messages table as the app has it (tenantId + messageId), streaming NEW_AND_OLD_IMAGES; returns the stream ARN. */
export async function createMessagesTable(client: DynamoDBClient, name: string): Promise<string> {
  const out = await client.send(
    new CreateTableCommand({
      TableName: name,
      KeySchema: [
        { AttributeName: 'tenantId', KeyType: 'HASH' },
        { AttributeName: 'messageId', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: 'tenantId', AttributeType: 'S' },
        { AttributeName: 'messageId', AttributeType: 'S' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' },
    }),
  );
  const arn = out.TableDescription?.LatestStreamArn;
  if (!arn) throw new Error(`table ${name} has no stream`);
  return arn;
}

/** Every record of the stream so far, shard by shard from TRIM_HORIZON (DescribeStream, GetShardIterator, GetRecords). */
export async function readStream(endpoint: string, streamArn: string): Promise<StreamRecord[]> {
  const client = new DynamoDBStreamsClient({ endpoint, region: REGION, credentials: LOCAL_CREDENTIALS });
  try {
    const described = await client.send(new DescribeStreamCommand({ StreamArn: streamArn }));
    const records: StreamRecord[] = [];
    for (const shard of described.StreamDescription?.Shards ?? []) {
      let iterator = (
        await client.send(
          new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' }),
        )
      ).ShardIterator;
      while (iterator) {
        const page = await client.send(new GetRecordsCommand({ ShardIterator: iterator }));
        records.push(...(page.Records ?? []));
        // An open shard always hands out a next iterator; an empty page means we are at its end.
        if ((page.Records ?? []).length === 0) break;
        iterator = page.NextShardIterator;
      }
    }
    return records;
  } finally {
    client.destroy();
  }
}

/**
 * Stream records as Lambda delivers them in a DynamoDBStreamEvent: the SDK gives binary values as bytes
 * and times as Date, the Lambda event has base64 text and epoch seconds.
 */
export function lambdaEvent(records: readonly StreamRecord[], streamArn: string): DynamoDBStreamEvent {
  return {
    Records: records.map(
      (r): DynamoDBRecord => ({
        eventID: r.eventID,
        eventName: r.eventName as DynamoDBRecord['eventName'],
        eventVersion: r.eventVersion ?? '1.1',
        eventSource: 'aws:dynamodb',
        awsRegion: REGION,
        eventSourceARN: streamArn,
        ...(r.userIdentity ? { userIdentity: { type: r.userIdentity.Type, principalId: r.userIdentity.PrincipalId } } : {}),
        dynamodb: lambdaJson({
          ApproximateCreationDateTime: r.dynamodb?.ApproximateCreationDateTime
            ? Math.floor(r.dynamodb.ApproximateCreationDateTime.getTime() / 1000)
            : undefined,
          Keys: r.dynamodb?.Keys,
          NewImage: r.dynamodb?.NewImage,
          OldImage: r.dynamodb?.OldImage,
          SequenceNumber: r.dynamodb?.SequenceNumber,
          SizeBytes: r.dynamodb?.SizeBytes,
          StreamViewType: r.dynamodb?.StreamViewType,
        }) as DynamoDBRecord['dynamodb'],
      }),
    ),
  };
}

function lambdaJson(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (Array.isArray(value)) return value.map(lambdaJson);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, lambdaJson(v)]),
    );
  }
  return value;
}
