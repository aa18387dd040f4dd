import type { RecordsAgedOutError } from '../../ports/errors.js';
import { describeBatch, type StreamBatchInfo } from '../../ports/StreamBatchReader.js';

/**
 * Where the advice's incremental exports go, in the lake bucket. One prefix for every aged-out batch: a
 * backfill from it reads every window exported so far, and a re-run after the next batch's export replaces
 * its own objects (named by the prefix) with a superset.
 */
export const STREAM_GAP_EXPORT_PREFIX = 'exports/stream-gaps';

/** DynamoDB refuses an incremental export shorter than 15 minutes. */
const MIN_EXPORT_PERIOD_MS = 15 * 60 * 1000;
const MINUTE_MS = 60 * 1000;

export interface AgedOutAdviceOptions {
  /** The lake bucket (S3_BUCKET_NAME) the export is written to; default the shell variable `"$S3_BUCKET_NAME"`. */
  readonly bucket?: string;
}

/**
 * Names the batch, says why its records are gone and gives the exact commands that bring back its time
 * window: an incremental export of the table (point-in-time recovery) from the minute of the batch's first
 * record (`approximateArrivalOfFirstRecord`, the record's ApproximateCreationDateTime) to past its last
 * (ExportToTime is exclusive; the period is at least the 15 minutes DynamoDB requires), then a backfill of
 * every tenant-day that export holds. An export item carries its write time, so items of other batches in
 * the window change nothing that was captured after them (docs/ARCHITECTURE.md, "Order by time").
 *
 * @example
 * agedOutAdvice(info, error, { bucket: 'makoto-lake' }) // "batch shardId-… 100..200 of arn:…: … aws dynamodb export-table-to-point-in-time …"
 */
export function agedOutAdvice(info: StreamBatchInfo, error: RecordsAgedOutError, options: AgedOutAdviceOptions = {}): string {
  const first = parseTime(info.approximateArrivalOfFirstRecord);
  const last = parseTime(info.approximateArrivalOfLastRecord) ?? first;
  const gone = `batch ${describeBatch(info)}: ${error.message}. DynamoDB Streams keeps records 24 hours`;
  if (first === undefined || last === undefined) {
    return (
      `${gone}; the message names no record times, so bring the days back from the table's current state: ` +
      'npx makoto-lake backfill --source dynamodb DATE TENANTS, then npx makoto-lake compact DATE TENANTS'
    );
  }
  const from = Math.floor(first / MINUTE_MS) * MINUTE_MS;
  const to = Math.max(Math.floor(last / MINUTE_MS) * MINUTE_MS + MINUTE_MS, from + MIN_EXPORT_PERIOD_MS);
  const bucket = options.bucket ?? '"$S3_BUCKET_NAME"';
  return [
    `${gone}; its records were written ${info.approximateArrivalOfFirstRecord} to ${info.approximateArrivalOfLastRecord ?? info.approximateArrivalOfFirstRecord}.`,
    `Export ${iso(from)} to ${iso(to)} from the table (point-in-time recovery, kept up to 35 days) and, once the export is COMPLETED, backfill every tenant-day it holds:`,
    `  aws dynamodb export-table-to-point-in-time --table-arn ${tableArn(info.streamArn)} --s3-bucket ${bucket} --s3-prefix ${STREAM_GAP_EXPORT_PREFIX} --export-format DYNAMODB_JSON --export-type INCREMENTAL_EXPORT --incremental-export-specification ExportFromTime=${from / 1000},ExportToTime=${to / 1000},ExportViewType=NEW_AND_OLD_IMAGES`,
    `  npx makoto-lake backfill --source dynamodb '*' --from-export ${STREAM_GAP_EXPORT_PREFIX}`,
    'then run the npx makoto-lake compact command it prints for each day',
  ].join('\n');
}

function parseTime(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/** 2025-08-11T05:00:00Z (the command itself takes epoch seconds, as AWS's examples give them). */
function iso(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

/** The table's ARN from its stream's (`arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>`). */
function tableArn(streamArn: string): string {
  return /^(arn:[^:]+:dynamodb:[^:]*:[^:]*:table\/[^/]+)\/stream\//.exec(streamArn)?.[1] ?? '<table arn>';
}
