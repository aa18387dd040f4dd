import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { marshall } from '@aws-sdk/util-dynamodb';
import { ingestBatch } from '../../src/capture/ingest/ingestBatch.js';
import { cosmosDocumentChanges, dynamodbEventChanges } from '../../src/capture/ingest/sources.js';
import type { DynamoDBStreamRecordLike } from '../../src/core/model/dynamodb.js';
import type { StagedRecord } from '../../src/core/schema/messageSchema.js';
import { QUARANTINE_ROOT, stagingKey } from '../../src/core/staging/layout.js';
import { compactTenants, type RunSummary } from '../../src/engine/compactTenants.js';
import { openDuckDb } from '../../src/ports/duckdb/openDuckDb.js';
import { getBytes, listAll, type ObjectStore } from '../../src/ports/store/ObjectStore.js';
import { readPartition } from './pipeline.js';
import type { LakeRow } from './readParquet.js';

export const CATALOGUE_DATE = '2025-08-11';
/** The tenant every case writes to unless the case is about the tenant id itself. */
export const CATALOGUE_TENANT = 'catalogue';
export const BULK_TENANT = 'catalogue-bulk';
const NOW = Date.parse('2025-08-11T17:00:00Z');
const CREATED = '2025-08-11T01:00:00.000Z';

/** One entry of the bad-input list, and what it must come to. */
export interface BadInputCase {
  readonly id: string;
  readonly description: string;
  /** Changes fed to ingest (DynamoDB records or Cosmos documents), or lines planted in staging. */
  readonly dynamodb?: readonly DynamoDBStreamRecordLike[];
  readonly cosmos?: readonly Record<string, unknown>[];
  readonly staging?: { readonly name: string; readonly body: Buffer; readonly lines: number };
  /** The exact quarantine reasons the case must produce (ingest and compaction), in order. */
  readonly reasons: readonly string[];
  /** Lines of a staging object lost in an unreadable gzip tail (known only to whoever wrote them). */
  readonly tailLines?: number;
}

export interface CaseOutcome {
  readonly id: string;
  /** Quarantine reasons found for this case's inputs. */
  readonly reasons: string[];
  /** Rows of this case in the lake (message ids start with the case id). */
  readonly rows: LakeRow[];
}

export interface CatalogueResult {
  readonly cases: readonly BadInputCase[];
  readonly outcomes: CaseOutcome[];
  readonly summary: RunSummary;
  /** Control messages (good records fed alongside the bad ones), as the lake holds them. */
  readonly controlRows: LakeRow[];
  readonly controlCount: number;
  readonly bulkRows: number;
  readonly totals: Reconciliation;
}

/** Every message in must be accounted for: written, collapsed (superseded/duplicate/deleted) or quarantined. */
export interface Reconciliation {
  readonly messagesIn: number;
  readonly rowsOut: number;
  readonly collapsed: number;
  readonly quarantinedAtIngest: number;
  readonly quarantinedAtCompaction: number;
  readonly objectsQuarantined: number;
  readonly linesInUnreadableTails: number;
}

export const reconciles = (t: Reconciliation): boolean =>
  t.messagesIn === t.rowsOut + t.collapsed + t.quarantinedAtIngest + t.quarantinedAtCompaction + t.linesInUnreadableTails;

