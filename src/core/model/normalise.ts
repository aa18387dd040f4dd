import { type StagedRecord, type StagingOp, textWidthProblem } from '../schema/messageSchema.js';
import { tenantIdProblem } from '../tenant.js';
import { jstDate } from '../time/jst.js';
import { parseInstant } from '../time/parseInstant.js';
import { type CanonicalField, DEFAULT_FIELD_MAPPING, type FieldMapping } from './fieldMapping.js';

/** One change from a feed, before normalisation. Source adapters (DynamoDB, Cosmos) produce these. */
export interface SourceChange {
  /** The item's image as plain JSON-able values (the new image, or the old one for deletes/expiries). */
  readonly item: Record<string, unknown> | undefined;
  readonly op: StagingOp;
  /** Position in the feed, decimal digits; later changes of one item have larger numbers. */
  readonly sourceSeq: string;
  /** Fields of `item` that are feed metadata, consumed by the adapter and not kept in attributes. */
  readonly consumed?: readonly string[];
  /** The record exactly as it arrived, kept for quarantine. */
  readonly raw: unknown;
  /** Set by the adapter when the record can never be accepted: the quarantine reason (names what is missing). */
  readonly problem?: string;
  /** The source's name for the position field, for reasons (`SequenceNumber`, `_lsn`). */
  readonly positionField?: string;
  /**
   * Set by the adapter when the change is only a partial identity (a Cosmos delete without its previous
   * image): the reason given, instead of the generic one, when one of these fields is not found.
   */
  readonly missing?: Partial<Record<'tenant_id' | 'message_id' | 'created_at', string>>;
  /**
   * How to name the record in a quarantine summary when its position does not (a backfilled item, always at
   * position 0): e.g. `key {"tenantId":"t1","messageId":"m1"}`.
   */
  readonly name?: string;
  /**
   * A backfilled version (position `0`) read from an export: the instant its image was true (the export's
   * time, or the item's write time in an incremental export), epoch ms, staged as its `ingested_at`: the
   * merge orders a backfilled version against captured ones by it (docs/ARCHITECTURE.md, "Order by time").
   * Unset, `ingested_at` is the context's time (for a table backfill, when the read started).
   */
  readonly versionAt?: number;
  /**
   * The item's image before this change, when the feed carries it (a DynamoDB MODIFY's OldImage, a Cosmos
   * all-versions-and-deletes replace's `previous`). When it names another partition (tenant, JST day of its
   * creation time) or another message id than `item`, the message moved: normalise returns a move-out for
   * the old place (docs/ARCHITECTURE.md, "One message, one partition").
   */
  readonly previousItem?: Record<string, unknown>;
}

/**
 * A user delete that names its message but not its creation time (a Cosmos metadata-only delete): every
 * field of its staging line except `dt` and `created_at`, which the nightly planner takes from the table's
 * row of the message (src/lake/pendingDeletes.ts).
 */
export type UnplacedDelete = Omit<StagedRecord, 'dt' | 'created_at'>;

export type NormaliseResult =
  | {
      ok: true;
      record: StagedRecord;
      /**
       * The message's removal from the partition it moved out of: its previous image as a `delete` at this
       * change's position and capture time, staged in the old day (docs/ARCHITECTURE.md, "One message, one
       * partition").
       */
      moveOut?: StagedRecord;
    }
  | {
      ok: false;
      reason: string;
      /** Set when the record is a user delete whose day is unknown: it waits for the planner to place it. */
      unplaced?: UnplacedDelete;
    };

export interface NormaliseContext {
  readonly source: 'dynamodb' | 'cosmos';
  readonly ingestedAt: number;
  readonly mapping?: FieldMapping;
}

/** Turns one change into a staging record, or says exactly why it cannot be accepted. Never throws. */
export function normaliseChange(change: SourceChange, context: NormaliseContext): NormaliseResult {
  try {
    const result = normalise(change, context);
    // text widths come from the schema: the same numbers the Synapse view declares
    const tooLong = result.ok ? textWidthProblem(result.record) : result.unplaced ? textWidthProblem(result.unplaced) : undefined;
    if (tooLong) return reject(tooLong);
    if (!result.ok || change.previousItem === undefined) return result;
    const moveOut = movedOutOf(change, context, result.record);
    return moveOut ? { ...result, moveOut } : result;
  } catch (error) {
    // e.g. an item nested thousands of levels deep overflows JSON.stringify's stack
    return reject(`cannot normalise the item: ${(error as Error).message}`);
  }
}

