import type { SourceChange } from './normalise.js';

/** Cosmos DB system properties. `_lsn` orders versions; the others are metadata, not message fields. */
const SYSTEM_FIELDS = ['_rid', '_self', '_etag', '_attachments', '_ts', '_lsn'] as const;

/**
 * A Cosmos DB change-feed document as a source change.
 * - `_lsn` is the position: it increases with every change of the document.
 * - A truthy `isDeleted` or `deleted` flag is a user (soft) delete.
 * - A `ttl` field is an expiry setting, not a delete; Cosmos removes expired items without a feed entry.
 * - `_ts` (last write, epoch seconds) is never used as the creation time.
 * The system properties are kept in attributes under `_cosmos` (only `_lsn` is consumed).
 */
export function cosmosChange(document: unknown, fallbackSeq?: string): SourceChange {
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    return { item: undefined, op: 'upsert', sourceSeq: fallbackSeq ?? '', raw: document };
  }
  const doc = document as Record<string, unknown>;
  const lsn = doc._lsn ?? fallbackSeq;
  const deleted = doc.isDeleted === true || doc.deleted === true;
  const item: Record<string, unknown> = {};
  const system: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(doc)) {
    if ((SYSTEM_FIELDS as readonly string[]).includes(key)) {
      if (key !== '_lsn') system[key] = value;
    } else item[key] = value;
  }
  if (Object.keys(system).length > 0) item._cosmos = system;
  return {
    item,
    op: deleted ? 'delete' : 'upsert',
    sourceSeq: lsn === undefined || lsn === null ? '' : String(lsn),
    raw: document,
  };
}