let seq = 1000;
const nextSeq = () => String(++seq);
const item = (id: string, overrides: Record<string, unknown> = {}) => ({
  tenantId: CATALOGUE_TENANT,
  messageId: `${id}-1`,
  conversationId: 'c1',
  senderId: 'u1',
  role: 'user',
  content: `case ${id}`,
  createdAt: CREATED,
  ...overrides,
});
const ddb = (fields: Record<string, unknown>): DynamoDBStreamRecordLike => ({
  eventName: 'INSERT',
  eventSourceARN: 'arn:aws:dynamodb:ap-northeast-1:000000000000:table/messages/stream/catalogue',
  dynamodb: { SequenceNumber: nextSeq(), NewImage: marshall(fields, { removeUndefinedValues: true }) as Record<string, unknown> },
});
const ddbImage = (image: Record<string, unknown>): DynamoDBStreamRecordLike => ({
  eventName: 'INSERT',
  eventSourceARN: 'arn:aws:dynamodb:ap-northeast-1:000000000000:table/messages/stream/catalogue',
  dynamodb: { SequenceNumber: nextSeq(), NewImage: image },
});
const cosmosDoc = (id: string, overrides: Record<string, unknown> = {}) => {
  const { messageId, ...rest } = item(id, overrides);
  return { id: messageId, ...rest, _rid: 'rid', _etag: '"e"', _ts: 1754874000, _lsn: Number(nextSeq()) };
};
const staged = (id: string, n: number, overrides: Partial<StagedRecord> = {}): StagedRecord => ({
  tenant_id: CATALOGUE_TENANT,
  dt: CATALOGUE_DATE,
  message_id: `${id}-${n}`,
  conversation_id: 'c1',
  sender_id: 'u1',
  role: 'user',
  content: `case ${id} line ${n}`,
  created_at: Date.parse(CREATED),
  updated_at: null,
  attributes: '{}',
  source: 'dynamodb',
  source_seq: nextSeq(),
  ingested_at: NOW - 3_600_000,
  op: 'upsert',
  ...overrides,
});
const ndjson = (lines: readonly string[]) => Buffer.from(lines.map((l) => `${l}\n`).join(''));
const tenantReason = (tenant: string) => `tenant id ${JSON.stringify(tenant)} may contain only letters, digits, '-' and '_'`;
const parseError = (text: string) => {
  try {
    JSON.parse(text);
    return '';
  } catch (error) {
    return (error as Error).message;
  }
};

/** `depth` levels of `{"level": {...}}` around a leaf. */
export function nested(depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = { leaf: 'bottom' };
  for (let i = 0; i < depth; i++) value = { level: value };
  return value;
}

/** A string of exactly `bytes` UTF-8 bytes: Japanese text, emoji and ASCII. */
export function textOfBytes(bytes: number): string {
  const unit = 'メッセージ本文🍣 text ';
  let text = unit.repeat(Math.floor(bytes / Buffer.byteLength(unit)));
  text += 'x'.repeat(bytes - Buffer.byteLength(text));
  return text;
}

/** `depth` levels of DynamoDB maps (`{"M": {"level": ...}}`) around a string leaf. */
export function nestedImage(depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = { S: 'bottom' };
  for (let i = 0; i < depth; i++) value = { M: { level: value } };
  return value;
}

const ATTRIBUTE_TYPES = 'one of S, N, B, BOOL, NULL, M, L, SS, NS, BS';

