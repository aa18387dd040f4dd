import { join } from 'node:path';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifiedRowsSql } from '../../src/compaction/compactionSql.js';
import { latestVersionsSql } from '../../src/compaction/latestVersionSql.js';
import { installTally, openTally, TALLY_FUNCTION } from '../../src/compaction/tally.js';
import { openDuckDb } from '../../src/duckdb/openDuckDb.js';
import { quoteLiteral } from '../../src/sql/quote.js';
import { tempDir } from '../kit/tempDir.js';

interface Row {
  message_id: string | null;
  source_seq: string;
  ingested_at: number;
  filename: string;
  op: string;
  reject_reason: string | null;
  content: string;
}

let dir: Awaited<ReturnType<typeof tempDir>>;
let db: DuckDBInstance;
let connection: DuckDBConnection;
beforeAll(async () => {
  dir = await tempDir();
  db = await openDuckDb({ memoryLimit: '256MB', threads: 2, workDirectory: join(dir.path, 'duck') });
  await installTally(db);
  connection = await db.connect();
});
afterAll(async () => {
  connection.closeSync();
  db.closeSync();
  await dir.cleanup();
});

const row = (overrides: Partial<Row>): Row => ({
  message_id: 'm1',
  source_seq: '1',
  ingested_at: 1000,
  filename: 'a.ndjson.gz',
  op: 'upsert',
  reject_reason: null,
  content: 'x',
  ...overrides,
});

const text = (v: string | null) => (v === null ? 'NULL::VARCHAR' : quoteLiteral(v));
/** The rows as a relation with the columns the module needs (and one wide column, content). */
function relation(rows: Row[]): string {
  const values = rows
    .map((r) =>
      [r.message_id, r.source_seq, String(r.ingested_at), r.filename, r.op, r.reject_reason, r.content]
        .map((v, i) => (i === 2 ? `${v}::BIGINT` : text(v as string | null)))
        .join(', '),
    )
    .map((v) => `(${v})`)
    .join(', ');
  return `(SELECT * FROM (VALUES ${values}) AS t(message_id, source_seq, ingested_at, filename, op, reject_reason, content))`;
}

let run = 0;
/** The selected rows (message id, content) in message order, and the counts the tally saw. */
async function latest(rows: Row[]) {
  const runKey = `lv-${++run}`;
  const tally = openTally(runKey);
  try {
    const reader = await connection.runAndReadAll(
      `SELECT message_id, content FROM (${latestVersionsSql(relation(rows), TALLY_FUNCTION, runKey)}) ORDER BY message_id`,
    );
    return { rows: reader.getRowObjectsJson(), counts: tally.read() };
  } finally {
    tally.end();
  }
}

/** The same through the reference: classifiedRowsSql, the wide window the engine used before. */
async function reference(rows: Row[]) {
  const reader = await connection.runAndReadAll(
    `SELECT message_id, content, row_kind FROM (${classifiedRowsSql(relation(rows))}) ORDER BY message_id`,
  );
  const kinds = reader.getRowObjectsJson();
  const names = ['current', 'deleted', 'superseded', 'duplicate', 'rejected'];
  const counts = Object.fromEntries(names.map((n, i) => [n, kinds.filter((k) => k.row_kind === i).length]));
  return {
    rows: kinds.filter((k) => k.row_kind === 0).map(({ message_id, content }) => ({ message_id, content })),
    counts,
  };
}

