import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { listAll } from '../../src/ports/store/ObjectStore.js';
import {
  type BadInputCase,
  BULK_RECORDS,
  type CatalogueResult,
  nested,
  reconciles,
  runBadInputCatalogue,
  textOfBytes,
} from '../kit/badInputCatalogue.js';
import { tempDir } from '../kit/tempDir.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
let store: LocalStore;
let result: CatalogueResult;

beforeAll(async () => {
  dir = await tempDir('makoto-lake-bad-input-');
  store = new LocalStore(join(dir.path, 'data'));
  result = await runBadInputCatalogue(store, join(dir.path, 'work'));
});
afterAll(() => dir.cleanup());

const COSMOS_SYSTEM = { _rid: 'rid', _etag: '"e"', _ts: 1754874000 };

/** The row a case's message must become; positions come from the case's own input. */
function row(c: BadInputCase, n: number, overrides: Record<string, unknown> = {}) {
  const dynamo = c.dynamodb?.[n - 1]?.dynamodb?.SequenceNumber;
  const cosmos = c.cosmos?.[n - 1]?._lsn;
  return {
    message_id: `${c.id}-${n}`,
    conversation_id: 'c1',
    sender_id: 'u1',
    role: 'user',
    content: `case ${c.id}`,
    created_at: '2025-08-11T01:00:00.000Z',
    updated_at: null,
    attributes: cosmos === undefined ? '{}' : JSON.stringify({ _cosmos: COSMOS_SYSTEM }),
    source: cosmos === undefined ? 'dynamodb' : 'cosmos',
    source_seq: String(dynamo ?? cosmos),
    ingested_at: '2025-08-11T16:00:00.000Z',
    ...overrides,
  };
}

/** Staging lines planted directly: rows carry the staging record's own fields. */
const stagedRow = (c: BadInputCase, n: number, seq: string) => ({
  ...row(c, n),
  content: `case ${c.id} line ${n}`,
  source: 'dynamodb',
  attributes: '{}',
  source_seq: seq,
});

/** What each case must leave in the lake (cases not listed leave nothing). */
const KEPT: Record<string, (c: BadInputCase, seqs: string[]) => Record<string, unknown>[]> = {
  'malformed-json': (c, s) => [stagedRow(c, 1, s[0] as string), stagedRow(c, 3, s[1] as string)],
  'truncated-gzip': (c, s) => [stagedRow(c, 1, s[0] as string), stagedRow(c, 2, s[1] as string)],
  'gzip-trailing-junk': (c, s) => [stagedRow(c, 1, s[0] as string), stagedRow(c, 2, s[1] as string)],
  'utf8-bom': (c, s) => [stagedRow(c, 1, s[0] as string), stagedRow(c, 2, s[1] as string)],
  'invalid-utf8': (c, s) => [stagedRow(c, 1, s[0] as string), stagedRow(c, 3, s[1] as string)],
  'foreign-tenant-line': (c, s) => [stagedRow(c, 1, s[0] as string)],
  'time-digits': (c) => [row(c, 1), { ...row(c, 2), created_at: '2025-08-11T01:00:00.123Z' }],
  'time-no-zone': (c) => [row(c, 1, { created_at: '2025-08-11T10:00:00.000Z' })],
  'content-400kb': (c) => [row(c, 1, { content: textOfBytes(400 * 1024 - 512) })],
  'content-2mb': (c) => [row(c, 1, { content: textOfBytes(2 * 1024 * 1024 - 1024) })],
  'deep-nesting': (c) => [row(c, 1, { attributes: JSON.stringify({ payload: nested(2000), _cosmos: COSMOS_SYSTEM }) })],
  'dynamodb-types': (c) => [
    row(c, 1, {
      attributes: JSON.stringify({
        tags: ['a', 'b'],
        scores: [10, '12345678901234567890123456789012345678', 9.5],
        blob: 'AAEC/w==',
        blobs: ['eA==', 'eQ=='],
        big: '12345678901234567890123456789012345678',
        small: -1e-36,
      }),
    }),
  ],
  'unpaired-surrogates': (c) => [
    row(c, 1, { content: 'a\uFFFDb\uFFFDc', attributes: JSON.stringify({ note: 'x\uFFFD', _cosmos: COSMOS_SYSTEM }) }),
  ],
  'tenant-fields-agree': (c) => [row(c, 1)],
  'system-column-names': (c) => [
    row(c, 1, {
      attributes: JSON.stringify({
        source: 'evil',
        source_seq: '999999',
        op: 'delete',
        dt: '1999-01-01',
        ingested_at: 0,
        attributes: 'not json',
        filename: '/etc/passwd',
        reject_reason: 'none',
      }),
    }),
  ],
};

