import type { SourceChange } from '../core/model/normalise.js';

/** The JST day a backfill reads: the date and the UTC instants [startMs, endMs) it covers. */
export interface DayRange {
  readonly date: string;
  readonly startMs: number;
  readonly endMs: number;
}

/** One page of a reader, with the point to resume after it (readers that can resume set `cursor`). */
export interface SourcePage {
  readonly items: readonly unknown[];
  /** Opaque to the backfill: handed back to `pages(…, resumeFrom)` after an interruption. */
  readonly cursor?: string;
  /** Read capacity the page cost (DynamoDB ConsumedCapacity), for progress lines. */
  readonly consumedCapacity?: number;
}

/**
 * Reads one tenant's messages straight from the operational store (Cosmos DB container, DynamoDB table or
 * export). Implementations live at the edge (`stores/cosmos`, `stores/dynamodb`) when they need a cloud SDK;
 * the backfill (src/backfill) itself is cloud-neutral.
 *
 * A reader may return a few items outside the day (a query on ISO strings with different UTC offsets has
 * to be widened); the backfill keeps exactly the tenant's JST day after normalising.
 */
export interface SourceReader {
  readonly source: 'dynamodb' | 'cosmos';
  /** Where it reads, for logs (never credentials); also checked before resuming a checkpoint. */
  readonly location: string;
  /**
   * The tenant's items created in the day, one page at a time; from `resumeFrom` (a page's cursor) on.
   * With `untenanted`, also the items whose tenant cannot be read (no tenant field FIELD_MAPPING names, or
   * one that is no valid tenant id), in whichever day, so that the backfill quarantines them instead of
   * never seeing them (a FIELD_MAPPING that matches nothing). The backfill asks for them in one tenant's
   * pass only; readers that cannot find them cheaply ignore the option.
   */
  pages(
    tenant: string,
    day: DayRange,
    resumeFrom?: string,
    options?: { readonly untenanted?: boolean },
  ): AsyncIterable<readonly unknown[] | SourcePage>;
  /** A read item as a change, when the reader knows more than "this item exists" (an export's deletes). */
  change?(item: unknown): SourceChange;
  /**
   * How a read item is named in a quarantine summary's example, when its position does not name it (every
   * backfilled version is at position 0): the table's primary key, an export's data file and line.
   */
  describe?(item: unknown): string | undefined;
}

/** A source that streams every version it holds once, in order (a DynamoDB export): read in one pass. */
export interface StreamingSourceReader extends SourceReader {
  versions(): AsyncIterable<unknown>;
  /**
   * Put in its objects' names (`backfill-<source>-<stagingName>-<date>-<tenant>-p<n>`), so a re-run from the
   * same source replaces its own objects and never those of a table backfill or of another export prefix,
   * which may not be compacted yet (the merge orders all of them by time).
   */
  readonly stagingName?: string;
}

export function isStreamingReader(reader: SourceReader): reader is StreamingSourceReader {
  return typeof (reader as Partial<StreamingSourceReader>).versions === 'function';
}
