import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSummaryKey } from '../../src/core/staging/layout.js';
import { targetDate } from '../../src/core/time/jst.js';
import { type ChatItem, generateChatDay, toCosmosDocument } from '../../src/jobs/demo/chatDay.js';
import { DeltaTable, TAG_DELETES, tableKey } from '../../src/lake/table/deltaTable.js';
import { getBytes, listAll } from '../../src/ports/store/ObjectStore.js';
import type { BlobStore } from '../../stores/blob/BlobStore.js';
import { startAzuriteWithQueues } from '../../tools/azureServers.js';
import { type ParsedLakeRow, readLake } from '../kit/readParquet.js';
import { tempDir } from '../kit/tempDir.js';
import { jsonLines } from './functionLogs.js';
import { drainQueue } from './queueHost.js';

const DATE = '2025-08-11';
const TENANTS = ['t-a', 't-b'];

let azurite: Awaited<ReturnType<typeof startAzuriteWithQueues>>;
let dirs: { path: string; cleanup: () => Promise<void> };
let store: BlobStore;
let fns: {
  ingest: typeof import('../../azure/functions/ingest_changefeed.js');
  daily: typeof import('../../azure/functions/daily_batch.js');
  job: typeof import('../../azure/functions/compact_job.js');
  http: typeof import('../../azure/functions/compact_http.js');
};
const logs: string[] = [];

const context = (functionName: string, retry?: { retryCount: number; maxRetryCount: number }) =>
  new InvocationContext({
    functionName,
    invocationId: `${functionName}-test`,
    retryContext: retry,
    logHandler: (level, ...args) => logs.push(`${level}: ${args.join(' ')}`),
  });

beforeAll(async () => {
  azurite = await startAzuriteWithQueues();
  dirs = await tempDir();
  // The Functions host passes app settings as environment variables; the handlers read them once.
  Object.assign(process.env, {
    AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString,
    AZURE_STORAGE_CONTAINER: 'functions-e2e',
    TENANT_ID: TENANTS.join(','),
    // daily_batch compacts today (JST) + TARGET_DATE_OFFSET: point it at DATE.
    TARGET_DATE_OFFSET: String((Date.parse(DATE) - Date.parse(targetDate(Date.now(), 0))) / 86_400_000),
    DATA_DIR: join(dirs.path, 'data'),
    TEMP_DIR: dirs.path,
    DUCKDB_THREADS: '1',
    DUCKDB_MEMORY_LIMIT: '512MB',
  });
  // Importing the function modules registers them; without a Functions host that must not fail.
  fns = {
    ingest: await import('../../azure/functions/ingest_changefeed.js'),
    daily: await import('../../azure/functions/daily_batch.js'),
    job: await import('../../azure/functions/compact_job.js'),
    http: await import('../../azure/functions/compact_http.js'),
  };
  const { azureRuntime } = await import('../../azure/runtime.js');
  store = (await azureRuntime()).store as BlobStore;
});

afterAll(async () => {
  await azurite?.stop();
  await dirs?.cleanup();
});

/** The day as the Cosmos change feed delivers it (no expiry entries: Cosmos removes expired items silently). */
const day = generateChatDay({ date: DATE, tenants: TENANTS, messagesPerTenant: 40, seed: 4, editRate: 0.15, deleteRate: 0.1 });
const feed = day.changes.filter((c) => c.kind !== 'expire').map((c) => toCosmosDocument(c));

/** What the lake must hold: the latest captured version of every message that was not deleted. */
function expectedRows(items: readonly ChatItem[]): ParsedLakeRow[] {
  return items
    .map((item) => {
      const doc = feed.filter((d) => d.id === item.messageId).at(-1) as Record<string, unknown>;
      const { model, tokens, ttl } = item;
      return {
        tenant_id: item.tenantId,
        dt: DATE,
        message_id: item.messageId,
        conversation_id: item.conversationId,
        sender_id: item.senderId,
        role: item.role,
        content: item.content,
        created_at: item.createdAt,
        updated_at: item.updatedAt,
        source: 'cosmos',
        source_seq: String(doc._lsn),
        attributes: {
          ...(model === undefined ? {} : { model, tokens }),
          ...(ttl === undefined ? {} : { ttl }),
          _cosmos: { _rid: doc._rid, _etag: doc._etag, _ts: doc._ts },
        },
      };
    })
    .sort((a, b) => a.tenant_id.localeCompare(b.tenant_id) || a.message_id.localeCompare(b.message_id));
}

