import { CreateTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type _Record as StreamRecord,
} from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBStreamEvent } from 'aws-lambda';
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
 * A stream event from records exactly as GetRecords returned them through the SDK: no casing or type
 * conversion (`userIdentity.{Type,PrincipalId}`, Date times and binary bytes stay as they are), plus
 * the `eventSourceARN` Lambda adds. The code under test reads this shape itself.
 */
export function streamEvent(records: readonly StreamRecord[], streamArn: string): DynamoDBStreamEvent {
  return { Records: records.map((r) => ({ ...r, eventSourceARN: streamArn })) } as unknown as DynamoDBStreamEvent;
}

/** The stream's shard ids (DescribeStream). */
export async function streamShards(endpoint: string, streamArn: string): Promise<string[]> {
  const client = new DynamoDBStreamsClient({ endpoint, region: REGION, credentials: LOCAL_CREDENTIALS });
  try {
    const described = await client.send(new DescribeStreamCommand({ StreamArn: streamArn }));
    return (described.StreamDescription?.Shards ?? []).map((s) => s.ShardId as string);
  } finally {
    client.destroy();
  }
}
