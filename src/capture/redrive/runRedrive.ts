import { errorMessage } from '../../core/errors.js';
import type { FailureMessage, FailureMessageSource } from '../../ports/FailureMessageSource.js';
import type { StreamBatchReader } from '../../ports/StreamBatchReader.js';
import type { ObjectStore } from '../../ports/store/ObjectStore.js';
import { mergeQuarantine, type QuarantineReason } from '../ingest/quarantineSummary.js';
import { type StagedDay, stagedDays } from '../ingest/stagedDays.js';
import { parseFailureMessage } from './batchInfo.js';
import { type RedriveBatchResult, type RedriveOptions, redriveBatch } from './redriveBatch.js';

export interface RedriveMessageResult extends Omit<RedriveBatchResult, 'status'> {
  readonly message: string;
  readonly status: RedriveBatchResult['status'] | 'invalid';
  /** Whether the message was removed from its source. */
  readonly acknowledged: boolean;
}

export interface RedriveSummary {
  readonly ok: boolean;
  readonly messages: number;
  readonly staged: number;
  readonly quarantined: number;
  readonly quarantine: readonly QuarantineReason[];
  /** Every (tenant, day) partition the run staged into, ordered by day then tenant: the days to compact and check. */
  readonly days: readonly StagedDay[];
  readonly results: readonly RedriveMessageResult[];
}

export interface RedriveRequest extends RedriveOptions {
  readonly store: ObjectStore;
  readonly reader: StreamBatchReader;
  readonly messages: FailureMessageSource;
  /** Stop after this many messages. Default: until the source is empty. */
  readonly maxMessages?: number;
  readonly onResult?: (result: RedriveMessageResult) => void;
}

/**
 * Redrives every on-failure message of a source, one batch at a time. A message is acknowledged (deleted
 * from the queue) only when its batch is staged; one that aged out, failed or is not a stream batch stays
 * where it is and makes the run not ok. A message seen twice (SQS handed it back) ends the run.
 */
export async function runRedrive(request: RedriveRequest): Promise<RedriveSummary> {
  const results: RedriveMessageResult[] = [];
  const seen = new Set<string>();
  const max = request.maxMessages ?? Number.POSITIVE_INFINITY;
  receiving: while (results.length < max) {
    const batch = await request.messages.receive();
    if (batch.length === 0) break;
    for (const message of batch) {
      if (seen.has(message.id) || results.length >= max) break receiving;
      seen.add(message.id);
      const result = await redriveMessage(request, message);
      results.push(result);
      request.onResult?.(result);
    }
  }
  const quarantine = mergeQuarantine(results.map((r) => r.quarantine));
  return {
    ok: results.every((r) => r.status === 'staged') && quarantine.length === 0,
    messages: results.length,
    staged: results.reduce((n, r) => n + r.staged, 0),
    quarantined: results.reduce((n, r) => n + r.quarantined, 0),
    quarantine,
    days: stagedDays(results.flatMap((r) => r.objects)),
    results,
  };
}

async function redriveMessage(request: RedriveRequest, message: FailureMessage): Promise<RedriveMessageResult> {
  let info: ReturnType<typeof parseFailureMessage>;
  try {
    info = parseFailureMessage(message.body);
  } catch (error) {
    return {
      message: message.id,
      batch: '',
      status: 'invalid',
      received: 0,
      staged: 0,
      quarantined: 0,
      quarantine: [],
      objects: [],
      days: [],
      acknowledged: false,
      error: errorMessage(error),
    };
  }
  const result = await redriveBatch(request.store, request.reader, info, request);
  if (result.status !== 'staged') return { ...result, message: message.id, acknowledged: false };
  await request.messages.acknowledge(message);
  return { ...result, message: message.id, acknowledged: true };
}

/** On-failure message bodies already in hand (a file, an SQS event): acknowledging only records it. */
export class ListedFailureMessages implements FailureMessageSource {
  readonly acknowledged: string[] = [];
  private handedOut = false;
  constructor(
    readonly location: string,
    private readonly messages: readonly FailureMessage[],
  ) {}
  async receive(): Promise<readonly FailureMessage[]> {
    if (this.handedOut) return [];
    this.handedOut = true;
    return this.messages;
  }
  async acknowledge(message: FailureMessage): Promise<void> {
    this.acknowledged.push(message.id);
  }
}
