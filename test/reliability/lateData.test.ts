import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ingestBatch } from '../../src/capture/ingest/ingestBatch.js';
import { dynamodbEventChanges } from '../../src/capture/ingest/sources.js';
import { loadConfig } from '../../src/core/config.js';
import { analyticsPrefix, stagingPrefix } from '../../src/core/staging/layout.js';
import type { CompactionDeps } from '../../src/engine/compactPartition.js';
import { compactTenants } from '../../src/engine/compactTenants.js';
import { runCompaction } from '../../src/jobs/runCompaction.js';
import { findLatePartitions } from '../../src/lake/lateData.js';
import { readManifest } from '../../src/lake/manifest.js';
import { DeltaTable, partitionFiles, TAG_MANIFEST, tableKey } from '../../src/lake/table/deltaTable.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { listAll } from '../../src/ports/store/ObjectStore.js';
import { duckDbFixture } from '../kit/duckDbFixture.js';
import { chatItem, dynamodbRecord } from '../kit/factories.js';
import { readPartition } from '../kit/pipeline.js';

const fixture = duckDbFixture('makoto-lake-late-', { memoryLimit: '1GB' });

const D = '2025-08-11';
const NEXT = '2025-08-12';
const NIGHT_1 = Date.parse('2025-08-11T17:00:00Z'); // 02:00 JST on the 12th: compacts the 11th
const NIGHT_2 = Date.parse('2025-08-12T17:00:00Z'); // 02:00 JST on the 13th: compacts the 12th (+ late)

let store: LocalStore;
let n = 0;

const deps = (now: number): CompactionDeps => ({
  store,
  db: fixture.db,
  workDirectory: join(fixture.path, `work-${++n}`),
  now: () => now,
});
const at = (iso: string) => ({ createdAt: iso, updatedAt: iso });

async function deliver(records: ReturnType<typeof dynamodbRecord>[], now: number, arn = 'stream-a'): Promise<string[]> {
  const { changes, batchId } = dynamodbEventChanges({ Records: records.map((r) => ({ ...r, eventSourceARN: arn })) });
  const result = await ingestBatch(store, changes, { source: 'dynamodb', batchId, now });
  expect(result.failed).toStrictEqual([]);
  return result.written.map((w) => w.key);
}

/** What the planner reports as a partition's staging size: the listed sizes of its staging objects. */
const stagingBytes = async (date: string) => (await listAll(store, stagingPrefix('acme', date))).reduce((n, o) => n + o.size, 0);

const lake = async (date: string) =>
  (await readPartition(store, 'acme', date, join(fixture.path, `read-${++n}`))).map((r) => [r.message_id, r.content]);

/** Day D compacted on night 1; then late changes of D arrive during the 12th. */
async function compactedDayWithLateChanges(): Promise<{ firstRun: string; rewritten: string }> {
  store = new LocalStore(join(fixture.path, `data-${++n}`));
  const [rewritten] = await deliver(
    [
      dynamodbRecord({ seq: 10, item: chatItem({ messageId: 'a', content: 'A', ...at('2025-08-11T01:00:00Z') }) }),
      dynamodbRecord({ seq: 12, item: chatItem({ messageId: 'b', content: 'B', ...at('2025-08-11T02:00:00Z') }) }),
    ],
    NIGHT_1 - 7_200_000,
  );
  await deliver(
    [dynamodbRecord({ seq: 20, item: chatItem({ messageId: 'c', content: 'C', ...at('2025-08-11T03:00:00Z') }) })],
    NIGHT_1 - 3_600_000,
  );
  const first = await compactTenants(deps(NIGHT_1), D, { tenants: ['acme'], concurrency: 1 });
  expect(first.results.map((r) => [r.date, r.status, r.rowsWritten])).toStrictEqual([[D, 'compacted', 3]]);
  expect(await lake(D)).toStrictEqual([
    ['a', 'A'],
    ['b', 'B'],
    ['c', 'C'],
  ]);

  // during the 12th: an edit of a, a user delete of c, a new message of the 11th that lagged past midnight,
  // and the first batch re-delivered by its shard with a record it had missed (same name, new version)
  await deliver(
    [
      dynamodbRecord({ seq: 30, item: chatItem({ messageId: 'a', content: 'A edited', ...at('2025-08-11T01:00:00Z') }) }),
      dynamodbRecord({
        seq: 31,
        event: 'REMOVE',
        item: chatItem({ messageId: 'c', content: 'C', ...at('2025-08-11T03:00:00Z') }),
      }),
      dynamodbRecord({ seq: 32, item: chatItem({ messageId: 'd', content: 'late D', ...at('2025-08-11T14:59:59.999Z') }) }),
      dynamodbRecord({ seq: 33, item: chatItem({ messageId: 'x', content: 'the 12th', ...at('2025-08-12T05:00:00Z') }) }),
    ],
    NIGHT_2 - 7_200_000,
  );
  const [again] = await deliver(
    [
      dynamodbRecord({ seq: 10, item: chatItem({ messageId: 'a', content: 'A', ...at('2025-08-11T01:00:00Z') }) }),
      dynamodbRecord({ seq: 11, item: chatItem({ messageId: 'e', content: 'E', ...at('2025-08-11T01:30:00Z') }) }),
      dynamodbRecord({ seq: 12, item: chatItem({ messageId: 'b', content: 'B', ...at('2025-08-11T02:00:00Z') }) }),
    ],
    NIGHT_2 - 3_600_000,
  );
  expect(again).toBe(rewritten);
  return { firstRun: first.results[0]?.runId as string, rewritten: rewritten as string };
}