describe('bad input catalogue: each case gets its exact reason (or is kept exactly), nothing else is lost', () => {
  const ids = [
    'malformed-json',
    'truncated-gzip',
    'gzip-trailing-junk',
    'utf8-bom',
    'invalid-utf8',
    'empty-file',
    'foreign-tenant-line',
    'no-tenant',
    'no-message-id',
    'tenant-traversal',
    'tenant-slash',
    'tenant-dots',
    'tenant-space',
    'tenant-lookalike',
    'tenant-nul',
    'tenant-sql',
    'tenant-too-long',
    'time-far-past',
    'time-far-future',
    'time-digits',
    'time-no-zone',
    'time-invalid-date',
    'content-400kb',
    'content-2mb',
    'deep-nesting',
    'deeper-nesting',
    'dynamodb-types',
    'unpaired-surrogates',
    'lone-surrogate-ids',
    'lone-surrogate-sender',
    'dynamodb-malformed-image',
    'dynamodb-deep-nesting',
    'tenant-fields-disagree',
    'tenant-fields-agree',
    'system-column-names',
  ];

  it('covers every case of the catalogue', () => {
    expect(result.cases.map((c) => c.id)).toStrictEqual(ids);
  });

  it.each(ids)('%s', (id) => {
    const c = result.cases.find((x) => x.id === id) as BadInputCase;
    const outcome = result.outcomes.find((o) => o.id === id);
    const seqs = (outcome?.rows ?? []).map((r) => String(r.source_seq));
    expect(outcome).toStrictEqual({ id, reasons: c.reasons, rows: KEPT[id]?.(c, seqs) ?? [] });
  });

  it('the control messages fed alongside every bad record all reach the lake', () => {
    expect(result.controlRows.map((r) => [r.message_id, r.content])).toStrictEqual(
      Array.from({ length: result.controlCount }, (_, i) => [`control-${i}`, `良い ${i}`]).sort((a, b) =>
        (a[0] as string) < (b[0] as string) ? -1 : 1,
      ),
    );
  });

  it('a 10,000-record batch is staged as one object and compacted to exactly 10,000 rows', () => {
    expect(result.bulkRows).toBe(BULK_RECORDS);
    const bulk = result.summary.results.find((r) => r.tenant === 'catalogue-bulk');
    expect([bulk?.status, bulk?.inputs, bulk?.rowsRead, bulk?.rowsWritten]).toStrictEqual(['compacted', 1, 10_000, 10_000]);
  });

  it('messages in = rows out + collapsed + quarantined (+ lines in unreadable gzip tails), exactly', () => {
    expect(result.totals).toStrictEqual({
      messagesIn: 10_065,
      rowsOut: 10_041,
      collapsed: 0,
      quarantinedAtIngest: 20,
      quarantinedAtCompaction: 3,
      objectsQuarantined: 3,
      linesInUnreadableTails: 1,
    });
    expect(reconciles(result.totals)).toBe(true);
  });

  it('no invalid tenant id became a folder anywhere, and the foreign line reached no partition', async () => {
    const keys = (await listAll(store, '')).map((o) => o.key);
    const tenants = [...new Set(keys.flatMap((k) => /tenant_id=([^/]+)\//.exec(k)?.[1] ?? []))].sort();
    expect(tenants).toStrictEqual(['catalogue', 'catalogue-bulk']);
    expect(result.summary.results.map((r) => [r.tenant, r.status])).toStrictEqual([
      ['catalogue', 'compacted'],
      ['catalogue-bulk', 'compacted'],
    ]);
  });
});