function normalise(change: SourceChange, context: NormaliseContext): NormaliseResult {
  const mapping = context.mapping ?? DEFAULT_FIELD_MAPPING;
  const item = change.item;
  if (change.problem !== undefined) return reject(change.problem);
  if (typeof item !== 'object' || item === null || Array.isArray(item)) {
    return reject(`${change.op} change has no item image (the stream must carry NEW_AND_OLD_IMAGES)`);
  }
  if (!/^\d{1,64}$/.test(change.sourceSeq)) {
    return reject(`${change.positionField ?? 'source position'} must be decimal digits, got ${JSON.stringify(change.sourceSeq)}`);
  }
  const used = new Set<string>(change.consumed);
  const pick = (field: CanonicalField): unknown => {
    for (const name of mapping[field]) {
      if (Object.hasOwn(item, name) && item[name] !== null && item[name] !== undefined) {
        used.add(name);
        return item[name];
      }
    }
    return undefined;
  };

  const tenant = pick('tenant_id');
  const disagreement = fieldsDisagree(item, mapping.tenant_id);
  if (disagreement) return reject(`tenant id fields disagree: ${disagreement}`);
  // fields that agree all name the tenant: none of them is kept in attributes
  for (const name of mapping.tenant_id) if (Object.hasOwn(item, name) && item[name] !== null) used.add(name);
  if (tenant === undefined)
    return reject(`${change.missing?.tenant_id ?? 'no tenant id'} (looked for ${mapping.tenant_id.join(', ')})`);
  const tenantProblem = tenantIdProblem(tenant);
  if (tenantProblem) return reject(tenantProblem);

  const messageId = idText(pick('message_id'));
  if (messageId === undefined) {
    return reject(`${change.missing?.message_id ?? 'no message id'} (looked for ${mapping.message_id.join(', ')})`);
  }
  if (messageId.length === 0) return reject('message id is empty');

  const createdRaw = pick('created_at');
  const created = createdRaw === undefined ? undefined : parseInstant(createdRaw);
  if (created && !created.ok) return reject(`created_at: ${created.reason}`);
  const placeLater = created === undefined && change.op === 'delete' && change.missing?.created_at !== undefined;
  if (created === undefined && !placeLater) {
    return reject(`${change.missing?.created_at ?? 'no creation time'} (looked for ${mapping.created_at.join(', ')})`);
  }

  const updatedRaw = pick('updated_at');
  const updated = updatedRaw === undefined ? undefined : parseInstant(updatedRaw);
  if (updated && !updated.ok) return reject(`updated_at: ${updated.reason}`);

  const conversationId = idText(pick('conversation_id'));
  const senderId = idText(pick('sender_id'));
  const illFormed = (
    [
      ['message id', messageId],
      ['conversation id', conversationId],
      ['sender id', senderId],
    ] as const
  ).find(([, id]) => id !== undefined && !id.isWellFormed());
  if (illFormed) return reject(`${illFormed[0]} ${loneSurrogateText(illFormed[1] as string)}`);
  // role is text, not an id: a lone surrogate becomes U+FFFD, as in content
  const role = idText(pick('role'))?.toWellFormed();
  const content = pick('content');

  const rest: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(item)) if (!used.has(key)) rest[key] = value;

  const record: StagedRecord = {
    tenant_id: tenant as string,
    dt: created ? jstDate(created.ms) : '',
    message_id: messageId,
    conversation_id: conversationId ?? null,
    sender_id: senderId ?? null,
    role: role ?? null,
    content: content === undefined ? null : typeof content === 'string' ? content.toWellFormed() : jsonText(content),
    created_at: created ? created.ms : Number.NaN,
    updated_at: updated?.ok ? updated.ms : null,
    attributes: jsonText(rest),
    source: context.source,
    source_seq: change.sourceSeq.replace(/^0+(?=\d)/, ''),
    ingested_at: change.versionAt ?? context.ingestedAt,
    op: change.op,
  };
  if (created === undefined) {
    // a user delete that names its message but not its creation time: the planner finds its day in the table
    const { dt: _dt, created_at: _created, ...unplaced } = record;
    const reason = `${change.missing?.created_at} (looked for ${mapping.created_at.join(', ')})`;
    return { ok: false, reason, unplaced };
  }
  return { ok: true, record };
}

/**
 * The move-out of a change whose previous image names another place for the message (another tenant, JST
 * day or message id): the previous image as a `delete` at the change's position and capture time, or
 * undefined when it names the same place or cannot be read (then there is no earlier place to leave).
 */
function movedOutOf(change: SourceChange, context: NormaliseContext, record: StagedRecord): StagedRecord | undefined {
  const before = normalise(
    { ...change, item: change.previousItem, previousItem: undefined, op: 'delete', missing: undefined },
    context,
  );
  if (!before.ok || textWidthProblem(before.record)) return undefined;
  const old = before.record;
  const same = old.tenant_id === record.tenant_id && old.dt === record.dt && old.message_id === record.message_id;
  return same ? undefined : old;
}

function reject(reason: string): NormaliseResult {
  return { ok: false, reason };
}

/**
 * Ids arrive as strings or numbers; anything else is kept as its JSON text. A string id is kept as it is,
 * even when it is not well-formed UTF-16: replacing a lone surrogate would make two ids one (normalise
 * rejects such an id instead).
 */
function idText(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  return jsonText(value);
}

/**
 * "is not well-formed UTF-16: lone surrogate U+D800 at index 3 of \"a\\ud800b\"": why an id is refused.
 * (JSON.stringify escapes a lone surrogate, so the reason itself is valid UTF-8.)
 */
function loneSurrogateText(id: string): string {
  const index = [...id].findIndex((c) => c.length === 1 && c >= '\uD800' && c <= '\uDFFF');
  const chars = [...id];
  const at = chars.slice(0, index).join('').length;
  const code = (chars[index] as string).charCodeAt(0).toString(16).toUpperCase();
  const shown = id.length > 80 ? `${id.slice(0, 80)}…` : id;
  return `is not well-formed UTF-16: lone surrogate U+${code} at index ${at} of ${JSON.stringify(shown)} (it would become U+FFFD and could merge with another id)`;
}

/**
 * `tenant_id "acme", tenantId "globex"` when two of `names` are present (not null) with different values,
 * else undefined: a record is never filed under one of two tenants it names.
 */
function fieldsDisagree(item: Record<string, unknown>, names: readonly string[]): string | undefined {
  const present = names.filter((n) => Object.hasOwn(item, n) && item[n] !== null && item[n] !== undefined);
  const values = new Set(present.map((n) => jsonText(item[n])));
  return values.size > 1 ? present.map((n) => `${n} ${jsonText(item[n])}`).join(', ') : undefined;
}

/** JSON text that is always valid UTF-8 (unpaired surrogates become U+FFFD, as Parquet needs). */
export function jsonText(value: unknown): string {
  return JSON.stringify(value, (_key, v) => (typeof v === 'string' ? v.toWellFormed() : v)) ?? 'null';
}
