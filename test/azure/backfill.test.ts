import { access, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Container, CosmosClient } from '@azure/cosmos';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writePoisonBatch } from '../../azure/poison.js';
import { main } from '../../compactor/cli.js';
import { runBackfill } from '../../src/capture/backfill/runBackfill.js';
import { jstDayRange } from '../../src/core/time/jst.js';
import { listAll } from '../../src/ports/store/ObjectStore.js';
import { BlobStore } from '../../stores/blob/BlobStore.js';
import { CosmosSourceReader } from '../../stores/cosmos/CosmosSourceReader.js';
import { COSMOS_KEY, startAzurite, startCosmos } from '../../tools/azureServers.js';
import type { RunningServer } from '../../tools/servers.js';
import { type ParsedLakeRow, readLake } from '../kit/readParquet.js';
import { tempDir } from '../kit/tempDir.js';

const DATE = '2025-08-11';
let azurite: RunningServer & { connectionString: string };
let cosmos: RunningServer & { endpoint: string };
let dirs: { path: string; cleanup: () => Promise<void> };
let container: Container;
let store: BlobStore;
let env: Record<string, string>;

/** The app's documents: two tenants around the JST day's edges, in every timestamp shape. */
const DOCS: Record<string, unknown>[] = [
  { id: 'm1', tenantId: 't1', createdAt: '2025-08-10T14:59:59.999Z', content: 'the day before (JST)', role: 'user' },
  { id: 'm2', tenantId: 't1', createdAt: '2025-08-10T15:00:00.000Z', content: 'first millisecond', role: 'user' },
  { id: 'm3', tenantId: 't1', createdAt: '2025-08-11T23:59:59+09:00', content: 'JST offset, last second', role: 'assistant' },
  { id: 'm4', tenantId: 't1', createdAt: 1754924400, content: 'epoch seconds, next day', role: 'user' },
  { id: 'm5', tenantId: 't1', createdAt: 1754881200000, content: 'epoch millis', role: 'user', userId: 'u-5' },
  { id: 'm6', tenantId: 't1', createdAt: '2025-08-11T04:00:00Z', content: 'deleted by the user', isDeleted: true },
  { id: 'm7', tenantId: 't1', createdAt: '2025-08-11T05:00:00Z', content: '期限付き😀', ttl: 86_400 },
  { id: 'm8', tenant_id: 't1', created_at: '2025-08-11T06:00:00Z', content: 'snake_case', conversation_id: 'c-8' },
  { id: 'm9', tenantId: 't1', createdAt: '2025-08-11T25:00:00Z', content: 'impossible hour' },
  { id: 'n1', tenantId: 't2', createdAt: '2025-08-11T00:00:00+09:00', content: 'こんにちは', role: 'user' },
  { id: 'n2', tenantId: 't2', createdAt: '2025-08-12T00:00:00+09:00', content: 'next JST day', role: 'user' },
  { id: 'x1', tenantId: 't3', createdAt: '2025-08-11T01:00:00Z', content: 'tenant not asked for' },
];

/** The quarantine object a --json backfill summary names. */
const quarantineKeyOf = (stdout: string[]) =>
  (JSON.parse(stdout.join('\n')) as { quarantine: { object: string }[] }).quarantine[0]?.object;

const out = () => {
  const lines = { stdout: [] as string[], stderr: [] as string[] };
  return { lines, out: { stdout: (t: string) => lines.stdout.push(t), stderr: (t: string) => lines.stderr.push(t) } };
};

