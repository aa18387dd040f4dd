import { ConfigError } from '../errors.js';

/** Canonical fields an app item is mapped to; everything else goes into `attributes`. */
export const CANONICAL_FIELDS = [
  'tenant_id',
  'message_id',
  'conversation_id',
  'sender_id',
  'role',
  'content',
  'created_at',
  'updated_at',
] as const;
export type CanonicalField = (typeof CANONICAL_FIELDS)[number];

/** For each canonical field, the item field names tried in order; the first present one wins. */
export type FieldMapping = Readonly<Record<CanonicalField, readonly string[]>>;

/** snake_case and camelCase are both accepted; `id` is the message id when none is given (Cosmos). */
export const DEFAULT_FIELD_MAPPING: FieldMapping = {
  tenant_id: ['tenant_id', 'tenantId'],
  message_id: ['message_id', 'messageId', 'id'],
  conversation_id: ['conversation_id', 'conversationId'],
  sender_id: ['sender_id', 'senderId', 'userId', 'user_id'],
  role: ['role'],
  content: ['content'],
  created_at: ['created_at', 'createdAt'],
  updated_at: ['updated_at', 'updatedAt'],
};

/**
 * Parses FIELD_MAPPING: a JSON object from canonical field to an item field name or a list of names,
 * replacing the defaults for that field, e.g. `{"content":"text","sender_id":["author","userId"]}`.
 */
export function parseFieldMapping(json: string | undefined): FieldMapping {
  if (json === undefined || json.trim() === '') return DEFAULT_FIELD_MAPPING;
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (error) {
    throw new ConfigError(`FIELD_MAPPING must be a JSON object, got ${JSON.stringify(json)}`, { cause: error });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`FIELD_MAPPING must be a JSON object, got ${JSON.stringify(json)}`);
  }
  const mapping: Record<string, readonly string[]> = { ...DEFAULT_FIELD_MAPPING };
  for (const [field, names] of Object.entries(parsed)) {
    if (!(CANONICAL_FIELDS as readonly string[]).includes(field)) {
      throw new ConfigError(`FIELD_MAPPING: unknown field ${JSON.stringify(field)} (one of ${CANONICAL_FIELDS.join(', ')})`);
    }
    const list = typeof names === 'string' ? [names] : names;
    if (!Array.isArray(list) || list.length === 0 || !list.every((n) => typeof n === 'string' && n !== '')) {
      throw new ConfigError(`FIELD_MAPPING.${field} must be a field name or a non-empty list of names`);
    }
    mapping[field] = list;
  }
  return mapping as FieldMapping;
}
