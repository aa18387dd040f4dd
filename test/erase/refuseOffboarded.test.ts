/**
 * The CLI's `ingest`, `backfill` and `demo` refuse records of an offboarded tenant
 * as capture does: quarantined with the reason, nothing staged for it, the other tenant's records staged.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { marshall } from '@aws-sdk/util-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../compactor/cli.js';
import { offboardedReason, offboardedTenants } from '../../src/lake/offboarded.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { getBytes, listAll } from '../../src/ports/store/ObjectStore.js';
import { chatItem, dynamodbRecord } from '../kit/factories.js';
import { readLake } from '../kit/readParquet.js';
import { tempDir } from '../kit/tempDir.js';

describe('ingest, backfill and demo refuse an offboarded tenant', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let data: string;
  let store: LocalStore;

  function cli(args: string[], env: Record<string, string> = {}) {
    const lines = { stdout: [] as string[], stderr: [] as string[] };
    return main(
      args,
      { DATA_DIR: data, TEMP_DIR: join(dir.path, 'tmp'), DUCKDB_THREADS: '1', DUCKDB_MEMORY_LIMIT: '512MB', ...env },
      { stdout: (t) => lines.stdout.push(t), stderr: (t) => lines.stderr.push(t) },
    ).then((code) => ({ code, stdout: lines.stdout.join('\n'), stderr: lines.stderr.join('\n') }));
  }

  /** The staging keys of a tenant, and the quarantined lines' reasons (every capture quarantine object). */
  const stagingOf = async (tenant: string) => (await listAll(store, `staging/messages/tenant_id=${tenant}/`)).map((o) => o.key);
  async function quarantinedReasons(): Promise<string[]> {
    const reasons: string[] = [];
    for (const o of await listAll(store, 'quarantine/')) {
      const text = o.key.endsWith('.gz') ? gunzipSync(await getBytes(store, o.key)) : await getBytes(store, o.key);
      for (const line of text.toString('utf8').split('\n').filter(Boolean))
        reasons.push((JSON.parse(line) as { reason: string }).reason);
    }
    return reasons.sort();
  }

  beforeAll(async () => {
    dir = await tempDir('makoto-refuse-');
    data = join(dir.path, 'data');
    await mkdir(join(dir.path, 'tmp'), { recursive: true });
    store = new LocalStore(data);
    const off = await cli(['offboard', '--tenant', 'globex']);
    expect(off.code, off.stderr).toBe(0);
    expect([...(await offboardedTenants(store, Date.now(), true))]).toStrictEqual(['globex']);
  });
  afterAll(async () => {
    await dir?.cleanup();
  });

  it('ingest: the offboarded tenant quarantined with the reason, the other staged', async () => {
    const event = join(dir.path, 'event.json');
    await writeFile(
      event,
      JSON.stringify({
        Records: [
          dynamodbRecord({ seq: 1, item: chatItem({ tenantId: 'acme', messageId: 'a' }) }),
          dynamodbRecord({ seq: 2, item: chatItem({ tenantId: 'globex', messageId: 'b' }) }),
        ],
      }),
    );
    const result = await cli(['ingest', '--source', 'dynamodb', event, '--json']);
    // 1: something was quarantined (as for any quarantined record)
    expect(result.code, result.stderr).toBe(1);
    const json = JSON.parse(result.stdout) as {
      received: number;
      staged: number;
      quarantined: number;
      quarantine: { reason: string; count: number }[];
    };
    expect([json.received, json.staged, json.quarantined, json.quarantine.map((q) => [q.reason, q.count])]).toStrictEqual([
      2,
      1,
      1,
      [[offboardedReason('globex'), 1]],
    ]);
    expect(await stagingOf('globex')).toStrictEqual([]);
    expect((await stagingOf('acme')).length).toBe(1);
    expect(await quarantinedReasons()).toStrictEqual([offboardedReason('globex')]);
  });

  it('backfill --from-export: the offboarded tenant quarantined with the reason, the other staged', async () => {
    const folder = join(data, 'exports/all/AWSDynamoDB/01754900000000-abcdabcd');
    await mkdir(join(folder, 'data'), { recursive: true });
    const items = [
      { tenantId: 'acme', messageId: 'e1', createdAt: '2025-08-10T01:00:00Z', content: 'acme, the 10th' },
      { tenantId: 'globex', messageId: 'e2', createdAt: '2025-08-10T02:00:00Z', content: 'globex, the 10th' },
    ];
    await writeFile(
      join(folder, 'data/file0.json.gz'),
      gzipSync(`${items.map((item) => JSON.stringify({ Item: marshall(item) })).join('\n')}\n`),
    );
    await writeFile(
      join(folder, 'manifest-files.json'),
      `${JSON.stringify({ itemCount: 2, dataFileS3Key: 'exports/all/AWSDynamoDB/01754900000000-abcdabcd/data/file0.json.gz' })}\n`,
    );
    await writeFile(
      join(folder, 'manifest-summary.json'),
      JSON.stringify({ exportTime: '2025-08-12T00:00:00.000Z', outputFormat: 'DYNAMODB_JSON', exportType: 'FULL_EXPORT' }),
    );
    const result = await cli(['backfill', '--source', 'dynamodb', '--from-export', 'exports/all', '--json'], { TENANT_ID: '*' });
    expect(result.code, result.stderr).toBe(1); // a record was quarantined
    const summary = JSON.parse(result.stdout) as { results: Record<string, unknown>[] };
    expect(summary.results.map((r) => [r.tenant, r.date, r.status, r.read, r.staged, r.quarantined])).toStrictEqual([
      ['acme', '2025-08-10', 'ok', 1, 1, 0],
      ['globex', '2025-08-10', 'ok', 1, 0, 1],
    ]);
    expect(await stagingOf('globex')).toStrictEqual([]);
    expect(await stagingOf('acme')).toHaveLength(2);
    expect(await quarantinedReasons()).toStrictEqual([offboardedReason('globex'), offboardedReason('globex')]);
  });

  it("demo: the offboarded tenant's generated records quarantined with the reason, nothing of it staged or compacted", async () => {
    const demo = join(dir.path, 'demo');
    const demoStore = new LocalStore(demo);
    expect((await cli(['offboard', '--tenant', 'globex'], { DATA_DIR: demo })).code).toBe(0);
    const result = await cli(['demo', '--date', '2025-08-11', '--tenants', 'acme,globex', '--messages', '20'], {
      DATA_DIR: demo,
    });
    expect(result.code, result.stderr).toBe(0);
    const [, staged, quarantined] =
      /→ (\d+) staged in \d+ objects, (\d+) quarantined$/.exec(result.stdout.split('\n')[0] ?? '') ?? [];
    // every quarantined record but the demo's one record without a tenant is globex's, refused with the reason
    const reasons: string[] = [];
    for (const o of await listAll(demoStore, 'quarantine/ingest/'))
      for (const line of gunzipSync(await getBytes(demoStore, o.key))
        .toString('utf8')
        .split('\n')
        .filter(Boolean))
        reasons.push((JSON.parse(line) as { reason: string }).reason);
    const refused = reasons.filter((r) => r === offboardedReason('globex')).length;
    expect(refused).toBeGreaterThan(0);
    expect([Number(quarantined), reasons.length]).toStrictEqual([refused + 1, refused + 1]);
    expect(await listAll(demoStore, 'staging/messages/tenant_id=globex/')).toStrictEqual([]);
    const rows = await readLake(demoStore);
    expect(new Set(rows.map((r) => r.tenant_id))).toStrictEqual(new Set(['acme']));
    expect([Number(staged) > 0, rows.length > 0]).toStrictEqual([true, true]);
  });
});
