/** The JST day a backfill reads: the date and the UTC instants [startMs, endMs) it covers. */
export interface DayRange {
  readonly date: string;
  readonly startMs: number;
  readonly endMs: number;
}

/**
 * Reads one tenant's messages straight from the operational store (Cosmos DB container, DynamoDB table).
 * Implementations live at the edge (`stores/cosmos`, `stores/dynamodb`) because they need the cloud SDK;
 * the backfill itself is cloud-neutral.
 *
 * A reader may return a few items outside the day (a query on ISO strings with different UTC offsets has
 * to be widened); the backfill keeps exactly the tenant's JST day after normalising.
 */
export interface SourceReader {
  readonly source: 'dynamodb' | 'cosmos';
  /** Where it reads, for logs (never credentials). */
  readonly location: string;
  /** The tenant's items created in the day, as plain JSON objects, one page at a time. */
  pages(tenant: string, day: DayRange): AsyncIterable<readonly unknown[]>;
}
