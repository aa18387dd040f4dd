import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eraseTenant, verifyReceipt } from '../../src/jobs/erase/eraseTenant.js';
import { offboardTenant } from '../../src/jobs/erase/offboard.js';
import { openDuckDb } from '../../src/ports/duckdb/openDuckDb.js';
import type { ObjectStore } from '../../src/ports/store/ObjectStore.js';
import { listAll } from '../../src/ports/store/ObjectStore.js';
import { BlobStore } from '../../stores/blob/BlobStore.js';
import { S3Store } from '../../stores/s3/S3Store.js';
import { startAzurite } from '../../tools/azureServers.js';
import type { RunningServer } from '../../tools/servers.js';
import { REGION, S3RVER_CREDENTIALS, type S3rver, startS3rver } from '../aws/support/localAws.js';
import { readLake } from '../kit/readParquet.js';
import { tempDir } from '../kit/tempDir.js';
import {
  buildYearLake,
  ERASED_MESSAGE,
  ERASED_SENDER,
  ERASED_TEXT,
  erasedDays,
  expectedYearRows,
  rawScan,
  snapshotObjects,
  type YearShape,
} from './eraseLake.js';

const NEEDLES = [ERASED_SENDER, ERASED_TEXT, ERASED_MESSAGE];
/**
 * The local suite's lake (erase.test.ts, a year of days) built the same way, for 8 weeks: the sender on every
 * 7th day of acme (8 days), staging kept 14 days. A year took 239 s on s3rver and 186 s on Azurite (2 shared
 * cores at load 12–15), against ~40 s each for 8 weeks; the year's proof is the local suite's.
 */
const SHAPE: YearShape = { start: '2025-01-01', days: 56, every: 7, stagingDays: 14 };
const prefixesOf = (t: string) => [
  `staging/messages/tenant_id=${t}/`,
  `analytics/messages/tenant_id=${t}/`,
  `manifests/messages/tenant_id=${t}/`,
];

/** The lake on a cloud store: erase (no byte left, rows exact, verified), then offboard of one tenant. */
async function eraseAndOffboard(store: ObjectStore, folder: string): Promise<void> {
  const t0 = Date.now();
  await buildYearLake(store, join(folder, 'build'), SHAPE);
  console.log(`lake of ${SHAPE.days} days built on ${store.location} in ${Date.now() - t0} ms`);
  await mkdir(join(folder, 'work'), { recursive: true });
  const db = await openDuckDb({ memoryLimit: '512MB', threads: 1, workDirectory: join(folder, 'duckdb') });
  try {
    const deps = { store, db, workDirectory: join(folder, 'work') };
    const before = await readLake(store);
    expect(before).toStrictEqual(expectedYearRows(SHAPE));
    const dry = await eraseTenant(deps, {
      tenant: 'acme',
      selector: { senders: [ERASED_SENDER], conversations: [], messages: [] },
      dryRun: true,
    });
    const done = await eraseTenant(deps, {
      tenant: 'acme',
      selector: { senders: [ERASED_SENDER], conversations: [], messages: [] },
    });
    expect(done.counts).toStrictEqual(dry.counts);
    expect([
      done.counts.rows,
      done.counts.tombstone_rows,
      done.counts.staging_lines,
      done.receipt?.verification?.ok,
    ]).toStrictEqual([erasedDays(SHAPE).length - 1, 1, 6, true]);
    expect(await rawScan(store, NEEDLES)).toStrictEqual({});
    expect(await readLake(store)).toStrictEqual(before.filter((r) => r.sender_id !== ERASED_SENDER));
    expect((await verifyReceipt(deps, done.receiptKey as string)).verification?.ok).toBe(true);

    const others = await snapshotObjects(store, ['acme', 'initech'].flatMap(prefixesOf));
    const off = await offboardTenant(deps, 'globex');
    expect([off.receipt?.status, off.counts.partitions]).toStrictEqual(['done', SHAPE.days]);
    for (const prefix of prefixesOf('globex')) expect(await listAll(store, prefix)).toStrictEqual([]);
    expect(await snapshotObjects(store, ['acme', 'initech'].flatMap(prefixesOf))).toStrictEqual(others);
    expect(await readLake(store)).toStrictEqual(before.filter((r) => r.sender_id !== ERASED_SENDER && r.tenant_id !== 'globex'));
  } finally {
    db.closeSync();
  }
}

describe('erase and offboard on s3rver (through the conditional-write proxy)', () => {
  let s3: S3rver;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    [s3, dir] = await Promise.all([startS3rver(), tempDir('makoto-erase-s3-')]);
    await s3.createBucket('lake');
  });
  afterAll(async () => {
    await s3?.stop();
    await dir?.cleanup();
  });
  it('erases every copy and offboards one tenant', async () => {
    const store = new S3Store({
      bucket: 'lake',
      clientConfig: { endpoint: s3.endpoint, region: REGION, forcePathStyle: true, credentials: S3RVER_CREDENTIALS },
    });
    await eraseAndOffboard(store, dir.path);
  }, 300_000);
});

describe('erase and offboard on Azurite', () => {
  let azurite: RunningServer & { connectionString: string };
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    [azurite, dir] = await Promise.all([startAzurite(), tempDir('makoto-erase-blob-')]);
  });
  afterAll(async () => {
    await azurite?.stop();
    await dir?.cleanup();
  });
  it('erases every copy and offboards one tenant', async () => {
    await eraseAndOffboard(new BlobStore({ connectionString: azurite.connectionString, containerName: 'lake' }), dir.path);
  }, 300_000);
});