/** The bad-input catalogue; each case is fed with control messages that must all survive. */
export function badInputCases(): BadInputCase[] {
  seq = 1000;
  const malformed = '{"tenant_id": "catalogue", "message_id": broken';
  const truncatedHead = gzipSync(
    ndjson([JSON.stringify(staged('truncated-gzip', 1)), JSON.stringify(staged('truncated-gzip', 2))]),
  );
  const truncatedTail = gzipSync(ndjson([JSON.stringify(staged('truncated-gzip', 3))]));
  const tooLong = `t${'x'.repeat(64)}`;
  const invalidUtf8Line = JSON.stringify(staged('invalid-utf8', 2, { content: 'before|after' }));
  const [invalidUtf8Head, invalidUtf8Tail] = invalidUtf8Line.split('|') as [string, string];
  return [
    {
      id: 'malformed-json',
      description: 'malformed JSON line in a staging object',
      staging: {
        name: 'case_malformed-json',
        body: gzipSync(
          ndjson([JSON.stringify(staged('malformed-json', 1)), malformed, JSON.stringify(staged('malformed-json', 3))]),
        ),
        lines: 3,
      },
      reasons: [`malformed JSON: ${parseError(malformed)}`],
    },
    {
      id: 'truncated-gzip',
      description: 'truncated gzip staging object (a second gzip member cut in half)',
      staging: {
        name: 'case_truncated-gzip',
        body: Buffer.concat([truncatedHead, truncatedTail.subarray(0, Math.floor(truncatedTail.length / 2))]),
        lines: 3,
      },
      reasons: ['unreadable gzip after 2 complete lines: unexpected end of file'],
      tailLines: 1,
    },
    {
      id: 'gzip-trailing-junk',
      description: 'bytes that are not gzip after the gzip data of a staging object: its lines kept, the junk named',
      staging: {
        name: 'case_gzip-trailing-junk',
        body: Buffer.concat([
          gzipSync(ndjson([JSON.stringify(staged('gzip-trailing-junk', 1)), JSON.stringify(staged('gzip-trailing-junk', 2))])),
          Buffer.from('junk\n'),
        ]),
        lines: 2,
      },
      reasons: ['5 bytes after the gzip data are not gzip (the 2 lines before them were read)'],
    },
    {
      id: 'utf8-bom',
      description: 'a staging object that starts with a UTF-8 byte order mark: read past, every line kept',
      staging: {
        name: 'case_utf8-bom',
        body: gzipSync(
          Buffer.concat([
            Buffer.from([0xef, 0xbb, 0xbf]),
            ndjson([JSON.stringify(staged('utf8-bom', 1)), JSON.stringify(staged('utf8-bom', 2))]),
          ]),
        ),
        lines: 2,
      },
      reasons: [],
    },
    {
      id: 'invalid-utf8',
      description: 'a staging line with bytes that are not UTF-8 (FF FE): that line quarantined, not read as U+FFFD',
      staging: {
        name: 'case_invalid-utf8',
        body: gzipSync(
          Buffer.concat([
            ndjson([JSON.stringify(staged('invalid-utf8', 1))]),
            Buffer.from(invalidUtf8Head),
            Buffer.from([0xff, 0xfe]),
            Buffer.from(invalidUtf8Tail),
            ndjson(['', JSON.stringify(staged('invalid-utf8', 3))]),
          ]),
        ),
        lines: 3,
      },
      reasons: [`not valid UTF-8 (byte ${Buffer.byteLength(invalidUtf8Head) + 1} of the line)`],
    },
    {
      id: 'empty-file',
      description: 'empty staging object (0 bytes)',
      staging: { name: 'case_empty-file', body: Buffer.alloc(0), lines: 0 },
      reasons: ['empty object (0 bytes, not gzip)'],
    },
    {
      id: 'foreign-tenant-line',
      description: "a staging line of another tenant in this tenant's folder (must not leak into either)",
      staging: {
        name: 'case_foreign-tenant-line',
        body: gzipSync(
          ndjson([
            JSON.stringify(staged('foreign-tenant-line', 1)),
            JSON.stringify(staged('foreign-tenant-line', 2, { tenant_id: 'other-tenant' })),
          ]),
        ),
        lines: 2,
      },
      reasons: ['tenant_id other-tenant does not match the partition'],
    },
    {
      id: 'no-tenant',
      description: 'record without a tenant id',
      dynamodb: [ddb({ ...item('no-tenant'), tenantId: undefined })],
      reasons: ['no tenant id (looked for tenant_id, tenantId)'],
    },
    {
      id: 'no-message-id',
      description: 'record without a message id',
      dynamodb: [ddb({ ...item('no-message-id'), messageId: undefined })],
      reasons: ['no message id (looked for message_id, messageId, id)'],
    },
    ...(
      [
        ['tenant-traversal', 'tenant id ../x (path traversal)', '../x'],
        ['tenant-slash', 'tenant id a/b', 'a/b'],
        ['tenant-dots', 'tenant id with dots', 'acme.corp'],
        ['tenant-space', 'tenant id with a space', 'acme corp'],
        ['tenant-lookalike', 'tenant id with a Cyrillic look-alike letter', 'аcme'],
        ['tenant-nul', 'tenant id with a NUL byte', 'ac\u0000me'],
        ['tenant-sql', 'tenant id with SQL quotes', "acme'; DROP TABLE messages; --"],
      ] as const
    ).map(([id, description, tenant]) => ({
      id,
      description,
      dynamodb: [ddb(item(id, { tenantId: tenant }))],
      reasons: [tenantReason(tenant)],
    })),
    {
      id: 'tenant-too-long',
      description: 'tenant id of 65 characters',
      dynamodb: [ddb(item('tenant-too-long', { tenantId: tooLong }))],
      reasons: ['tenant id is 65 characters long (at most 64)'],
    },
    {
      id: 'time-far-past',
      description: 'timestamp in the far past (1970)',
      dynamodb: [ddb(item('time-far-past', { createdAt: '1970-01-01T00:00:00Z' }))],
      reasons: ['created_at: 1970-01-01T00:00:00.000Z is outside 2000-01-01..2099-12-31'],
    },
    {
      id: 'time-far-future',
      description: 'timestamp in the far future (2999)',
      dynamodb: [ddb(item('time-far-future', { createdAt: '2999-01-01T00:00:00Z' }))],
      reasons: ['created_at: 2999-01-01T00:00:00.000Z is outside 2000-01-01..2099-12-31'],
    },
    {
      id: 'time-digits',
      description: 'timestamps as strings of digits (epoch seconds and milliseconds): accepted',
      dynamodb: [
        ddb(item('time-digits', { createdAt: '1754874000' })),
        ddb(item('time-digits', { messageId: 'time-digits-2', createdAt: '1754874000123' })),
      ],
      reasons: [],
    },
    {
      id: 'time-no-zone',
      description: 'timestamp without a zone: taken as UTC (docs/ARCHITECTURE.md)',
      dynamodb: [ddb(item('time-no-zone', { createdAt: '2025-08-11T10:00:00' }))],
      reasons: [],
    },
    {
      id: 'time-invalid-date',
      description: 'invalid calendar date 2025-02-30',
      dynamodb: [ddb(item('time-invalid-date', { createdAt: '2025-02-30T10:00:00Z' }))],
      reasons: ['created_at: invalid calendar date in "2025-02-30T10:00:00Z"'],
    },
    {
      id: 'content-400kb',
      description: "content of 400 KB (DynamoDB's item limit)",
      dynamodb: [ddb(item('content-400kb', { content: textOfBytes(400 * 1024 - 512) }))],
      reasons: [],
    },
    {
      id: 'content-2mb',
      description: "content of 2 MB (Cosmos DB's item limit)",
      cosmos: [cosmosDoc('content-2mb', { content: textOfBytes(2 * 1024 * 1024 - 1024) })],
      reasons: [],
    },
    {
      id: 'deep-nesting',
      description: 'attributes nested 2,000 levels deep (Cosmos document): kept',
      cosmos: [cosmosDoc('deep-nesting', { payload: nested(2000) })],
      reasons: [],
    },
    {
      id: 'deeper-nesting',
      description: 'attributes nested 20,000 levels deep: too deep to serialise, quarantined alone',
      cosmos: [cosmosDoc('deeper-nesting', { payload: nested(20_000) })],
      reasons: ['cannot normalise the item: Maximum call stack size exceeded'],
    },
    {
      id: 'dynamodb-types',
      description: 'DynamoDB sets, binary and a 38-digit number: kept exactly in attributes',
      dynamodb: [
        ddbImage({
          ...(marshall(item('dynamodb-types')) as Record<string, unknown>),
          tags: { SS: ['b', 'a'] },
          scores: { NS: ['10', '9.5', '12345678901234567890123456789012345678'] },
          blob: { B: Buffer.from([0, 1, 2, 255]).toString('base64') },
          blobs: { BS: [Buffer.from('y').toString('base64'), Buffer.from('x').toString('base64')] },
          big: { N: '12345678901234567890123456789012345678' },
          small: { N: '-0.000000000000000000000000000000000001' },
        }),
      ],
      reasons: [],
    },
    {
      id: 'unpaired-surrogates',
      description: 'unpaired UTF-16 surrogates in content and attributes: replaced by U+FFFD',
      cosmos: [cosmosDoc('unpaired-surrogates', { content: 'a\uD800b\uDC00c', note: 'x\uDBFF' })],
      reasons: [],
    },
    {
      id: 'lone-surrogate-ids',
      description: 'two message ids that differ only in a lone surrogate: each quarantined (as U+FFFD they would become one id)',
      cosmos: [
        cosmosDoc('lone-surrogate-ids', { messageId: 'lone-surrogate-ids-1\uD800' }),
        cosmosDoc('lone-surrogate-ids', { messageId: 'lone-surrogate-ids-1\uDBFF' }),
      ],
      reasons: [
        'message id is not well-formed UTF-16: lone surrogate U+D800 at index 20 of "lone-surrogate-ids-1\\ud800" (it would become U+FFFD and could merge with another id)',
        'message id is not well-formed UTF-16: lone surrogate U+DBFF at index 20 of "lone-surrogate-ids-1\\udbff" (it would become U+FFFD and could merge with another id)',
      ],
    },
    {
      id: 'lone-surrogate-sender',
      description: 'a sender id with a lone surrogate: quarantined like a message id (ids are never rewritten)',
      dynamodb: [ddb(item('lone-surrogate-sender', { senderId: '\uDC00u1' }))],
      reasons: [
        'sender id is not well-formed UTF-16: lone surrogate U+DC00 at index 0 of "\\udc00u1" (it would become U+FFFD and could merge with another id)',
      ],
    },
    {
      id: 'dynamodb-malformed-image',
      description: 'a DynamoDB image with an attribute that is no attribute value: quarantined alone, its batch goes on',
      dynamodb: [ddbImage({ ...(marshall(item('dynamodb-malformed-image')) as Record<string, unknown>), bad: { X: 'y' } })],
      reasons: [
        `NewImage is not a readable DynamoDB image: attribute "bad" is not an attribute value (${ATTRIBUTE_TYPES}), got {"X":"y"}`,
      ],
    },
    {
      id: 'dynamodb-deep-nesting',
      description: 'a DynamoDB image nested 3,000 levels deep (DynamoDB allows 32): quarantined alone, its batch goes on',
      dynamodb: [
        ddbImage({ ...(marshall(item('dynamodb-deep-nesting')) as Record<string, unknown>), payload: nestedImage(3000) }),
      ],
      reasons: ['NewImage is not a readable DynamoDB image: Maximum call stack size exceeded'],
    },
    {
      id: 'tenant-fields-disagree',
      description: 'tenant_id and tenantId both set, to different tenants: quarantined, filed under neither',
      dynamodb: [ddb({ ...item('tenant-fields-disagree'), tenant_id: 'other-tenant' })],
      reasons: ['tenant id fields disagree: tenant_id "other-tenant", tenantId "catalogue"'],
    },
    {
      id: 'tenant-fields-agree',
      description: 'tenant_id and tenantId both set to the same tenant: kept, neither in attributes',
      dynamodb: [ddb({ ...item('tenant-fields-agree'), tenant_id: CATALOGUE_TENANT })],
      reasons: [],
    },
    {
      id: 'system-column-names',
      description: 'item fields named like system columns: kept in attributes, never override them',
      dynamodb: [
        ddb(
          item('system-column-names', {
            source: 'evil',
            source_seq: '999999',
            op: 'delete',
            dt: '1999-01-01',
            ingested_at: 0,
            attributes: 'not json',
            filename: '/etc/passwd',
            reject_reason: 'none',
          }),
        ),
      ],
      reasons: [],
    },
  ];
}

