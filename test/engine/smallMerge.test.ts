import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { StagedRecord } from '../../src/core/schema/messageSchema.js';
import { BACKFILL_SEQ, stagingKey } from '../../src/core/staging/layout.js';
import { gzipNdjson } from '../../src/core/staging/ndjson.js';
import { DEFAULT_COMPACTION_SETTINGS, type PartitionRun } from '../../src/engine/compactPartition.js';
import { compactTenants } from '../../src/engine/compactTenants.js';
import { type MergeOutcome, mergePartition } from '../../src/engine/mergePartition.js';
import { currentSnapshot } from '../../src/lake/lakeTable.js';
import { planPartition } from '../../src/lake/planPartition.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { duckDbFixture } from '../kit/duckDbFixture.js';
import { stagedRecord } from '../kit/factories.js';
import { readParquetRows } from '../kit/readParquet.js';

const fixture = duckDbFixture('makoto-lake-small-merge-');

const DATE = '2025-08-11';
const at = (time: string) => Date.parse(`${DATE}T${time}Z`);

const record = (r: Partial<StagedRecord>) =>
  stagedRecord({ tenant_id: 'acme', dt: DATE, created_at: at('01:00:00'), ingested_at: at('01:00:05'), ...r });

/** One PartitionRun of the merge alone, working in its own folder. */
function runIn(store: LocalStore, name: string): PartitionRun {
  const work = join(fixture.path, name);
  return {
    deps: { store, db: fixture.db, workDirectory: work },
    tenant: 'acme',
    date: DATE,
    runId: name,
    settings: DEFAULT_COMPACTION_SETTINGS,
    started: 0,
    now: () => 0,
    work,
    signal: new AbortController().signal,
    timed: (_phase, work) => work(),
    phase: async () => undefined,
  };
}

/** What a merge produced, with the rows of its part and tombstone files (every column), in a stable order. */
async function produced(outcome: MergeOutcome) {
  const { parts, partStats, tombstoneFile, rejected, ...rest } = outcome;
  return {
    ...rest,
    rejected: [...rejected].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    parts: parts.length,
    rows: await readParquetRows(parts, { orderBy: 'message_id' }),
    deletes: tombstoneFile ? await readParquetRows(tombstoneFile, { orderBy: 'message_id' }) : [],
  };
}

describe('a small partition merged in one statement', () => {
  it('publishes exactly what the three-statement merge does: edits, deletes, re-deliveries, backfills, remembered deletes, refused lines', async () => {
    const store = new LocalStore(join(fixture.path, 'lake'));
    await store.putBytes(
      stagingKey('acme', DATE, 'a-0001.ndjson.gz'),
      gzipNdjson([
        record({ message_id: 'm1', content: 'one v1', source_seq: '10' }),
        record({ message_id: 'm2', content: 'two', source_seq: '11' }),
        record({ message_id: 'm3', content: 'three', source_seq: '12' }),
        record({ message_id: 'm3', op: 'delete', content: null, source_seq: '13' }),
        record({ message_id: 'm4', content: 'four', source_seq: '14' }),
        record({ message_id: 'm6', content: 'six', source_seq: '15' }),
      ]),
    );
    // the published part and remembered deletes the next merge reads
    await compactTenants({ store, db: fixture.db, workDirectory: join(fixture.path, 'night') }, DATE, {
      tenants: 'all',
      concurrency: 1,
    });

    const lines = [
      record({ message_id: 'm1', content: 'one v3', source_seq: '30', ingested_at: at('03:00:00') }),
      record({ message_id: 'm1', content: 'one v2', source_seq: '9' }),
      // a re-delivery of a published version (the staged copy wins the tie) and a copy of a line in one object
      record({ message_id: 'm2', content: 'two', source_seq: '11', ingested_at: at('01:00:05') }),
      record({ message_id: 'm5', content: 'five', source_seq: '31' }),
      record({ message_id: 'm5', content: 'five', source_seq: '31' }),
      // a newer version of a remembered delete, and a new delete of a published message
      record({ message_id: 'm3', content: 'three again', source_seq: '32' }),
      record({ message_id: 'm4', op: 'delete', content: null, source_seq: '33' }),
      // a backfilled image taken after m6's latest capture, and one taken before m2's
      record({ message_id: 'm6', content: 'six backfilled', source_seq: BACKFILL_SEQ, ingested_at: at('02:00:00') }),
      record({ message_id: 'm2', content: 'two backfilled', source_seq: BACKFILL_SEQ, ingested_at: at('00:30:00') }),
      // rows that break a staging rule
      record({ message_id: 'm7', tenant_id: 'other', source_seq: '34' }),
      record({ message_id: 'm8', source_seq: 'x12' }),
    ];
    await store.putBytes(stagingKey('acme', DATE, 'a-0002.ndjson.gz'), gzipNdjson(lines));
    // an object with a line DuckDB refuses (salvaged line by line)
    const good = JSON.stringify(record({ message_id: 'm9', content: 'nine', source_seq: '35' }));
    const broken = '{"message_id": "m10", broken';
    await store.putBytes(stagingKey('acme', DATE, 'a-0003.ndjson.gz'), gzipSync(`${good}\n${broken}\n`));
    // JSON.parse's own message: its wording differs between Node versions (22 adds the line and column)
    const parseError = (() => {
      try {
        JSON.parse(broken);
      } catch (error) {
        return (error as Error).message;
      }
    })();

    const plan = await planPartition(
      store,
      await currentSnapshot({ store, db: fixture.db, workDirectory: fixture.path }),
      'acme',
      DATE,
    );
    expect([plan.staging.length, plan.published.length, plan.tombstones.length]).toStrictEqual([3, 1, 1]);
    const three = await produced(await mergePartition(runIn(store, 'three'), plan, { smallMergeBytes: 0 }));
    const one = await produced(await mergePartition(runIn(store, 'one'), plan, { smallMergeBytes: Number.POSITIVE_INFINITY }));

    expect(one).toStrictEqual(three);
    // 18 staging rows, 4 published, 1 remembered delete: m1 3 older versions (one a copy of the published one), m2
    // the published copy and the re-delivery duplicates and the earlier backfill superseded, m3's remembered delete
    // superseded by a newer version, m4 deleted, m5 delivered twice, m6 backfilled after its capture
    expect({
      counts: one.counts,
      read: [one.rowsRead, one.rowsCarried, one.deletesRemembered, one.rowsRejected, one.objectsRejected],
      rejected: one.rejected.map((r) => r.reason),
    }).toStrictEqual({
      counts: { current: 6, deleted: 1, superseded: 7, duplicate: 7, rejected: 2 },
      read: [18, 4, 1, 3, 0],
      rejected: [
        `malformed JSON: ${parseError}`,
        'source_seq must be decimal digits',
        'tenant_id other does not match the partition',
      ],
    });
    expect(one.rows.map((r) => [r.message_id, r.content])).toStrictEqual([
      ['m1', 'one v3'],
      ['m2', 'two'],
      ['m3', 'three again'],
      ['m5', 'five'],
      ['m6', 'six backfilled'],
      ['m9', 'nine'],
    ]);
    expect(one.deletes.map((d) => [d.message_id, d.source_seq])).toStrictEqual([['m4', '33']]);
  }, 60_000);
});