describe('late data', () => {
  it('the nightly run for D+1 re-compacts D, says exactly why, and a run without changes re-does nothing', async () => {
    const { firstRun } = await compactedDayWithLateChanges();
    expect(await findLatePartitions(store, ['acme'], NEXT, 7)).toStrictEqual([
      { tenant: 'acme', date: D, reason: `2 staging objects newer than run ${firstRun}`, stagingBytes: await stagingBytes(D) },
    ]);

    const night = await compactTenants(deps(NIGHT_2), NEXT, { tenants: ['acme'], concurrency: 1, lateLookbackDays: 7 });
    expect(night.results.map((r) => [r.date, r.status, r.rowsRead, r.rowsWritten, r.reason])).toStrictEqual([
      [NEXT, 'compacted', 1, 1, undefined],
      [D, 'compacted', 7, 4, `2 staging objects newer than run ${firstRun}`],
    ]);
    expect(await lake(D)).toStrictEqual([
      ['a', 'A edited'],
      ['b', 'B'],
      ['d', 'late D'],
      ['e', 'E'],
    ]);
    expect(await lake(NEXT)).toStrictEqual([['x', 'the 12th']]);
    expect((await readManifest(store, 'acme', D))?.previous_run_id).toBe(firstRun);

    // nothing changed since: the same nightly run does the target day only
    expect(await findLatePartitions(store, ['acme'], NEXT, 7)).toStrictEqual([]);
    const again = await compactTenants(deps(NIGHT_2 + 60_000), NEXT, { tenants: ['acme'], concurrency: 1, lateLookbackDays: 7 });
    expect(again.results.map((r) => [r.date, r.status, r.reason])).toStrictEqual([[NEXT, 'compacted', undefined]]);
  });

  it('a day outside the lookback window is not re-checked; a never compacted day in it is, with its reason', async () => {
    await compactedDayWithLateChanges();
    expect(await findLatePartitions(store, ['acme'], '2025-08-20', 7)).toStrictEqual([]);
    expect((await findLatePartitions(store, ['acme'], '2025-08-18', 7)).map((p) => [p.date, p.reason])).toStrictEqual([
      [D, expect.stringMatching(/^2 staging objects newer than run /)],
      [NEXT, 'never compacted: 1 staging objects'],
    ]);
    await deliver([dynamodbRecord({ seq: 40, item: chatItem({ messageId: 'y', ...at('2025-08-09T05:00:00Z') }) })], NIGHT_2);
    expect(await findLatePartitions(store, 'all', NEXT, 7)).toStrictEqual([
      {
        tenant: 'acme',
        date: '2025-08-09',
        reason: 'never compacted: 1 staging objects',
        stagingBytes: await stagingBytes('2025-08-09'),
      },
      {
        tenant: 'acme',
        date: D,
        reason: expect.stringMatching(/^2 staging objects newer than run /),
        stagingBytes: await stagingBytes(D),
      },
    ]);
  });

  it('an object compaction ignores (a _SUCCESS marker) does not make the day late forever', async () => {
    await compactedDayWithLateChanges();
    await store.putBytes('staging/messages/tenant_id=acme/dt=2025-08-11/_SUCCESS', '');
    await compactTenants(deps(NIGHT_2), NEXT, { tenants: ['acme'], concurrency: 1, lateLookbackDays: 7 });
    expect(await findLatePartitions(store, ['acme'], NEXT, 7)).toStrictEqual([]);
  });

  it("a file in the folder the table does not name (a killed run's upload) is read by no one and makes no work; the nightly vacuum removes it and the replaced files after the retention", async () => {
    const { firstRun } = await compactedDayWithLateChanges();
    const night = await compactTenants(deps(NIGHT_2), NEXT, { tenants: ['acme'], concurrency: 1, lateLookbackDays: 7 });
    const nightD = night.results.find((r) => r.date === D);
    expect(nightD?.status).toBe('compacted');
    const published = partitionFiles(await new DeltaTable(store, {}).snapshot(), 'acme', D);
    expect(published.map((a) => tableKey(a.path))).toStrictEqual(nightD?.outputFiles);
    // a dead run's part: a copy of the published part under another run's name (every row twice in the folder)
    const stray = `${analyticsPrefix('acme', D)}part-0-20250812T180000000Z-deadbeef.parquet`;
    await store.putBytes(stray, await readFile(join(store.root, nightD?.outputFiles[0] as string)));
    expect((await listAll(store, analyticsPrefix('acme', D))).map((o) => o.key).sort()).toStrictEqual(
      [`${analyticsPrefix('acme', D)}part-0-${firstRun}.parquet`, ...(nightD?.outputFiles ?? []), stray].sort(),
    );
    const rowsD = [
      ['a', 'A edited'],
      ['b', 'B'],
      ['d', 'late D'],
      ['e', 'E'],
    ];
    expect(await lake(D)).toStrictEqual(rowsD);
    expect(await findLatePartitions(store, ['acme'], NEXT, 7)).toStrictEqual([]);

    // the nightly run eight days later (past the vacuum's 7-day retention): D needs nothing; the vacuum
    // leaves D's folder, its run manifests and its remembered deletes equal to what the current version names
    const later = Date.now() + 8 * 24 * 3_600_000;
    const config = loadConfig({ DATA_DIR: store.root, TEMP_DIR: fixture.path, DUCKDB_THREADS: '2', DUCKDB_MEMORY_LIMIT: '1GB' });
    const summary = await runCompaction({ store, config, date: NEXT, tenants: ['acme'], late: true, now: () => later });
    expect(summary.results.map((r) => [r.date, r.status])).toStrictEqual([[NEXT, 'compacted']]);
    const [file] = partitionFiles(await new DeltaTable(store, {}).snapshot(), 'acme', D);
    expect((await listAll(store, analyticsPrefix('acme', D))).map((o) => o.key)).toStrictEqual(nightD?.outputFiles);
    expect((await listAll(store, `manifests/messages/tenant_id=acme/dt=${D}/`)).map((o) => o.key)).toStrictEqual([
      file?.tags?.[TAG_MANIFEST],
    ]);
    expect((await readManifest(store, 'acme', D))?.run_id).toBe(nightD?.runId);
    expect((await listAll(store, `tombstones/messages/tenant_id=acme/dt=${D}/`)).map((o) => o.key)).toStrictEqual([
      (await readManifest(store, 'acme', D))?.tombstones?.key,
    ]);
    expect(await lake(D)).toStrictEqual(rowsD);
  });

  it('runCompaction({ late: true }) — what the CLI, Lambda and daily_batch call — re-compacts D too', async () => {
    await compactedDayWithLateChanges();
    const config = loadConfig({ DATA_DIR: store.root, TEMP_DIR: fixture.path, DUCKDB_THREADS: '2', DUCKDB_MEMORY_LIMIT: '1GB' });
    const summary = await runCompaction({ store, config, date: NEXT, tenants: ['acme'], late: true, now: () => NIGHT_2 });
    expect(summary.results.map((r) => [r.date, r.status])).toStrictEqual([
      [NEXT, 'compacted'],
      [D, 'compacted'],
    ]);
  });
});
