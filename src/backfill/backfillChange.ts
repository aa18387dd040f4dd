import { cosmosChange } from '../model/cosmos.js';
import type { SourceChange } from '../model/normalise.js';

/**
 * The feed position every backfilled version gets. A query returns the current document without a feed
 * position (Cosmos adds `_lsn` only in the change feed; a DynamoDB query has no sequence number), and no
 * number derived from `_ts` or the clock can be guaranteed to stay below the positions the feed hands out
 * (partition LSNs start at 1). So a backfilled version ranks below every captured version of the same
 * message: backfill fills what capture never staged (staging lost, capture started late) and never
 * overrides a change the feed did deliver.
 */
export const BACKFILL_POSITION = '0';

/** A document read from the source as a change at the backfill position. */
export function backfillChange(source: 'dynamodb' | 'cosmos', document: unknown): SourceChange {
  if (source === 'cosmos') {
    // cosmosChange applies the soft-delete flags (isDeleted / deleted) and keeps `_ts`, `_etag`, `_rid`
    // under attributes._cosmos; only the position is ours.
    return { ...cosmosChange(document, BACKFILL_POSITION), sourceSeq: BACKFILL_POSITION };
  }
  const item =
    typeof document === 'object' && document !== null && !Array.isArray(document)
      ? (document as Record<string, unknown>)
      : undefined;
  // An item that still exists in the table is live: DynamoDB has no soft-delete convention in the core.
  return { item, op: 'upsert', sourceSeq: BACKFILL_POSITION, raw: document };
}
