import { appendFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quoteLiteral } from '../../src/core/sql/quote.js';
import { partFiles, writtenAsReported } from '../../src/engine/mergePartition.js';
import { partStatsOn, writtenParts } from '../../src/engine/partStats.js';
import { duckDbFixture } from '../kit/duckDbFixture.js';

const fixture = duckDbFixture('makoto-lake-part-stats-');
let connection: DuckDBConnection;
beforeAll(async () => {
  connection = await fixture.db.connect();
});
afterAll(() => connection.closeSync());

/**
 * 3,000 rows in row groups of ~1,000, parts of ~`fileBytes`: instants with and without milliseconds, a
 * message id past 32 characters in the last row group only, sender_id all NULL, conversation_id NULL every
 * seventh row.
 */
const rowsSql = `SELECT CAST(epoch_ms(1754870400000 + i * 1001) AS TIMESTAMP_MS) AS created_at,
    CASE WHEN i = 2999 THEN repeat('z', 40) ELSE 'm-' || lpad(i::VARCHAR, 5, '0') END AS message_id,
    CASE WHEN i % 7 = 0 THEN NULL ELSE 'c-' || (i % 13) END AS conversation_id,
    NULL::VARCHAR AS sender_id, repeat('本文', 20) || i AS content
  FROM range(3000) r(i)`;

async function copy(out: string, fileBytes: number) {
  await mkdir(out, { recursive: true });
  const result = await connection.runAndReadAll(
    `COPY (${rowsSql}) TO ${quoteLiteral(out)} (FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 1000, FILE_SIZE_BYTES ${fileBytes}, FILENAME_PATTERN 'part-{i}', RETURN_STATS true)`,
  );
  return writtenParts(result.getRowObjectsJS());
}

describe('the writer’s reported statistics (COPY … RETURN_STATS)', () => {
  it('are the statistics the footer holds, for one part and for several', async () => {
    const one = await copy(join(fixture.path, 'one'), 256 * 1024 * 1024);
    expect(one).toEqual([
      {
        name: 'part-0.parquet',
        bytes: expect.any(Number),
        rows: 3000,
        stats: JSON.stringify({
          numRecords: 3000,
          // message_id's largest value is 40 characters: no max (a cut value is not a bound)
          minValues: { created_at: '2025-08-11T00:00:00.000Z', message_id: 'm-00000', conversation_id: 'c-0' },
          maxValues: { created_at: '2025-08-11T00:50:01.999Z', conversation_id: 'c-9' },
          nullCount: { created_at: 0, message_id: 0, conversation_id: 429, sender_id: 3000 },
        }),
      },
    ]);
    const several = await copy(join(fixture.path, 'several'), 1_000);
    // DuckDB cuts a file after a row group past the size: where is its business, the totals and statistics ours
    expect(several.length).toBeGreaterThan(1);
    for (const [i, dirName] of [
      [one, 'one'],
      [several, 'several'],
    ] as const) {
      const files = await partFiles(join(fixture.path, dirName));
      const footers = [];
      for (const file of files) footers.push(await partStatsOn(connection, file));
      expect(i.map((p) => ({ rows: p.rows, stats: p.stats }))).toEqual(footers);
    }
    expect(several.reduce((n, p) => n + p.rows, 0)).toBe(3000);
  });

  it('verify accepts the parts as reported and refuses a part whose size is not the reported one', async () => {
    const out = join(fixture.path, 'changed');
    const reported = await copy(out, 1_000);
    const files = await partFiles(out);
    expect((await writtenAsReported(files, reported)).map((p) => p.name)).toEqual(files.map((f) => f.slice(out.length + 1)));
    await expect(writtenAsReported(files.slice(1), reported)).rejects.toThrow(
      /the merge's writer reported part-0\.parquet, not found: nothing was published/,
    );
    await appendFile(files[1] as string, 'x');
    await expect(writtenAsReported(files, reported)).rejects.toThrow(
      new RegExp(
        `the merge wrote part-1\\.parquet \\(${(reported[1]?.bytes ?? 0) + 1} bytes\\) but its writer reported ${reported[1]?.bytes} bytes`,
      ),
    );
  });
});
