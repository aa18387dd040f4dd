import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quoteLiteral } from '../../src/core/sql/quote.js';
import { addClearId, hashId, matcherOf } from '../../src/jobs/erase/eraseMatcher.js';
import {
  MatchSession,
  parquetMatches,
  parquetMatchesMany,
  parquetSchemas,
  rewriteParquet,
} from '../../src/jobs/erase/lakeObjects.js';
import { openDuckDb, withConnection } from '../../src/ports/duckdb/openDuckDb.js';

const SALT = '00ff';
let dir: string;
let db: DuckDBInstance;
/** Three parts of the message columns, and one remembered-deletes file (message ids only). */
let parts: string[];
let deletes: string;

const rowsOf = (file: string) =>
  withConnection(db, async (c) =>
    (await c.runAndReadAll(`SELECT message_id FROM read_parquet(${quoteLiteral(file)}) ORDER BY message_id`))
      .getRows()
      .map((r) => String(r[0])),
  );

beforeAll(async () => {
  dir = await mkdtemp(join(process.env.TMPDIR ?? tmpdir(), 'erase-sql-'));
  db = await openDuckDb({ memoryLimit: '256MB', threads: 1, workDirectory: join(dir, 'duckdb') });
  parts = [0, 1, 2].map((i) => join(dir, `part-${i}.parquet`));
  deletes = join(dir, 'deletes.parquet');
  await withConnection(db, async (c) => {
    // part i: messages m<i>0..m<i>9; u-1 wrote m<i>0 and m<i>1; m<i>5 is in conversation u-1 (an id of any kind matches any column)
    for (const [i, file] of parts.entries())
      await c.run(
        `COPY (SELECT 'm' || ${i} || k AS message_id, CASE WHEN k = 5 THEN 'u-1' ELSE 'c-' || k END AS conversation_id,
                CASE WHEN k < 2 THEN 'u-1' WHEN k = 9 THEN NULL ELSE 'u-' || (k + 10) END AS sender_id, 'text ' || k AS content
              FROM range(10) t(k)) TO ${quoteLiteral(file)} (FORMAT parquet)`,
      );
    await c.run(
      `COPY (SELECT * FROM (VALUES ('m00'), ('m27'), ('zz')) v(message_id)) TO ${quoteLiteral(deletes)} (FORMAT parquet)`,
    );
  });
});

afterAll(async () => {
  db?.closeSync();
  await rm(dir, { recursive: true, force: true });
});

describe('the erase matcher in DuckDB', () => {
  it('matches the same rows by identifiers in clear as by their hashes, several files in one statement', async () => {
    const byHash = matcherOf('acme', SALT, [hashId(SALT, 'u-1'), hashId(SALT, 'm27')]);
    const byClear = matcherOf('acme', SALT, [], false, ['u-1', 'm27']);
    expect([...byClear.hashes].sort()).toStrictEqual([...byHash.hashes].sort());
    const results = [];
    for (const matcher of [byHash, byClear]) {
      const session = await MatchSession.open(db, matcher);
      try {
        const [group, ...others] = await parquetSchemas(session, [...parts, deletes]);
        expect(others.map((g) => g.files)).toStrictEqual([[deletes]]);
        expect(group?.files).toStrictEqual(parts);
        results.push(await parquetMatchesMany(session, parts, group?.columns ?? []));
      } finally {
        session.close();
      }
    }
    const sorted = (m: Map<string, { rows: number; messageIds: string[] }>) =>
      [...m].map(([f, v]) => [f, v.rows, [...v.messageIds].sort()]);
    expect(sorted(results[0] as Map<string, { rows: number; messageIds: string[] }>)).toStrictEqual([
      [parts[0], 3, ['m00', 'm01', 'm05']],
      [parts[1], 3, ['m10', 'm11', 'm15']],
      [parts[2], 4, ['m20', 'm21', 'm25', 'm27']],
    ]);
    expect(sorted(results[1] as Map<string, { rows: number; messageIds: string[] }>)).toStrictEqual(
      sorted(results[0] as Map<string, { rows: number; messageIds: string[] }>),
    );
  });

  it('a hash known only as a hash (a resumed erase) still matches next to the ones in clear; ids derived later are bound before the next statement', async () => {
    const matcher = matcherOf('acme', SALT, [hashId(SALT, 'm27')], false, ['u-1']);
    const session = await MatchSession.open(db, matcher);
    try {
      expect(await parquetMatches(session, parts[2] as string)).toMatchObject({ rows: 4 });
      expect((await parquetMatches(session, deletes))?.rows).toBe(1);
      addClearId(matcher, 'm00');
      expect((await parquetMatches(session, deletes))?.rows).toBe(2);
      // the rewrite keeps exactly the rows that do not match
      const out = join(dir, 'rewritten.parquet');
      expect(await rewriteParquet(session, parts[0] as string, out)).toBe(7);
      expect(await rowsOf(out)).toStrictEqual(['m02', 'm03', 'm04', 'm06', 'm07', 'm08', 'm09']);
      expect(await rewriteParquet(session, deletes, out)).toBe(1);
      expect(await rowsOf(out)).toStrictEqual(['zz']);
    } finally {
      session.close();
    }
  });
});
