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
 * All versions and deletes: `{current?, previous?, metadata: {operationType, lsn, crts, previousImageLSN?,
 * timeToLiveExpired?, id?, partitionKey?}}` (docs/AZURE.md, "All versions and deletes"); `metadata.lsn` is
 * the position.
 * - `create` / `replace` stage `current` (an upsert; soft-delete flags still apply); a replace's `previous`
 *   is its previous image: when it names another day, the message moves (normaliseChange's move-out);
 * - `delete` is a user delete, or an expiry when `metadata.timeToLiveExpired` is true. With a `previous` image
 *   that image is staged. Without one (Microsoft documents a delete as metadata only, the Functions samples
 *   show `current: {}`) the message is named by `metadata.id` (or a top-level `id`), its tenant comes from
 *   `metadata.partitionKey` when the partition key property is one of FIELD_MAPPING's tenant fields, and its
 *   creation time from any field the change carries (a `created_at` beside `metadata`); without a creation
 *   time its day (`dt` partition) is unknown: capture keeps it under `pending/deletes/` and the nightly planner
 *   places it in the day the table holds the message in (src/lake/pendingDeletes.ts). An expiry without `previous` is
 *   quarantined too: it has no version of the message to stage (staging one would blank the row).
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

/**
 * The all-versions-and-deletes envelope: a string `metadata.operationType` next to `current`/`previous`, or
 * alone (a metadata-only delete); a latest-version document that happens to have such a field has `_lsn`.
 */
function isAllVersionsShape(doc: Record<string, unknown>): boolean {
  const metadata = doc.metadata;
  return (
    typeof metadata === 'object' &&
    metadata !== null &&
    typeof (metadata as Record<string, unknown>).operationType === 'string' &&
    ('current' in doc || 'previous' in doc || !('_lsn' in doc))
  );
}

/** Fields of an all-versions-and-deletes change besides the envelope's own (e.g. a `created_at` sent with a delete). */
const ENVELOPE_FIELDS = ['current', 'previous', 'metadata'];

/** Quarantine reasons of a delete that carries no previous image, per canonical field it lacks. */
const METADATA_DELETE_MISSING = {
  tenant_id:
    'delete without a tenant: metadata.partitionKey names no tenant field (the partition key must be the tenant, a field FIELD_MAPPING.tenant_id lists)',
  message_id: 'delete without a message id: no metadata.id or id that FIELD_MAPPING.message_id lists',
  created_at:
    'delete without a creation time: the change carries no previous image and no creation time, so it names no day (dt) partition; capture keeps it under pending/deletes/ until the nightly planner finds the message in the table',
} as const;

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
    // a replace's previous image (when the container keeps it) says where the message was before
    const previous = operation === 'replace' ? objectOf(doc.previous) : undefined;
    return {
      ...base,
      item: itemOf(current),
      op: deleted ? 'delete' : 'upsert',
      ...(previous ? { previousItem: itemOf(previous) } : {}),
      ...noPosition,
    };
  }
  if (operation === 'delete') {
    const expired = metadata.timeToLiveExpired === true;
    const op: StagingOp = expired ? 'expire' : 'delete';
    const previous = objectOf(doc.previous);
    if (previous) return { ...base, item: itemOf({ ...deletedIdentity(doc, metadata), ...previous }), op, ...noPosition };
    if (expired) {
      return {
        ...base,
        item: undefined,
        op,
        problem:
          'TTL expiry (metadata.timeToLiveExpired) without a previous image: no version of the message to stage (an expiry keeps the message in the lake as last captured)',
      };
    }
    return { ...base, item: itemOf(deletedIdentity(doc, metadata)), op, missing: METADATA_DELETE_MISSING, ...noPosition };
  }
  return {
    ...base,
    item: undefined,
    op: 'upsert',
    problem: `all-versions-and-deletes metadata.operationType must be create, replace or delete, got ${JSON.stringify(metadata.operationType)}`,
  };
}

/**
 * What a delete says about the deleted item besides a previous image: fields sent beside the envelope, a
 * non-empty `current`, the partition key's properties (`metadata.partitionKey`, every level of a hierarchical
 * key) and its id (`metadata.id`, else a top-level `id`).
 */
function deletedIdentity(doc: Record<string, unknown>, metadata: Record<string, unknown>): Record<string, unknown> {
  const extras = Object.fromEntries(Object.entries(doc).filter(([key]) => !ENVELOPE_FIELDS.includes(key)));
  const id = metadata.id ?? doc.id;
  return {
    ...extras,
    ...(objectOf(doc.current) ?? {}),
    ...(objectOf(metadata.partitionKey) ?? {}),
    ...(id === undefined || id === null ? {} : { id }),
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
