import type { StreamBatchInfo } from '../../ports/StreamBatchReader.js';
import { FailureMessageError } from './errors.js';

/**
 * Reads an on-failure message body: the whole invocation record Lambda sends to SQS/SNS
 * (`{requestContext, responseContext, version, timestamp, DDBStreamBatchInfo}`) or the
 * `DDBStreamBatchInfo` object alone. Throws FailureMessageError naming the missing field.
 */
export function parseFailureMessage(body: unknown): StreamBatchInfo {
  let value = body;
  if (typeof value === 'string') {
    const text = value;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new FailureMessageError(`an on-failure message must be JSON, got ${JSON.stringify(text.slice(0, 80))}`, {
        cause: error,
      });
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new FailureMessageError('an on-failure message must be a JSON object with DDBStreamBatchInfo');
  }
  const record = value as Record<string, unknown>;
  const info = (record.DDBStreamBatchInfo ?? record) as Record<string, unknown>;
  const text = (name: string): string => {
    const v = info[name];
    if (typeof v !== 'string' || v === '') {
      throw new FailureMessageError(
        `DDBStreamBatchInfo.${name} is missing (the message is not a DynamoDB Streams on-failure record)`,
      );
    }
    return v;
  };
  const streamArn = text('streamArn');
  const shardId = text('shardId');
  const startSequenceNumber = text('startSequenceNumber');
  const endSequenceNumber = text('endSequenceNumber');
  for (const [name, seq] of [
    ['startSequenceNumber', startSequenceNumber],
    ['endSequenceNumber', endSequenceNumber],
  ] as const) {
    if (!/^\d{1,64}$/.test(seq))
      throw new FailureMessageError(`DDBStreamBatchInfo.${name} must be decimal digits, got ${JSON.stringify(seq)}`);
  }
  if (BigInt(startSequenceNumber) > BigInt(endSequenceNumber)) {
    throw new FailureMessageError(
      `DDBStreamBatchInfo: startSequenceNumber ${startSequenceNumber} is after endSequenceNumber ${endSequenceNumber}`,
    );
  }
  const optionalText = (name: string) => (typeof info[name] === 'string' ? (info[name] as string) : undefined);
  return {
    streamArn,
    shardId,
    startSequenceNumber,
    endSequenceNumber,
    ...(typeof info.batchSize === 'number' ? { batchSize: info.batchSize } : {}),
    ...(optionalText('approximateArrivalOfFirstRecord')
      ? { approximateArrivalOfFirstRecord: optionalText('approximateArrivalOfFirstRecord') }
      : {}),
    ...(optionalText('approximateArrivalOfLastRecord')
      ? { approximateArrivalOfLastRecord: optionalText('approximateArrivalOfLastRecord') }
      : {}),
  };
}
