import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Container, CosmosClient } from '@azure/cosmos';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../compactor/cli.js';
import { listAll } from '../../src/ports/store/ObjectStore.js';
import { BlobStore } from '../../stores/blob/BlobStore.js';
import { COSMOS_KEY, startAzurite, startCosmos } from '../../tools/azureServers.js';
import type { RunningServer } from '../../tools/servers.js';
import { readLake } from '../kit/readParquet.js';
import { tempDir } from '../kit/tempDir.js';

/**
 * Issue 21 item 10 on Azure: the Cosmos DB latest-version change feed carries no previous image, so an edit
 * that moves `created_at` to another JST day is staged in its new day only and the old day keeps the earlier
 * version; a backfill of the new day (a container query) repairs it through the message-day lookup.
 */
const D1 = '2025-08-11';
const D2 = '2025-08-12';
let azurite: RunningServer & { connectionString: string };
let cosmos: RunningServer & { endpoint: string };
let dirs: { path: string; cleanup: () => Promise<void> };
let container: Container;
let env: Record<string, string>;

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
  env = {
    AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString,
    AZURE_STORAGE_CONTAINER: 'moves',
    COSMOS_ENDPOINT: cosmos.endpoint,
    COSMOS_KEY,
    TEMP_DIR: join(dirs.path, 'tmp'),
    DUCKDB_THREADS: '1',
    DUCKDB_MEMORY_LIMIT: '512MB',
  };
  await mkdir(env.TEMP_DIR as string);
});
afterAll(async () => {
  await Promise.all([azurite?.stop(), cosmos?.stop()]);
  await dirs?.cleanup();
});

async function cli(argv: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await main(argv, env, { stdout: (t) => stdout.push(t), stderr: (t) => stderr.push(t) });
  return { code, stdout: stdout.join('\n'), stderr: stderr.join('\n') };
}

/** Change-feed documents (latest-version mode) through `ingest`, as the Function stages them. */
async function capture(name: string, documents: Record<string, unknown>[]) {
  const file = join(dirs.path, `${name}.json`);
  await writeFile(file, JSON.stringify(documents));
  const run = await cli(['ingest', '--source', 'cosmos', file]);
  expect(run.code, run.stderr).toBe(0);
}

/** `compact DATE t7 --json` (exit 0): superseded, duplicate, deleted and written counts. */
async function compact(date: string) {
  const run = await cli(['compact', date, 't7', '--json']);
  expect(run.code, run.stderr).toBe(0);
  const [t] = JSON.parse(run.stdout).tenants as Record<string, unknown>[];
  return [t?.versions_superseded, t?.duplicates_removed, t?.deletes_applied, t?.rows_written];
}

/** The lake's rows as (day, id, content, position). */
async function rows(store: BlobStore) {
  return (await readLake(store)).map((r) => [r.dt, r.message_id, r.content, r.source_seq]);
}

describe('one message, one partition (issue 21 item 10): Cosmos latest-version mode, repaired by a backfill', () => {
  it('an edit moving created_at to day 2 leaves day 1’s version; a backfill of day 2 takes it out of day 1', async () => {
    const store = new BlobStore({ connectionString: azurite.connectionString, containerName: 'moves' });
    const m = { id: 'k1', tenantId: 't7', createdAt: '2025-08-11T01:00:00Z', content: 'created on day 1' };
    const stays = { id: 'k2', tenantId: 't7', createdAt: '2025-08-11T02:00:00Z', content: 'stays on day 1' };
    await container.items.create(m);
    await container.items.create(stays);
    await capture('inserts', [
      { ...m, _lsn: 5 },
      { ...stays, _lsn: 6 },
    ]);
    expect(await compact(D1)).toStrictEqual([0, 0, 0, 2]);

    // the app moves k1 to day 2; latest-version mode delivers only the new document: no previous image
    const moved = { ...m, createdAt: '2025-08-12T01:00:00Z', content: 'moved to day 2' };
    await container.item('k1', 't7').replace(moved);
    await capture('replace', [{ ...moved, _lsn: 7 }]);
    expect(await compact(D2)).toStrictEqual([0, 0, 0, 1]);
    // the documented limitation: both days hold k1
    expect(await rows(store)).toStrictEqual([
      [D1, 'k1', 'created on day 1', '5'],
      [D1, 'k2', 'stays on day 1', '6'],
      [D2, 'k1', 'moved to day 2', '7'],
    ]);

    // the repair: backfill the day the message lives in now; the lookup finds it in day 1 as well
    const backfill = await cli(['backfill', '--source', 'cosmos', D2, 't7']);
    expect(backfill.code, backfill.stderr).toBe(0);
    expect(backfill.stderr.split('\n').slice(-3)).toStrictEqual([
      `staged 2 tenant-days: t7 ${D1}, t7 ${D2}`,
      `  compact them with: npx makoto-lake compact ${D1} t7`,
      `  compact them with: npx makoto-lake compact ${D2} t7`,
    ]);
    expect(
      (await listAll(store, 'staging/messages/tenant_id=t7/')).map((o) => o.key).filter((k) => k.includes('backfill-')),
    ).toStrictEqual([
      `staging/messages/tenant_id=t7/dt=${D1}/backfill-cosmos-${D2}-t7-moves_0_0.ndjson.gz`,
      `staging/messages/tenant_id=t7/dt=${D2}/backfill-cosmos-${D2}-t7-p00001_0_0.ndjson.gz`,
    ]);
    // day 1: the move-out removes k1 (the captured staging is read again: 2 duplicates); day 2: the read wins
    expect(await compact(D1)).toStrictEqual([1, 2, 1, 1]);
    expect(await compact(D2)).toStrictEqual([1, 1, 0, 1]);
    expect(await rows(store)).toStrictEqual([
      [D1, 'k2', 'stays on day 1', '6'],
      [D2, 'k1', 'moved to day 2', '0'],
    ]);
  });
});
