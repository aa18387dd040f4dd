/**
 * What an erase looks for, held only as salted hashes: the identifiers asked for (sender, conversation and
 * message ids) and the message ids derived from them (a sender's messages, so that remembered deletes, which
 * keep only the id, go too). A receipt stores the salt and the hashes, never an identifier in clear, and
 * `erase --verify` re-runs the scan from them alone.
 *
 * A record matches when one of its identifier fields (structured rows), or any string anywhere in it (raw
 * records of quarantine, JSON reports), hashes to one of the set — and it names this tenant, or no tenant
 * where it lies under the tenant's own prefix.
 */
import { createHash, randomBytes } from 'node:crypto';

export type IdKind = 'sender' | 'conversation' | 'message';

/** The identifiers an erase request names, in clear (only in memory, never written). */
export interface EraseSelector {
  readonly senders: readonly string[];
  readonly conversations: readonly string[];
  readonly messages: readonly string[];
}

export interface EraseMatcher {
  readonly tenant: string;
  /** Hex; hashes are sha256(`<salt>:<id>`). */
  readonly salt: string;
  /** Hashes of every identifier to erase (asked for or derived). Grows as derived message ids are found. */
  readonly hashes: Set<string>;
  /**
   * The identifiers in clear behind some of `hashes` (hash → id), in memory only and never written: those asked
   * for and the message ids an erase derives. A value matches a known hash exactly when it equals its id, so
   * DuckDB compares the values instead of hashing each (verification, from a receipt, knows none).
   */
  readonly clear: Map<string, string>;
  /** Offboarding: every record of the tenant matches. */
  readonly everything: boolean;
}

export const newSalt = () => randomBytes(16).toString('hex');

export const hashId = (salt: string, id: string) => createHash('sha256').update(`${salt}:${id}`, 'utf8').digest('hex');

/** The hashes of each kind of a selector, sorted (as a receipt records them). */
export function hashedSelector(
  salt: string,
  selector: EraseSelector,
): Record<'senders' | 'conversations' | 'messages', string[]> {
  const hashed = (ids: readonly string[]) => [...new Set(ids.map((id) => hashId(salt, id)))].sort();
  return {
    senders: hashed(selector.senders),
    conversations: hashed(selector.conversations),
    messages: hashed(selector.messages),
  };
}

export function matcherOf(
  tenant: string,
  salt: string,
  hashes: Iterable<string>,
  everything = false,
  clearIds: Iterable<string> = [],
): EraseMatcher {
  const clear = new Map([...clearIds].map((id) => [hashId(salt, id), id] as const));
  return { tenant, salt, hashes: new Set([...clear.keys(), ...hashes]), clear, everything };
}

/** Adds an identifier known in clear (a derived message id) to the matcher. */
export function addClearId(m: EraseMatcher, id: string): void {
  const h = hashId(m.salt, id);
  if (!m.clear.has(h)) m.clear.set(h, id);
  m.hashes.add(h);
}

export const idMatches = (m: EraseMatcher, value: unknown): boolean =>
  typeof value === 'string' && value !== '' && m.hashes.has(hashId(m.salt, value));

/** A staging line or a table row (`tenant_id` absent for Parquet rows: their folder is the tenant's). */
export function rowMatches(m: EraseMatcher, row: Readonly<Record<string, unknown>>): boolean {
  if (row.tenant_id !== undefined && row.tenant_id !== null && row.tenant_id !== m.tenant) return false;
  if (m.everything) return true;
  return idMatches(m, row.sender_id) || idMatches(m, row.conversation_id) || idMatches(m, row.message_id);
}

const TENANT_KEYS = new Set(['tenant_id', 'tenantId', 'tenant']);
const MESSAGE_ID_KEYS = new Set(['message_id', 'messageId']);

/** What a walk of one raw record found: a matching string, the tenants it names, its message ids. */
interface Walk {
  hit: boolean;
  tenants: Set<string>;
  messageIds: Set<string>;
}

/**
 * Whether a raw record (a quarantined DynamoDB record or Cosmos document, a compaction quarantine line, a
 * report) matches: some string in it hashes to the set and it names no tenant but ours (`inTenantArea`: it
 * lies under the tenant's own prefix, so a record naming no tenant is the tenant's). Strings holding JSON
 * (a quarantined staging line) are parsed; text that is not JSON is searched for quoted strings.
 */
export function recordMatches(m: EraseMatcher, record: unknown, inTenantArea: boolean): { match: boolean; messageIds: string[] } {
  const walk: Walk = { hit: false, tenants: new Set(), messageIds: new Set() };
  visit(m, record, walk, undefined, 0);
  // a record naming this tenant among others (quarantined because its tenant fields disagree) is erased too
  const ours = walk.tenants.size === 0 ? inTenantArea : walk.tenants.has(m.tenant);
  const match = ours && (m.everything || walk.hit);
  return { match, messageIds: match ? [...walk.messageIds] : [] };
}

/** A line of text that may not be JSON (a malformed staging line): parsed when it can be. */
export function textMatches(m: EraseMatcher, text: string, inTenantArea: boolean): { match: boolean; messageIds: string[] } {
  return recordMatches(m, text, inTenantArea);
}

function visit(m: EraseMatcher, value: unknown, walk: Walk, key: string | undefined, depth: number): void {
  if (depth > 64 || value === null || value === undefined) return;
  if (typeof value === 'string') {
    if (key !== undefined && TENANT_KEYS.has(key)) walk.tenants.add(value);
    if (key !== undefined && MESSAGE_ID_KEYS.has(key)) walk.messageIds.add(value);
    if (idMatches(m, value)) {
      walk.hit = true;
      return;
    }
    const trimmed = value.trimStart();
    if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
      try {
        visit(m, JSON.parse(value), walk, undefined, depth + 1);
        return;
      } catch {
        // not whole JSON (a truncated line): its quoted strings below
      }
    }
    if (value.includes('"')) {
      for (const quoted of value.matchAll(/"((?:[^"\\]|\\.){1,1024})"/g)) {
        let text = quoted[1] as string;
        try {
          text = JSON.parse(`"${text}"`) as string;
        } catch {
          // an escape cut short: compare the text as it stands
        }
        if (idMatches(m, text)) walk.hit = true;
      }
    }
    return;
  }
  if (Array.isArray(value)) {
    for (const item of value) visit(m, item, walk, key, depth + 1);
    return;
  }
  if (typeof value === 'object') {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      // a DynamoDB attribute value ({"S": "…"}) counts under its attribute's name
      const inner = v !== null && typeof v === 'object' && !Array.isArray(v) && typeof (v as { S?: unknown }).S === 'string';
      visit(m, inner ? (v as { S: string }).S : v, walk, k, depth + 1);
      if (inner) visit(m, v, walk, undefined, depth + 1);
    }
  }
}
