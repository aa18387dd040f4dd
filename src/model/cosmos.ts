import type { StagingOp } from '../schema/messageSchema.js';
import type { SourceChange } from './normalise.js';

/** Cosmos DB system properties. `_lsn` orders versions; the others are metadata, not message fields. */
const SYSTEM_FIELDS = ['_rid', '_self', '_etag', '_attachments', '_ts', '_lsn'] as const;

/**
 * A Cosmos DB change-feed document as a source change. Two feed modes:
 *
 * Latest version (the default): the document itself.
 * - `_lsn` is the position: it increases with every change of the document.
 * - A truthy `isDeleted` or `deleted` flag is a user (soft) delete.
 * - A `ttl` field is an expiry setting, not a delete; Cosmos removes expired items without a feed entry.
 * - `_ts` (last write, epoch seconds) is never used as the creation time.
 *
 * All versions and deletes: `{current, previous?, metadata: {operationType, lsn, timeToLiveExpired?}}`.
 * - `create` / `replace` stage `current` (an upsert; soft-delete flags still apply);
 * - `delete` stages `previous` as a user delete, or as an expiry when `timeToLiveExpired` is true
 *   (Cosmos removed it by TTL, the message stays in the lake). Without `previous` the message's tenant and
 *   day are unknown: the record is quarantined, naming the missing field.
 *
 * The system properties are kept in attributes under `_cosmos` (only `_lsn` is consumed).
 */
export function cosmosChange(document: unknown, fallbackSeq?: string): SourceChange {
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    return {
      item: undefined,
      op: 'upsert',
      sourceSeq: fallbackSeq ?? '',
      raw: document,
      problem: `a change-feed document must be a JSON object, got ${document === null ? 'null' : Array.isArray(document) ? 'an array' : typeof document}`,
    };
  }
  const doc = document as Record<string, unknown>;
  if (isAllVersionsShape(doc)) return allVersionsChange(doc, fallbackSeq);
  const lsn = doc._lsn ?? fallbackSeq;
  const deleted = doc.isDeleted === true || doc.deleted === true;
  const sourceSeq = lsn === undefined || lsn === null ? '' : String(lsn);
  return {
    item: itemOf(doc),
    op: deleted ? 'delete' : 'upsert',
    sourceSeq,
    raw: document,
    positionField: '_lsn',
    ...(sourceSeq === ''
      ? { problem: 'no _lsn (the change-feed position; only documents read from the change feed carry it)' }
      : {}),
  };
}

/** The all-versions-and-deletes envelope: `metadata.operationType` next to `current`/`previous`. */
function isAllVersionsShape(doc: Record<string, unknown>): boolean {
  const metadata = doc.metadata;
  return (
    typeof metadata === 'object' &&
    metadata !== null &&
    typeof (metadata as Record<string, unknown>).operationType === 'string' &&
    ('current' in doc || 'previous' in doc)
  );
}

function allVersionsChange(doc: Record<string, unknown>, fallbackSeq?: string): SourceChange {
  const metadata = doc.metadata as Record<string, unknown>;
  const operation = String(metadata.operationType).toLowerCase();
  const lsn = metadata.lsn ?? fallbackSeq;
  const sourceSeq = lsn === undefined || lsn === null ? '' : String(lsn);
  const base = { sourceSeq, raw: doc, positionField: 'metadata.lsn' };
  const noPosition =
    sourceSeq === '' ? { problem: 'no metadata.lsn (all-versions-and-deletes change without its position)' } : {};
  if (operation === 'create' || operation === 'replace') {
    const current = objectOf(doc.current);
    if (!current) {
      return { ...base, item: undefined, op: 'upsert', problem: `all-versions-and-deletes ${operation} has no current document` };
    }
    const deleted = current.isDeleted === true || current.deleted === true;
    return { ...base, item: itemOf(current), op: deleted ? 'delete' : 'upsert', ...noPosition };
  }
  if (operation === 'delete') {
    const op: StagingOp = metadata.timeToLiveExpired === true ? 'expire' : 'delete';
    const previous = objectOf(doc.previous);
    if (!previous) {
      return {
        ...base,
        item: undefined,
        op,
        problem:
          'all-versions-and-deletes delete has no previous document (the deleted version), so its tenant and day are unknown',
      };
    }
    return { ...base, item: itemOf(previous), op, ...noPosition };
  }
  return {
    ...base,
    item: undefined,
    op: 'upsert',
    problem: `all-versions-and-deletes metadata.operationType must be create, replace or delete, got ${JSON.stringify(metadata.operationType)}`,
  };
}

function objectOf(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length > 0
    ? (value as Record<string, unknown>)
    : undefined;
}

/** The document's fields, with the system properties moved under `_cosmos` (`_lsn` is consumed). */
function itemOf(doc: Record<string, unknown>): Record<string, unknown> {
  const item: Record<string, unknown> = {};
  const system: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(doc)) {
    if ((SYSTEM_FIELDS as readonly string[]).includes(key)) {
      if (key !== '_lsn') system[key] = value;
    } else item[key] = value;
  }
  if (Object.keys(system).length > 0) item._cosmos = system;
  return item;
}