describe('Azure Functions handlers against Azurite', () => {
  it('the day has edits and user deletes to apply', () => {
    expect(day.changes.filter((c) => c.kind === 'delete').length).toBeGreaterThan(0);
    expect(day.expected.length).toBeLessThan(80);
  });

  it('change-feed batches → ingest_changefeed → staging, re-delivery overwrites, bad documents quarantined', async () => {
    const batches: unknown[][] = [];
    for (let i = 0; i < feed.length; i += 25) batches.push(feed.slice(i, i + 25));
    (batches[1] as unknown[]).splice(3, 0, { id: 'orphan', createdAt: '2025-08-11T00:00:00Z', _lsn: 5 });
    const outcomes = [];
    for (const batch of [...batches].reverse())
      outcomes.push(await fns.ingest.ingestChangefeed(batch, context('ingest_changefeed')));
    const staged = (await listAll(store, 'staging/')).map((o) => o.key);
    expect(outcomes.reduce((n, o) => n + o.staged, 0)).toBe(feed.length);
    expect(outcomes.reduce((n, o) => n + o.quarantined, 0)).toBe(1);
    // a re-delivered batch writes the same object names: nothing new appears
    const again = await fns.ingest.ingestChangefeed(batches[0] as unknown[], context('ingest_changefeed'));
    expect(again.objects.every((k) => staged.includes(k))).toBe(true);
    expect((await listAll(store, 'staging/')).map((o) => o.key)).toStrictEqual(staged);
    expect(
      staged.every((k) =>
        /^staging\/messages\/tenant_id=t-[ab]\/dt=2025-08-11\/cosmos-b[0-9a-f]{16}_\d+_\d+\.ndjson\.gz$/.test(k),
      ),
    ).toBe(true);
    const quarantine = await listAll(store, 'quarantine/ingest/source=cosmos/');
    expect(quarantine.length).toBe(1);
    const entry = JSON.parse(gunzipSync(await getBytes(store, quarantine[0]?.key as string)).toString());
    expect(entry).toStrictEqual({
      reason: 'no tenant id (looked for tenant_id, tenantId)',
      source: 'cosmos',
      position: '5',
      batch_id: expect.stringMatching(/^cosmos-b[0-9a-f]{16}$/),
      quarantined_at: expect.any(String),
      raw: { id: 'orphan', createdAt: '2025-08-11T00:00:00Z', _lsn: 5 },
    });
  });

  it('daily_batch → queue → compact_job compacts the previous JST day into Parquet in Blob: exact rows read back with DuckDB', async () => {
    const planned = await fns.daily.dailyBatch({}, context('daily_batch'));
    expect([planned.target_date, planned.jobs, planned.queue]).toStrictEqual([DATE, 2, 'makoto-compaction-jobs']);
    await drainQueue(azurite.connectionString, planned.queue, fns.job.compactJob, {
      maxDequeueCount: 5,
      functionName: 'compact_job',
    });
    const summary = JSON.parse((await getBytes(store, runSummaryKey(DATE, planned.run_id))).toString('utf8'));
    expect(summary.ok).toBe(true);
    expect(summary.tenants.map((t: Record<string, unknown>) => [t.tenant_id, t.status, t.rows_written]).sort()).toStrictEqual([
      ['t-a', 'compacted', day.expected.filter((i) => i.tenantId === 't-a').length],
      ['t-b', 'compacted', day.expected.filter((i) => i.tenantId === 't-b').length],
    ]);
    expect(await readLake(store)).toStrictEqual(expectedRows(day.expected));
    // nothing was written to the local DATA_DIR, and the per-run work folder is gone
    expect(await readdir(dirs.path)).toStrictEqual([]);
  });

  it('a batch that cannot be staged is retried, then kept raw in the poison location after the last retry', async () => {
    const docs = [
      { id: 'p1', tenantId: 't-p', createdAt: '2025-08-11T01:00:00Z', content: 'x', _lsn: 900 },
      { id: 'p2', tenantId: 't-p', createdAt: '2025-08-11T02:00:00Z', content: 'y', _lsn: 901 },
    ];
    const name = `cosmos-${fns.ingest.feedRangeName(docs)}_900_901`;
    const blocked = `staging/messages/tenant_id=t-p/dt=2025-08-11/${name}.ndjson.gz`;
    // A real failure from the service: an infinite lease on the target blob makes every write fail (412).
    await store.putBytes(blocked, 'placeholder');
    const lease = store.container.getBlockBlobClient(blocked).getBlobLeaseClient();
    await lease.acquireLease(-1);
    try {
      await expect(
        fns.ingest.ingestChangefeed(docs, context('ingest_changefeed', { retryCount: 0, maxRetryCount: 2 })),
      ).rejects.toMatchObject({ name: 'StagingWriteError' });
      const last = await fns.ingest.ingestChangefeed(docs, context('ingest_changefeed', { retryCount: 2, maxRetryCount: 2 }));
      expect(last.poison).toMatch(new RegExp(`^quarantine/poison/source=cosmos/dt=\\d{4}-\\d{2}-\\d{2}/${name}\\.json\\.gz$`));
      const poison = JSON.parse(gunzipSync(await getBytes(store, last.poison as string)).toString());
      expect(poison).toStrictEqual({
        reason: expect.stringMatching(
          /^cannot stage 1 group\(s\): staging\/messages\/tenant_id=t-p\/.* \(2 records\): cannot write/,
        ),
        source: 'cosmos',
        batch_id: `cosmos-${fns.ingest.feedRangeName(docs)}`,
        function: 'ingest_changefeed',
        invocation_id: 'ingest_changefeed-test',
        retry_count: 2,
        quarantined_at: expect.any(String),
        documents: docs,
      });
      const poisonLine = jsonLines(logs).find((l) => l.message.startsWith('change feed batch failed after'));
      expect(poisonLine).toStrictEqual({
        level: 'error',
        message: 'change feed batch failed after the last retry; raw batch kept in the poison location',
        service: 'makoto-lake',
        invocation_id: 'ingest_changefeed-test',
        run_id: `cosmos-${fns.ingest.feedRangeName(docs)}`,
        retries: 2,
        poison: last.poison,
        error: expect.stringMatching(/^cannot stage 1 group\(s\): /),
      });
    } finally {
      await lease.releaseLease();
      await store.delete(blocked);
    }
  });

  const post = (body: string) =>
    fns.http.compactHttp(
      new HttpRequest({ method: 'POST', url: 'http://127.0.0.1/api/compact', body: { string: body } }),
      context('compact_http'),
    );

  it('compact_http: 400 with a clear message for a bad body, date or tenant', async () => {
    const cases: [string, string][] = [
      ['not json', 'the body must be JSON like {"target_date": "2025-08-11", "tenants": ["tenant-a"]}'],
      ['[1]', 'the payload must be a JSON object like {"target_date": "2025-08-11", "tenants": ["tenant-a"]}'],
      ['{"late":"yes"}', 'late must be true or false, got "yes"'],
      ['{"target_date":"2025-02-30"}', 'target_date must be a calendar date YYYY-MM-DD, got "2025-02-30"'],
      ['{"target_date":20250811}', 'target_date must be a string YYYY-MM-DD, got 20250811'],
      ['{"tenants":[]}', 'tenants must be a non-empty array of tenant ids or "*", got []'],
      ['{"tenants":["ok","../etc"]}', expect.stringMatching(/^tenants: .*"\.\.\/etc"/) as unknown as string],
      ['{"tenants":["a,b"]}', 'tenants: invalid tenant id "a,b"'],
      ['{"date":"2025-08-11"}', 'unknown field(s) date; expected target_date, tenants, late, intraday'],
    ];
    for (const [body, error] of cases) expect(await post(body)).toStrictEqual({ status: 400, jsonBody: { error } });
  });

  it('compact_http: 200 with the per-tenant summary', async () => {
    const response = await post(JSON.stringify({ target_date: DATE, tenants: TENANTS }));
    const outputs = await currentOutputs();
    expect(stable(response)).toStrictEqual({
      status: 200,
      jsonBody: {
        target_date: DATE,
        ok: true,
        totals: { tenants: 2, failed: 0, rows_read: feed.length, rows_written: day.expected.length, rows_rejected: 0 },
        tenants: TENANTS.map((t) => tenantJson(t, outputs)),
      },
    });
    expect(await readLake(store)).toStrictEqual(expectedRows(day.expected));
  });

  it('compact_http: 207 when one tenant fails and the other completes', async () => {
    // t-b fails for real: the remembered-deletes file its current version names is not Parquet any more
    const snapshot = await new DeltaTable(store, {}).snapshot();
    const blocked = [...snapshot.files.values()].find((a) => a.partitionValues.tenant_id === 't-b')?.tags?.[
      TAG_DELETES
    ] as string;
    const original = await getBytes(store, blocked);
    await store.putBytes(blocked, 'not parquet');
    const tbBefore = (await currentOutputs()).filter((o) => o.key.includes('tenant_id=t-b/'));
    try {
      const before = logs.length;
      const response = await post(JSON.stringify({ target_date: DATE, tenants: TENANTS }));
      const outputs = await currentOutputs();
      // nothing of t-b was committed: its current files are the ones before the run
      expect(outputs.filter((o) => o.key.includes('tenant_id=t-b/'))).toStrictEqual(tbBefore);
      const failedTenant = (response.jsonBody as { tenants: Record<string, unknown>[] }).tenants[1];
      expect(stable(response)).toStrictEqual({
        status: 207,
        jsonBody: {
          target_date: DATE,
          ok: false,
          totals: {
            tenants: 2,
            failed: 1,
            rows_read: tenantRowsRead('t-a'),
            rows_written: day.expected.filter((i) => i.tenantId === 't-a').length,
            rows_rejected: 0,
          },
          tenants: [
            tenantJson('t-a', outputs),
            {
              tenant_id: 't-b',
              dt: DATE,
              status: 'failed',
              run_id: null,
              inputs: 0,
              rows_read: 0,
              rows_carried: 0,
              deletes_remembered: 0,
              rows_rejected: 0,
              objects_rejected: 0,
              duplicates_removed: 0,
              versions_superseded: 0,
              deletes_applied: 0,
              rows_written: 0,
              output_files: [],
              bytes_written: 0,
              duration_ms: 0,
              error: failedTenant?.error,
            },
          ],
        },
      });
      expect(failedTenant?.error).toMatch(
        // DuckDB refuses the file; the error names its key (never the local copy)
        new RegExp(`^compaction of tenant t-b for 2025-08-11 failed: .*${blocked}`),
      );
      // the same fields as the Lambda lines, one JSON message per line (run ids and durations vary per run)
      const lines = jsonLines(logs.slice(before)).map(({ run_id, duration_ms, RunDuration, ...rest }) => ({
        ...rest,
        ...(duration_ms === undefined ? {} : { duration_ms: 0 }),
        ...(RunDuration === undefined ? {} : { RunDuration: 0 }),
      }));
      const tenantA = (response.jsonBody as { tenants: Record<string, unknown>[] }).tenants[0] as Record<string, unknown>;
      const base = { service: 'makoto-lake', invocation_id: 'compact_http-test' };
      const zero = { rows_rejected: 0, objects_rejected: 0, duplicates_removed: 0 };
      expect(lines).toStrictEqual([
        { level: 'information', message: 'compaction started', ...base, dt: DATE, tenants: TENANTS, late: false },
        {
          level: 'information',
          message: 'partition finished',
          ...base,
          tenant_id: 't-a',
          dt: DATE,
          partition_run_id: tenantA.run_id,
          status: 'compacted',
          staging_objects: tenantA.inputs,
          rows_read: tenantA.rows_read,
          rows_written: tenantA.rows_written,
          rows_rejected: 0,
          objects_rejected: 0,
          // a re-compaction: the published copies of versions still in staging are duplicates
          duplicates_removed: tenantA.duplicates_removed,
          versions_superseded: tenantA.versions_superseded,
          deletes_applied: tenantA.deletes_applied,
          duration_ms: 0,
        },
        {
          level: 'error',
          message: 'partition finished',
          ...base,
          tenant_id: 't-b',
          dt: DATE,
          partition_run_id: null,
          status: 'failed',
          staging_objects: 0,
          rows_read: 0,
          rows_written: 0,
          ...zero,
          versions_superseded: 0,
          deletes_applied: 0,
          duration_ms: 0,
          error: failedTenant?.error,
        },
        {
          level: 'information',
          message: 'metrics',
          ...base,
          namespace: 'MakotoLake',
          Source: 'compaction',
          RunsCompleted: 1,
          RunDuration: 0,
          PartitionsCompacted: 1,
          PartitionsFailed: 1,
          PartitionsLocked: 0,
          PartitionsWithoutStaging: 0,
          LatePartitionsFound: 0,
          StagingObjectsRead: tenantA.inputs,
          RowsWritten: tenantA.rows_written,
          RecordsQuarantined: 0,
          StagingObjectsQuarantined: 0,
        },
        {
          level: 'error',
          message: 'compaction finished',
          ...base,
          dt: DATE,
          ok: false,
          totals: (response.jsonBody as { totals: unknown }).totals,
          failed: ['t-b'],
        },
      ]);
      // every line of the run carries the same run id
      expect(new Set(jsonLines(logs.slice(before)).map((l) => l.run_id)).size).toBe(1);
    } finally {
      await store.putBytes(blocked, original);
    }
  });
});