beforeAll(async () => {
  [azurite, cosmos] = await Promise.all([startAzurite(), startCosmos()]);
  dirs = await tempDir();
  const client = new CosmosClient({
    endpoint: cosmos.endpoint,
    key: COSMOS_KEY,
    connectionPolicy: { enableEndpointDiscovery: false },
  });
  const { database } = await client.databases.createIfNotExists({ id: 'makoto' });
  ({ container } = await database.containers.createIfNotExists({ id: 'messages', partitionKey: { paths: ['/tenantId'] } }));
  for (const doc of DOCS) await container.items.create(doc);
  env = {
    AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString,
    AZURE_STORAGE_CONTAINER: 'backfill',
    COSMOS_ENDPOINT: cosmos.endpoint,
    COSMOS_KEY,
    DATA_DIR: join(dirs.path, 'data'),
    TEMP_DIR: join(dirs.path, 'tmp'),
    DUCKDB_THREADS: '1',
    DUCKDB_MEMORY_LIMIT: '512MB',
  };
  await import('node:fs/promises').then((fs) => fs.mkdir(env.TEMP_DIR as string));
  store = new BlobStore({ connectionString: azurite.connectionString, containerName: 'backfill' });
});

afterAll(async () => {
  await Promise.all([azurite?.stop(), cosmos?.stop()]);
  await dirs?.cleanup();
});

/** The lake row a source document becomes; system fields as the server stored them. */
async function row(id: string, tenant: string, over: Partial<ParsedLakeRow> = {}): Promise<ParsedLakeRow> {
  const { resources } = await container.items
    .query<Record<string, unknown>>({ query: 'SELECT * FROM c WHERE c.id = @id', parameters: [{ name: '@id', value: id }] })
    .fetchAll();
  const resource = resources[0];
  const {
    _rid,
    _self,
    _etag,
    _attachments,
    _ts,
    id: _id,
    tenantId,
    tenant_id,
    createdAt,
    created_at,
    content,
    role,
    userId,
    conversation_id,
    ...rest
  } = resource as Record<string, unknown>;
  const system = Object.fromEntries(Object.entries({ _rid, _self, _etag, _attachments, _ts }).filter(([, v]) => v !== undefined));
  const created = createdAt ?? created_at;
  return {
    tenant_id: tenant,
    dt: DATE,
    message_id: id,
    conversation_id: (conversation_id as string) ?? null,
    sender_id: (userId as string) ?? null,
    role: (role as string) ?? null,
    content: content as string,
    created_at: new Date(typeof created === 'number' ? created : Date.parse(created as string)).toISOString(),
    updated_at: null,
    source: 'cosmos',
    source_seq: '0',
    attributes: { ...rest, _cosmos: system },
    ...over,
  };
}

