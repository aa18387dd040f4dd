import {
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type _Record as StreamRecord,
} from '@aws-sdk/client-dynamodb-streams';
import { RecordsAgedOutError, RedriveError } from '../../src/ports/errors.js';
import { describeBatch, type StreamBatchInfo, type StreamBatchReader } from '../../src/ports/StreamBatchReader.js';

export interface DynamoStreamBatchReaderOptions {
  /** An existing client; otherwise one is built from region/endpoint. */
  readonly client?: DynamoDBStreamsClient;
  readonly region?: string;
  readonly endpoint?: string;
  /** Empty GetRecords pages tolerated in a row before the batch counts as incomplete. Default 5. */
  readonly maxEmptyPages?: number;
}

/** The service's names for "those records are gone". */
const AGED_OUT = new Set(['TrimmedDataAccessException', 'ExpiredIteratorException', 'ResourceNotFoundException']);

/**
 * Reads exactly one batch back from DynamoDB Streams: GetShardIterator AT_SEQUENCE_NUMBER
 * startSequenceNumber, then GetRecords until endSequenceNumber (sequence numbers compare as numbers).
 * Records are returned as the SDK gives them (GetRecords shape), unconverted.
 *
 * @example
 * const records = await new DynamoStreamBatchReader({ region: 'ap-northeast-1' }).readBatch(info);
 */
export class DynamoStreamBatchReader implements StreamBatchReader {
  private readonly client: DynamoDBStreamsClient;
  private readonly maxEmptyPages: number;

  constructor(options: DynamoStreamBatchReaderOptions = {}) {
    this.client = options.client ?? new DynamoDBStreamsClient({ region: options.region, endpoint: options.endpoint });
    this.maxEmptyPages = options.maxEmptyPages ?? 5;
  }

  async readBatch(info: StreamBatchInfo): Promise<StreamRecord[]> {
    const start = BigInt(info.startSequenceNumber);
    const end = BigInt(info.endSequenceNumber);
    let iterator = await this.call(info, () =>
      this.client.send(
        new GetShardIteratorCommand({
          StreamArn: info.streamArn,
          ShardId: info.shardId,
          ShardIteratorType: 'AT_SEQUENCE_NUMBER',
          SequenceNumber: info.startSequenceNumber,
        }),
      ),
    ).then((r) => r.ShardIterator);
    const records: StreamRecord[] = [];
    let empty = 0;
    while (iterator) {
      const current = iterator;
      const page = await this.call(info, () => this.client.send(new GetRecordsCommand({ ShardIterator: current })));
      const got = page.Records ?? [];
      empty = got.length === 0 ? empty + 1 : 0;
      for (const record of got) {
        const seq = BigInt(record.dynamodb?.SequenceNumber ?? '-1');
        if (seq > end) return this.checked(info, records, start);
        records.push(record);
        if (seq === end) return this.checked(info, records, start);
      }
      if (empty >= this.maxEmptyPages) break;
      iterator = page.NextShardIterator;
    }
    // The shard closed (or stayed empty) before endSequenceNumber: part of the batch is not there.
    if (records.length === 0) throw new RecordsAgedOutError('the stream returned none of its records');
    throw new RedriveError(
      `the stream returned records up to ${records[records.length - 1]?.dynamodb?.SequenceNumber} only, not through ${info.endSequenceNumber}`,
    );
  }

  private checked(info: StreamBatchInfo, records: StreamRecord[], start: bigint): StreamRecord[] {
    const first = records[0]?.dynamodb?.SequenceNumber;
    if (first === undefined || BigInt(first) !== start) {
      throw new RecordsAgedOutError(
        `the stream no longer starts at ${info.startSequenceNumber} (first record ${first ?? 'none'})`,
      );
    }
    return records;
  }

  private async call<T>(info: StreamBatchInfo, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (error) {
      const name = (error as { name?: string }).name ?? '';
      if (AGED_OUT.has(name)) {
        throw new RecordsAgedOutError(`the records are no longer in the stream (${name})`, {
          cause: error,
          context: { batch: describeBatch(info) },
        });
      }
      throw error;
    }
  }
}
