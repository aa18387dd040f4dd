/**
 * What Lambda's on-failure destination keeps of a failed DynamoDB Streams batch (`DDBStreamBatchInfo`):
 * where the records are in the stream, never the records themselves (read by src/capture/redrive/batchInfo.ts).
 */
export interface StreamBatchInfo {
  readonly streamArn: string;
  readonly shardId: string;
  readonly startSequenceNumber: string;
  readonly endSequenceNumber: string;
  readonly batchSize?: number;
  readonly approximateArrivalOfFirstRecord?: string;
  readonly approximateArrivalOfLastRecord?: string;
}

/**
 * Reads exactly one failed batch's records back from the stream (implemented in stores/dynamodb with the
 * DynamoDB Streams SDK). Records come back as the SDK returns them; the normaliser reads that shape as is.
 * Throws RecordsAgedOutError (./errors.ts) when the stream no longer holds them.
 */
export interface StreamBatchReader {
  readBatch(info: StreamBatchInfo): Promise<readonly unknown[]>;
}

/** `shardId start..end` of a batch, for messages. */
export function describeBatch(info: StreamBatchInfo): string {
  return `${info.shardId} ${info.startSequenceNumber}..${info.endSequenceNumber} of ${info.streamArn}`;
}
