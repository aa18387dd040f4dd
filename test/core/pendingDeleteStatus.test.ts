import { join } from 'node:path';
import type { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../compactor/cli.js';
import { ingestBatch } from '../../src/capture/ingest/ingestBatch.js';
import { cosmosDocumentChanges } from '../../src/capture/ingest/sources.js';
import { statusAfterRun } from '../../src/jobs/runStatus.js';
import { planCompaction } from '../../src/lake/lateData.js';
import { metricValues, statusMetrics } from '../../src/ops/metrics.js';
import { openDuckDb } from '../../src/ports/duckdb/openDuckDb.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { tempDir } from '../kit/tempDir.js';

/**
 * `status` and the deletes waiting under pending/deletes/ (issue 21 items 6 and 10): how many, the oldest,
 * why they wait, and when that needs attention — an unreadable object at once, a delete the nightly run did
 * not search after its run was due, a delete still waiting after three nightly runs.
 */
let dir: Awaited<ReturnType<typeof tempDir>>;
let db: DuckDBInstance;
beforeAll(async () => {
  dir = await tempDir();
  db = await openDuckDb({ memoryLimit: '256MB', threads: 1, workDirectory: dir.path });
});
afterAll(async () => {
  db.closeSync();
  await dir.cleanup();
});

/** Captured at 2025-08-11 12:00 JST; the nightly runs after it: 2025-08-12, -13, -14 02:00 JST. */
const CAPTURED = Date.parse('2025-08-11T03:00:00Z');

async function status(data: string, at: string, argv: string[] = []) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await main(
    ['status', '2025-08-11', 'acme', ...argv],
    { DATA_DIR: data, TEMP_DIR: dir.path, DUCKDB_THREADS: '1' },
    { stdout: (t) => stdout.push(t), stderr: (t) => stderr.push(t) },
    () => Date.parse(at),
  );
  return { code, lines: stdout.join('\n').split('\n'), stdout: stdout.join('\n') };
}

/** The pending-deletes table and the last line, without the rule under the header (columns split on 2+ spaces). */
const pendingSection = (lines: string[]) =>
  lines
    .slice(lines.findIndex((l) => l.startsWith('pending deletes tenant')))
    .filter((l) => !/^-[- ]*$/.test(l))
    .map((l) => l.split(/ {2,}/).filter(Boolean));

describe('status: deletes that name no day, waiting under pending/deletes/', () => {
  it('counts them with the oldest and its reason; attention when unread, unsearched past its run, or waiting 3 nights', async () => {
    const data = join(dir.path, 'lake');
    const store = new LocalStore(data);
    // a metadata-only delete (all-versions-and-deletes mode) of a message the lake never got
    const { changes, batchId } = cosmosDocumentChanges([
      { metadata: { operationType: 'delete', lsn: 70, crts: 1754881200, id: 'ghost', partitionKey: { tenantId: 'acme' } } },
    ]);
    const result = await ingestBatch(store, changes, { source: 'cosmos', batchId, now: CAPTURED });
    expect([result.staged, result.waiting]).toStrictEqual([1, 1]);
    // an object the planner cannot read (left for an operator)
    await store.putBytes('pending/deletes/messages/tenant_id=globex/broken.ndjson.gz', 'not gzip');

    // before its first nightly run: acme's delete waits unsearched, without attention; globex's object needs it
    const early = await status(data, '2025-08-11T05:00:00Z');
    expect(early.code).toBe(5);
    expect(pendingSection(early.lines)).toStrictEqual([
      ['pending deletes tenant', 'objects', 'deletes', 'placed', 'waiting', 'oldest waiting', 'why', 'needs attention'],
      [
        'acme',
        '1',
        '1',
        '0',
        '1',
        '2025-08-11T03:00:00.000Z',
        'not searched yet: the nightly run searches the table for its message',
        '-',
      ],
      [
        'globex',
        '1',
        '0',
        '0',
        '0',
        '-',
        '-',
        '1 pending-deletes object cannot be read (the nightly run leaves it): pending/deletes/messages/tenant_id=globex/broken.ndjson.gz',
      ],
      [],
      ['1 needs attention'],
    ]);

    // its run (2025-08-12 02:00 JST) plus two hours passed, and no planner searched it
    await store.delete('pending/deletes/messages/tenant_id=globex/broken.ndjson.gz');
    const unsearched = await status(data, '2025-08-11T19:00:00Z');
    expect([unsearched.code, pendingSection(unsearched.lines)[1]?.at(-1), unsearched.lines.at(-1)]).toStrictEqual([
      5,
      '1 delete not searched by the nightly run due 2025-08-12 02:00 JST',
      '1 needs attention',
    ]);

    // the nightly planner searched the table and found no day holding "ghost": it waits, with the reason
    const placed: unknown[] = [];
    await planCompaction(store, ['acme'], {
      placement: { db, workDirectory: dir.path },
      onPlaced: (_tenant, p) => placed.push([p.placed, p.waiting, p.raced, p.unreadable]),
    });
    expect(placed).toStrictEqual([[0, 1, 0, []]]);
    const searched = await status(data, '2025-08-12T18:59:59Z');
    const why =
      'message "ghost" is in no data file of the table (version -1; 0 of 0 files read): it is placed once a compaction publishes it';
    expect([searched.code, pendingSection(searched.lines)]).toStrictEqual([
      0,
      [
        ['pending deletes tenant', 'objects', 'deletes', 'placed', 'waiting', 'oldest waiting', 'why', 'needs attention'],
        ['acme', '1', '1', '0', '1', '2025-08-11T03:00:00.000Z', why, '-'],
        [],
        ['nothing needs attention'],
      ],
    ]);

    // three nightly runs (the third 2025-08-14 02:00 JST = 2025-08-13T17:00Z) plus the grace: attention
    const stuck = await status(data, '2025-08-13T19:00:00Z', ['--json']);
    expect(stuck.code).toBe(5);
    expect(JSON.parse(stuck.stdout).pending_deletes).toStrictEqual([
      {
        tenant_id: 'acme',
        objects: 1,
        deletes: 1,
        placed: 0,
        waiting: 1,
        oldest_waiting: '2025-08-11T03:00:00.000Z',
        reason: why,
        unreadable: [],
        attention: [
          '1 delete still waiting after 3 nightly runs for a message no day of the table holds (oldest captured 2025-08-11T03:00:00.000Z): backfill its day, or remove the delete',
        ],
      },
    ]);
    expect(JSON.parse(stuck.stdout).needs_attention).toBe(1);

    // the status check a nightly run ends with (src/jobs/endRun.ts) counts it for the alarm, and not before
    const metrics = async (at: string) => {
      const checked = await statusAfterRun(store, [], Date.parse(at));
      if ('error' in checked) throw new Error(checked.error);
      return metricValues(statusMetrics(checked.status));
    };
    expect([await metrics('2025-08-12T18:59:59Z'), await metrics('2025-08-13T19:00:00Z')]).toStrictEqual([
      { PartitionsNeedingAttention: 0, StaleParts: 0, UncompactedStagingDays: 0, PendingDeletesNeedingAttention: 0 },
      { PartitionsNeedingAttention: 0, StaleParts: 0, UncompactedStagingDays: 0, PendingDeletesNeedingAttention: 1 },
    ]);
  });
});