describe('ingest_changefeed with all-versions-and-deletes deletes, as Microsoft documents them', () => {
  const tenant = 't-avad';
  const message = (n: number) => ({
    id: `m${n}`,
    tenantId: tenant,
    conversationId: 'c1',
    senderId: 'u1',
    role: 'user',
    content: `message ${n}`,
    createdAt: `2025-08-11T0${n}:00:00.000Z`,
  });
  /** The documented delete (docs/AZURE.md, "All versions and deletes"): metadata only. */
  const deleted = (n: number, lsn: number, metadata: Record<string, unknown> = {}) => ({
    metadata: {
      operationType: 'delete',
      lsn,
      crts: 1754875000,
      previousImageLSN: 10 + n,
      timeToLiveExpired: false,
      id: `m${n}`,
      partitionKey: { tenantId: tenant },
      ...metadata,
    },
  });

  it('stages deletes whose day is known, keeps the one without a day waiting, quarantines the rest with the reason; the lake keeps exactly the rest', async () => {
    const created = [1, 2, 3, 4, 5].map((n) => ({ ...message(n), _lsn: 10 + n }));
    expect(await fns.ingest.ingestChangefeed(created, context('ingest_changefeed'))).toMatchObject({ staged: 5, quarantined: 0 });
    const deletes = [
      deleted(1, 21), // metadata only: no creation time
      { current: {}, previous: message(2), ...deleted(2, 22) }, // with the previous image
      { ...deleted(3, 23), createdAt: message(3).createdAt }, // metadata only, a creation time beside it
      deleted(4, 24, { timeToLiveExpired: true }), // a TTL expiry without an image
      { current: null, previous: message(5), ...deleted(5, 25, { timeToLiveExpired: true }) }, // a TTL expiry with one
    ];
    const outcome = await fns.ingest.ingestChangefeed(deletes, context('ingest_changefeed'));
    // staged: 3 deletes with a day, 1 waiting under pending/deletes/ for the planner (messageDayIndex.test.ts)
    expect([outcome.received, outcome.staged, outcome.quarantined]).toStrictEqual([5, 4, 1]);
    const batchId = `cosmos-${fns.ingest.feedRangeName(deletes)}`;
    const stagingKey = `staging/messages/tenant_id=${tenant}/dt=2025-08-11/${batchId}_22_25.ndjson.gz`;
    const pendingKey = `pending/deletes/messages/tenant_id=${tenant}/${batchId}_21_21.ndjson.gz`;
    const quarantineKey = outcome.objects.find((k) => k.startsWith('quarantine/')) as string;
    expect(outcome.objects).toStrictEqual([stagingKey, pendingKey, quarantineKey]);
    expect(quarantineKey).toMatch(
      new RegExp(`^quarantine/ingest/source=cosmos/dt=\\d{4}-\\d{2}-\\d{2}/${batchId}_24_24\\.ndjson\\.gz$`),
    );
    const waiting = gunzipSync(await getBytes(store, pendingKey))
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(waiting.map((r) => [r.message_id, r.op, r.source_seq, r.dt, r.created_at])).toStrictEqual([
      ['m1', 'delete', '21', undefined, undefined],
    ]);

    const staged = gunzipSync(await getBytes(store, stagingKey))
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(staged.map((r) => [r.message_id, r.op, r.source_seq, r.created_at, r.content])).toStrictEqual([
      ['m2', 'delete', '22', Date.parse(message(2).createdAt), 'message 2'],
      ['m3', 'delete', '23', Date.parse(message(3).createdAt), null],
      ['m5', 'expire', '25', Date.parse(message(5).createdAt), 'message 5'],
    ]);
    const quarantined = gunzipSync(await getBytes(store, quarantineKey))
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(quarantined.map((q) => [q.reason, q.position, q.raw])).toStrictEqual([
      [
        'TTL expiry (metadata.timeToLiveExpired) without a previous image: no version of the message to stage (an expiry keeps the message in the lake as last captured)',
        '24',
        deletes[3],
      ],
    ]);

    const response = await fns.http.compactHttp(
      new HttpRequest({
        method: 'POST',
        url: 'http://127.0.0.1/api/compact',
        body: { string: JSON.stringify({ target_date: DATE, tenants: [tenant] }) },
      }),
      context('compact_http'),
    );
    expect(response.status).toBe(200);
    const rows = (await readLake(store)).filter((r) => r.tenant_id === tenant);
    expect(rows).toStrictEqual(
      [
        [1, '11'],
        [4, '14'],
        [5, '25'],
      ].map(([n, seq]) => {
        const { id, tenantId, conversationId, senderId, createdAt, ...rest } = message(n as number);
        return {
          tenant_id: tenant,
          dt: DATE,
          message_id: id,
          conversation_id: conversationId,
          sender_id: senderId,
          ...rest,
          created_at: createdAt,
          updated_at: null,
          source: 'cosmos',
          source_seq: seq,
          attributes: {},
        };
      }),
    );
  });
});

