import { cosmosChange } from '../../core/model/cosmos.js';
import type { SourceChange } from '../../core/model/normalise.js';
import { BACKFILL_SEQ } from '../../core/staging/layout.js';

/**
 * The feed position every backfilled version gets. A query returns the current document without a feed
 * position (Cosmos adds `_lsn` only in the change feed; a DynamoDB query has no sequence number), and feed
 * positions are not times, so no number can place a read among them. A backfilled version is ordered by
 * time instead: its `ingested_at` is when its image was true (a table read: when the read started; an
 * export: its time or the item's write time), and the merge puts it above the captured versions of the
 * message whose latest was captured before that instant, below those captured at or after it, and a later
 * backfill above an earlier one (compactionSql.ts classifiedRowsSql; docs/ARCHITECTURE.md, "Order by time").
 */
export const BACKFILL_POSITION = BACKFILL_SEQ;

/** A document read from the source as a change at the backfill position (timed by the run's read start). */
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