describe('backfill from Cosmos DB (cosmosdb-server) into Blob staging (Azurite)', () => {
  it('reads a tenant-day page by page with a parameterised query and continuation tokens', async () => {
    const reader = new CosmosSourceReader({ container }, { pageSize: 2 });
    const pages: string[][] = [];
    for await (const page of reader.pages('t1', { date: DATE, ...jstDayRange(DATE) })) {
      pages.push(page.map((d) => (d as { id: string }).id));
    }
    // m1 and m9 are in the widened string range (the backfill drops m1, quarantines m9); m4 is not.
    expect(pages.map((p) => p.length)).toStrictEqual([2, 2, 2, 2]);
    expect(pages.flat().sort()).toStrictEqual(['m1', 'm2', 'm3', 'm5', 'm6', 'm7', 'm8', 'm9']);
    expect(reader.location).toBe('cosmos:///dbs/makoto/colls/messages');
    expect(
      new CosmosSourceReader({ endpoint: cosmos.endpoint, key: COSMOS_KEY, database: 'makoto', container: 'messages' }).location,
    ).toBe(`${cosmos.endpoint}/dbs/makoto/colls/messages`);
  });

  it('CLI: backfill the day, then capture a change, compact: exact rows, the later capture wins, nothing in DATA_DIR', async () => {
    const captured = join(dirs.path, 'feed.json');
    await writeFile(
      captured,
      JSON.stringify([
        { id: 'm2', tenantId: 't1', createdAt: '2025-08-10T15:00:00.000Z', content: 'edited (captured)', role: 'user', _lsn: 42 },
      ]),
    );
    const backfill = out();
    // m9 (an impossible hour) is quarantined: the backfill says so and exits 1, the rest is staged.
    expect(
      await main(['backfill', '--source', 'cosmos', DATE, 't1,t2', '--json'], env, backfill.out),
      backfill.lines.stderr.join('\n'),
    ).toBe(1);
    expect(backfill.lines.stderr.slice(-2)).toStrictEqual([
      'quarantined 1 record (1 reason):',
      `  1 × created_at: invalid time of day in "2025-08-11T25:00:00Z" (e.g. position 0 in ${quarantineKeyOf(backfill.lines.stdout)})`,
    ]);
    const summary = JSON.parse(backfill.lines.stdout.join('\n'));
    // Captured after the backfill's read: newer than the backfilled image.
    const ingest = out();
    expect(await main(['ingest', '--source', 'cosmos', captured], env, ingest.out)).toBe(0);
    expect(
      summary.results.map((r: Record<string, unknown>) => [
        r.tenant,
        r.status,
        r.read,
        r.outside,
        r.staged,
        r.quarantined,
        r.objects,
      ]),
    ).toStrictEqual([
      [
        't1',
        'ok',
        8,
        1,
        6,
        1,
        ['staging/messages/tenant_id=t1/dt=2025-08-11/backfill-cosmos-2025-08-11-t1-p00001_0_0.ndjson.gz'],
      ],
      [
        't2',
        'ok',
        2,
        1,
        1,
        0,
        ['staging/messages/tenant_id=t2/dt=2025-08-11/backfill-cosmos-2025-08-11-t2-p00001_0_0.ndjson.gz'],
      ],
    ]);

    const compact = out();
    expect(await main(['compact', DATE, 't1,t2'], env, compact.out), compact.lines.stderr.join('\n')).toBe(0);
    expect(await readLake(store)).toStrictEqual([
      {
        ...(await row('m2', 't1')),
        content: 'edited (captured)',
        source_seq: '42',
        attributes: {},
      },
      await row('m3', 't1'),
      await row('m5', 't1'),
      await row('m7', 't1'),
      await row('m8', 't1', { tenant_id: 't1' }),
      await row('n1', 't2'),
    ]);
    // Storage went to Blob only: DATA_DIR was never created and the per-run work folders are gone.
    await expect(access(env.DATA_DIR as string)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readdir(env.TEMP_DIR as string)).toStrictEqual([]);
    const quarantined = (await listAll(store, 'quarantine/ingest/source=cosmos/')).map((o) => o.key);
    expect(quarantined).toStrictEqual([expect.stringMatching(/\/backfill-cosmos-2025-08-11-t1-p00001_0_0\.ndjson\.gz$/)]);
  });

  it('a re-run replaces the earlier run’s objects; its later read supersedes the change captured before it', async () => {
    const reader = new CosmosSourceReader({ container }, { pageSize: 3 });
    const small = await runBackfill({ store, reader, date: DATE, tenants: ['t1'], recordsPerObject: 2 });
    expect(small.results.map((r) => [r.objects.length, r.removed])).toStrictEqual([[3, 0]]);
    const again = await runBackfill({ store, reader, date: DATE, tenants: ['t1'] });
    expect(again.results.map((r) => [r.status, r.objects.length, r.removed])).toStrictEqual([['ok', 1, 2]]);
    const before = await readLake(store);
    expect(await main(['compact', DATE, 't1,t2'], env, out().out)).toBe(0);
    // m2's captured edit (the previous test) was captured before this read: the container's image wins
    expect(await readLake(store)).toStrictEqual(
      await Promise.all(before.map(async (r) => (r.message_id === 'm2' ? await row('m2', 't1') : r))),
    );
  });

  it('usage errors: no source, a bad date, every tenant', async () => {
    const o = out();
    expect(await main(['backfill', DATE, 't1'], env, o.out)).toBe(2);
    expect(o.lines.stderr[0]).toMatch(/^makoto-lake: backfill --source must be cosmos or dynamodb, got null/);
    const d = out();
    expect(await main(['backfill', '--source', 'cosmos', '2025-13-01'], env, d.out)).toBe(2);
    expect(d.lines.stderr[0]).toMatch(/^makoto-lake: DATE must be a calendar date YYYY-MM-DD, got "2025-13-01"/);
    const a = out();
    expect(await main(['backfill', '--source', 'cosmos', DATE, '*'], env, a.out)).toBe(2);
    expect(a.lines.stderr[0]).toMatch(/^makoto-lake: backfill needs tenant ids/);
  });

  it('runbook (docs/AZURE.md): replay a poison batch as downloaded, then check the day with compact --json', async () => {
    const documents = [
      { id: 'p1', tenantId: 't2', createdAt: '2025-08-11T02:00:00Z', content: 'set aside by the trigger', _lsn: 501 },
      { id: 'p2', tenantId: 't2', createdAt: '2025-08-11T02:01:00Z', content: 'and its neighbour', _lsn: 502 },
    ];
    const poisonKey = await writePoisonBatch(store, {
      source: 'cosmos',
      batchId: 'cosmos-b0123456789abcdef',
      firstPosition: '501',
      lastPosition: '502',
      documents,
      error: new Error('staging unavailable'),
      functionName: 'ingest_changefeed',
      invocationId: 'inv-1',
      retryCount: 5,
    });
    // az storage blob download -c makoto -n <poison key> -f batch.json.gz
    const downloaded = join(dirs.path, 'batch.json.gz');
    await store.getToFile(poisonKey, downloaded);
    // makoto-lake ingest --source cosmos batch.json.gz
    const replay = out();
    expect(await main(['ingest', '--source', 'cosmos', downloaded], env, replay.out), replay.lines.stderr.join('\n')).toBe(0);
    // makoto-lake compact 2025-08-11 t1,t2 --json
    const check = out();
    expect(await main(['compact', DATE, 't1,t2', '--json'], env, check.out)).toBe(0);
    const tenants = JSON.parse(check.lines.stdout.join('\n')).tenants as Record<string, unknown>[];
    expect(tenants.map((t) => [t.tenant_id, t.status])).toStrictEqual([
      ['t1', 'compacted'],
      ['t2', 'compacted'],
    ]);
    expect(tenants[1]?.rows_written).toBe(3);
    expect((await readLake(store)).filter((r) => r.tenant_id === 't2').map((r) => [r.message_id, r.source_seq])).toStrictEqual([
      ['n1', '0'],
      ['p1', '501'],
      ['p2', '502'],
    ]);
  });
});