function tenantRowsRead(tenant: string): number {
  return feed.filter((d) => d.tenantId === tenant).length;
}

/** The files of the table's current version, as keys and sizes. */
async function currentOutputs(): Promise<{ key: string; size: number }[]> {
  const snapshot = await new DeltaTable(store, {}).snapshot();
  return [...snapshot.files.values()]
    .map((a) => ({ key: tableKey(a.path), size: a.size }))
    .sort((a, b) => (a.key < b.key ? -1 : 1));
}

function tenantJson(tenant: string, outputs: { key: string; size: number }[]) {
  const files = outputs.filter((o) => o.key.includes(`tenant_id=${tenant}/`));
  const docs = feed.filter((d) => d.tenantId === tenant);
  const versions = new Set(docs.map((d) => d.id)).size;
  const kept = day.expected.filter((i) => i.tenantId === tenant).length;
  return {
    tenant_id: tenant,
    dt: DATE,
    status: 'compacted',
    run_id: 'RUN',
    inputs: expect.any(Number),
    rows_read: docs.length,
    // the partition as published by the earlier compaction in this file, and its remembered deletes
    rows_carried: kept,
    deletes_remembered: versions - kept,
    rows_rejected: 0,
    objects_rejected: 0,
    // compacted before in this file: every published row and remembered delete duplicates its staging original
    duplicates_removed: versions,
    versions_superseded: docs.length - versions,
    deletes_applied: versions - kept,
    rows_written: kept,
    output_files: files.map((f) => f.key),
    bytes_written: files.reduce((n, f) => n + f.size, 0),
    duration_ms: 0,
  };
}

/** Run ids and durations differ per run; everything else is compared exactly. */
function stable(response: { status?: number; jsonBody?: unknown }) {
  const body = response.jsonBody as { tenants: Record<string, unknown>[] };
  return {
    status: response.status,
    jsonBody: {
      ...body,
      tenants: body.tenants.map((t) => ({ ...t, run_id: t.run_id === null ? null : 'RUN', duration_ms: 0 })),
    },
  };
}