/** Good messages fed in the same batches as the bad ones: all of them must reach the lake. */
function controlRecords(n: number): DynamoDBStreamRecordLike[] {
  return Array.from({ length: n }, (_, i) => ddb(item('control', { messageId: `control-${i}`, content: `良い ${i}` })));
}

/** A 10,000-record DynamoDB batch (one tenant, one day). */
export const BULK_RECORDS = 10_000;

/**
 * Feeds every case (and control messages) through the real paths – ingestBatch for records, staging
 * objects planted as a writer would leave them – compacts the day for every tenant in staging, then reads
 * the quarantine and the lake back and attributes each reason and row to its case.
 */
export async function runBadInputCatalogue(store: ObjectStore, workDirectory: string): Promise<CatalogueResult> {
  const cases = badInputCases();
  const caseOfSeq = new Map<string, string>();
  for (const c of cases) {
    for (const r of c.dynamodb ?? []) caseOfSeq.set(String(r.dynamodb?.SequenceNumber), c.id);
    for (const d of c.cosmos ?? []) caseOfSeq.set(String(d._lsn), c.id);
  }
  const control = controlRecords(20);
  const dynamodb = [...control.slice(0, 10), ...cases.flatMap((c) => c.dynamodb ?? []), ...control.slice(10)];
  const feed = async (changes: ReturnType<typeof dynamodbEventChanges>, source: 'dynamodb' | 'cosmos') => {
    const result = await ingestBatch(store, changes.changes, { source, batchId: changes.batchId, now: NOW - 3_600_000 });
    if (result.failed.length > 0) throw new Error(`catalogue: ingest failed: ${result.failed.map((f) => f.key).join(', ')}`);
    return result;
  };
  await feed(dynamodbEventChanges({ Records: dynamodb }), 'dynamodb');
  await feed(
    cosmosDocumentChanges(
      cases.flatMap((c) => c.cosmos ?? []),
      'catalogue',
    ),
    'cosmos',
  );
  const bulk = Array.from({ length: BULK_RECORDS }, (_, i) =>
    ddb({ ...item('bulk', { messageId: `bulk-${String(i).padStart(5, '0')}` }), tenantId: BULK_TENANT }),
  );
  await feed(dynamodbEventChanges({ Records: bulk }), 'dynamodb');
  for (const c of cases) {
    if (c.staging) await store.putBytes(stagingKey(CATALOGUE_TENANT, CATALOGUE_DATE, c.staging.name), c.staging.body);
  }

  await mkdir(workDirectory, { recursive: true });
  const db = await openDuckDb({ memoryLimit: '1GB', threads: 2, workDirectory: join(workDirectory, 'duckdb') });
  let summary: RunSummary;
  try {
    summary = await compactTenants(
      { store, db, workDirectory: join(workDirectory, 'partitions'), now: () => NOW },
      CATALOGUE_DATE,
      { tenants: 'all', concurrency: 2 },
    );
  } finally {
    db.closeSync();
  }

  const quarantine = await quarantineEntries(store);
  const rows = await readPartition(store, CATALOGUE_TENANT, CATALOGUE_DATE, join(workDirectory, 'read'));
  const bulkRows = (await readPartition(store, BULK_TENANT, CATALOGUE_DATE, join(workDirectory, 'read-bulk'))).length;
  const caseOfEntry = (e: QuarantineLine): string | undefined =>
    e.position !== undefined ? caseOfSeq.get(e.position) : /case_([a-z0-9-]+)\.ndjson\.gz$/.exec(e.object_key ?? '')?.[1];
  const outcomes = cases.map((c) => ({
    id: c.id,
    reasons: quarantine.filter((e) => caseOfEntry(e) === c.id).map((e) => e.reason),
    rows: rows.filter((r) => String(r.message_id).startsWith(`${c.id}-`)),
  }));
  const results = summary.results;
  const sum = (f: (r: (typeof results)[number]) => number) => results.reduce((n, r) => n + f(r), 0);
  const totals: Reconciliation = {
    messagesIn: dynamodb.length + bulk.length + cases.reduce((n, c) => n + (c.cosmos?.length ?? 0) + (c.staging?.lines ?? 0), 0),
    rowsOut: rows.length + bulkRows,
    collapsed: sum((r) => r.duplicatesRemoved + r.versionsSuperseded + r.deletesApplied),
    quarantinedAtIngest: quarantine.filter((e) => e.stage === 'ingest').length,
    quarantinedAtCompaction: sum((r) => r.rowsRejected),
    objectsQuarantined: sum((r) => r.objectsRejected),
    linesInUnreadableTails: cases.reduce((n, c) => n + (c.tailLines ?? 0), 0),
  };
  return {
    cases,
    outcomes,
    summary,
    controlRows: rows.filter((r) => String(r.message_id).startsWith('control-')),
    controlCount: control.length,
    bulkRows,
    totals,
  };
}

interface QuarantineLine {
  readonly stage: 'ingest' | 'compaction';
  readonly reason: string;
  readonly position?: string;
  readonly object_key?: string;
}

/** Every quarantine entry in the store (ingest and compaction), in key and line order. */
export async function quarantineEntries(store: ObjectStore): Promise<QuarantineLine[]> {
  const entries: QuarantineLine[] = [];
  for (const info of await listAll(store, QUARANTINE_ROOT)) {
    const stage = info.key.startsWith(`${QUARANTINE_ROOT}ingest/`) ? 'ingest' : 'compaction';
    const text = gunzipSync(await getBytes(store, info.key)).toString('utf8');
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const e = JSON.parse(line) as Record<string, unknown>;
      entries.push({
        stage,
        reason: String(e.reason),
        ...(stage === 'ingest' ? { position: String(e.position) } : { object_key: String(e.object_key) }),
      });
    }
  }
  return entries;
}