describe('order by time (issue 21): a Cosmos backfill against captured versions and earlier backfills', () => {
  /** A lake of its own (a Blob container) for one tenant, so the other tests' rows stay apart. */
  function lakeOf(name: string) {
    return {
      env: { ...env, AZURE_STORAGE_CONTAINER: name },
      store: new BlobStore({ connectionString: azurite.connectionString, containerName: name }),
    };
  }
  /** `compact DATE TENANT --json` (exit 0): the tenant-day's superseded, duplicate, deleted and written counts. */
  async function compact(lakeEnv: Record<string, string>, tenant: string) {
    const o = out();
    expect(await main(['compact', DATE, tenant, '--json'], lakeEnv, o.out), o.lines.stderr.join('\n')).toBe(0);
    const [t] = JSON.parse(o.lines.stdout.join('\n')).tenants as Record<string, unknown>[];
    return [t?.versions_superseded, t?.duplicates_removed, t?.deletes_applied, t?.rows_written];
  }
  async function backfill(lakeEnv: Record<string, string>, tenant: string) {
    const o = out();
    expect(await main(['backfill', '--source', 'cosmos', DATE, tenant], lakeEnv, o.out), o.lines.stderr.join('\n')).toBe(0);
  }
  /** Stages change-feed documents through `ingest` (captured now). */
  async function capture(lakeEnv: Record<string, string>, name: string, documents: Record<string, unknown>[]) {
    const file = join(dirs.path, `${name}.json`);
    await writeFile(file, JSON.stringify(documents));
    const o = out();
    expect(await main(['ingest', '--source', 'cosmos', file], lakeEnv, o.out), o.lines.stderr.join('\n')).toBe(0);
  }

  it('a newer image than the captured INSERT wins, a soft delete removes it; a change captured after the read wins', async () => {
    const { env: lakeEnv, store: lakeStore } = lakeOf('ordered-capture');
    const c1 = { id: 'c5-1', tenantId: 't5', createdAt: '2025-08-11T01:00:00Z', content: 'as inserted', role: 'user' };
    const c2 = { id: 'c5-2', tenantId: 't5', createdAt: '2025-08-11T02:00:00Z', content: 'to be deleted', role: 'user' };
    await container.items.create(c1);
    await container.items.create(c2);
    await capture(lakeEnv, 'inserts-t5', [
      { ...c1, _lsn: 7 },
      { ...c2, _lsn: 8 },
    ]);
    expect(await compact(lakeEnv, 't5')).toStrictEqual([0, 0, 0, 2]);
    const captured = async (id: string, content: string, lsn: string) => ({
      ...(await row(id, 't5')),
      content,
      source_seq: lsn,
      attributes: {},
    });
    expect(await readLake(lakeStore)).toStrictEqual([
      await captured('c5-1', 'as inserted', '7'),
      await captured('c5-2', 'to be deleted', '8'),
    ]);

    // The edit and the soft delete reach the container; their change-feed batch is lost.
    await container.item('c5-1', 't5').replace({ ...c1, content: 'edited (its batch was lost)' });
    await container.item('c5-2', 't5').replace({ ...c2, isDeleted: true });
    await backfill(lakeEnv, 't5');
    expect(await compact(lakeEnv, 't5')).toStrictEqual([2, 2, 1, 1]);
    expect(await readLake(lakeStore)).toStrictEqual([await row('c5-1', 't5')]);
    expect((await readLake(lakeStore))[0]?.content).toBe('edited (its batch was lost)');

    // Captured after the read: newer than the backfilled image.
    await capture(lakeEnv, 'modify-t5', [{ ...c1, content: 'edited again (captured)', _lsn: 9 }]);
    expect(await compact(lakeEnv, 't5')).toStrictEqual([3, 2, 1, 1]);
    expect(await readLake(lakeStore)).toStrictEqual([await captured('c5-1', 'edited again (captured)', '9')]);
  });

  it('a re-run corrects an earlier compacted backfill: a newer image, then a soft delete', async () => {
    const { env: lakeEnv, store: lakeStore } = lakeOf('ordered-rerun');
    const d1 = { id: 'c6-1', tenantId: 't6', createdAt: '2025-08-11T03:00:00Z', content: 'first read', role: 'assistant' };
    await container.items.create(d1);
    await backfill(lakeEnv, 't6');
    expect(await compact(lakeEnv, 't6')).toStrictEqual([0, 0, 0, 1]);
    expect(await readLake(lakeStore)).toStrictEqual([await row('c6-1', 't6')]);

    await container.item('c6-1', 't6').replace({ ...d1, content: 'read again, edited' });
    await backfill(lakeEnv, 't6');
    expect(await compact(lakeEnv, 't6')).toStrictEqual([1, 0, 0, 1]);
    expect(await readLake(lakeStore)).toStrictEqual([await row('c6-1', 't6')]);
    expect((await readLake(lakeStore))[0]?.content).toBe('read again, edited');

    await container.item('c6-1', 't6').replace({ ...d1, content: 'read again, edited', isDeleted: true });
    await backfill(lakeEnv, 't6');
    expect(await compact(lakeEnv, 't6')).toStrictEqual([1, 0, 1, 0]);
    expect(await readLake(lakeStore)).toStrictEqual([]);
  });
});