describe('latestVersionsSql', () => {
  it('keeps one copy of a delivery written twice into one file, counting the other as a duplicate', async () => {
    expect(
      await latest([
        row({ content: 'twice' }),
        row({ content: 'twice' }),
        row({ message_id: 'm2', content: 'once' }),
        row({ message_id: 'm3', source_seq: '5', content: 'three times' }),
        row({ message_id: 'm3', source_seq: '5', content: 'three times' }),
        row({ message_id: 'm3', source_seq: '5', content: 'three times' }),
      ]),
    ).toStrictEqual({
      rows: [
        { message_id: 'm1', content: 'twice' },
        { message_id: 'm2', content: 'once' },
        { message_id: 'm3', content: 'three times' },
      ],
      counts: { current: 3, deleted: 0, superseded: 0, duplicate: 3, rejected: 0 },
    });
  });

  it('orders feed positions as numbers, then the first ingestion, then the first file', async () => {
    expect(
      await latest([
        row({ source_seq: '9', content: 'nine' }),
        row({ source_seq: '10', content: 'ten' }),
        row({ message_id: 'm2', source_seq: '7', ingested_at: 2000, content: 'later delivery' }),
        row({ message_id: 'm2', source_seq: '7', ingested_at: 1000, filename: 'z.ndjson.gz', content: 'first delivery' }),
        row({ message_id: 'm3', source_seq: '7', filename: 'b.ndjson.gz', content: 'second file' }),
        row({ message_id: 'm3', source_seq: '7', filename: 'a.ndjson.gz', content: 'first file' }),
      ]),
    ).toStrictEqual({
      rows: [
        { message_id: 'm1', content: 'ten' },
        { message_id: 'm2', content: 'first delivery' },
        { message_id: 'm3', content: 'first file' },
      ],
      counts: { current: 3, deleted: 0, superseded: 1, duplicate: 2, rejected: 0 },
    });
  });

  it('never lets a rejected row win, and drops messages whose latest version is a delete', async () => {
    expect(
      await latest([
        row({ source_seq: '1', content: 'valid' }),
        row({ source_seq: '99', reject_reason: 'dt 2025-08-12 does not match the partition', content: 'rejected newer' }),
        row({ message_id: null, source_seq: '3', reject_reason: 'missing message_id', content: 'no id' }),
        row({ message_id: 'm2', source_seq: '1', content: 'gone' }),
        row({ message_id: 'm2', source_seq: '2', op: 'delete', content: 'gone' }),
        row({ message_id: 'm2', source_seq: '2', op: 'delete', content: 'gone' }),
      ]),
    ).toStrictEqual({
      rows: [{ message_id: 'm1', content: 'valid' }],
      counts: { current: 1, deleted: 1, superseded: 1, duplicate: 1, rejected: 2 },
    });
  });

  it('gives no rows and zero counts for an empty day', async () => {
    const empty = `(SELECT * FROM ${relation([row({})])} WHERE false)`;
    const tally = openTally('empty');
    const reader = await connection.runAndReadAll(`SELECT * FROM (${latestVersionsSql(empty, TALLY_FUNCTION, 'empty')})`);
    expect([reader.getRowObjectsJson(), tally.read()]).toStrictEqual([
      [],
      { current: 0, deleted: 0, superseded: 0, duplicate: 0, rejected: 0 },
    ]);
    tally.end();
  });

  it('selects the same rows with the same counts as the wide window, on a day of many versions and copies', async () => {
    // deterministic pseudo-random day: 60 messages, up to 4 versions each, re-deliveries in the same and
    // other files, deletes and rejected rows; copies of one key always carry the same content
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const rows: Row[] = [];
    for (let m = 0; m < 60; m++) {
      for (let v = 0; v < 1 + Math.floor(random() * 4); v++) {
        const seq = String(Math.floor(random() * 2000));
        const base = row({ message_id: `m${m}`, source_seq: seq, op: random() < 0.15 ? 'delete' : 'upsert' });
        const file = `f${Math.floor(random() * 3)}.ndjson.gz`;
        const at = 1000 + Math.floor(random() * 3);
        const copies = 1 + Math.floor(random() * 3);
        for (let c = 0; c < copies; c++) {
          const sameFile = random() < 0.5;
          const r = { ...base, filename: sameFile ? file : `g${c}.ndjson.gz`, ingested_at: sameFile ? at : at + c + 1 };
          rows.push({ ...r, content: `${r.message_id}/${r.source_seq}/${r.ingested_at}/${r.filename}` });
        }
        if (random() < 0.1) rows.push({ ...base, source_seq: '99999', reject_reason: 'unknown op bogus', content: 'bad' });
      }
    }
    const expected = await reference(rows);
    expect(expected.counts.duplicate).toBeGreaterThan(20); // the day really has copies, versions and rejects
    expect(expected.counts.superseded).toBeGreaterThan(20);
    expect(expected.counts.rejected).toBeGreaterThan(5);
    expect(await latest(rows)).toStrictEqual(expected);
  });
});
