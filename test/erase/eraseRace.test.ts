import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import { stagingKey } from '../../src/core/staging/layout.js';
import { gzipNdjson } from '../../src/core/staging/ndjson.js';
import { type CompactionPhase, compactPartition } from '../../src/engine/compactPartition.js';
import { eraseTenant } from '../../src/jobs/erase/eraseTenant.js';
import { offboardTenant } from '../../src/jobs/erase/offboard.js';
import type { EraseDeps } from '../../src/jobs/erase/planErase.js';
import { applyRetention, parseRetentionSetting } from '../../src/jobs/erase/retention.js';
import { runCompaction } from '../../src/jobs/runCompaction.js';
import { DeltaTable } from '../../src/lake/table/deltaTable.js';
import { openDuckDb } from '../../src/ports/duckdb/openDuckDb.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { getBytes, listAll } from '../../src/ports/store/ObjectStore.js';
import { stagedRecord } from '../kit/factories.js';
import { readLake } from '../kit/readParquet.js';
import { tempDir } from '../kit/tempDir.js';
import { buildLake, dayOf, ERASED_MESSAGE, ERASED_SENDER, ERASED_TEXT, rawScan } from './eraseLake.js';

const NEEDLES = [ERASED_SENDER, ERASED_TEXT, ERASED_MESSAGE];
const SHAPE = { start: '2025-07-01', days: 7, every: 3 };
const SELECT = { senders: [ERASED_SENDER], conversations: [], messages: [] };

describe('an erase racing a compaction, and records captured after it', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let n = 0;

  beforeAll(async () => {
    dir = await tempDir('makoto-erase-race-');
  });
  afterAll(async () => {
    await dir?.cleanup();
  });

  /** A fresh lake, a DuckDB instance and the erase's deps; released after `work`. */
  async function withLake(work: (store: LocalStore, deps: EraseDeps, folder: string) => Promise<void>): Promise<void> {
    const folder = join(dir.path, `lake-${n++}`);
    const store = new LocalStore(join(folder, 'root'));
    await buildLake(store, join(folder, 'build'), SHAPE);
    await mkdir(join(folder, 'work'), { recursive: true });
    const db = await openDuckDb({ memoryLimit: '512MB', threads: 1, workDirectory: join(folder, 'duckdb') });
    try {
      await work(store, { store, db, workDirectory: join(folder, 'work') }, folder);
    } finally {
      db.closeSync();
    }
  }

  for (const phase of ['uploading', 'committing'] as CompactionPhase[]) {
    it(`an erase committed while a compaction of the same partition is ${phase}: the compaction re-plans from the erased version`, async () => {
      await withLake(async (store, deps, folder) => {
        // day 1 of acme holds the sender's late message in staging, not yet compacted
        const day = dayOf(SHAPE.start, 1);
        const before = (await readLake(store)).filter((r) => r.sender_id !== ERASED_SENDER);
        let erased: Awaited<ReturnType<typeof eraseTenant>> | undefined;
        const result = await compactPartition(
          {
            store,
            db: deps.db,
            workDirectory: join(folder, 'compaction'),
            onPhase: async (p) => {
              if (p === phase && !erased) erased = await eraseTenant(deps, { tenant: 'acme', selector: SELECT });
            },
          },
          'acme',
          day,
        );
        // the compaction holds its lease: the log below the erase's version stays (a stale commit could land there),
        // named in the receipt with the reason
        expect(erased?.receipt?.status).toBe('incomplete');
        const remaining = erased?.receipt?.verification?.remaining ?? [];
        expect(remaining.length).toBeGreaterThan(0);
        expect(remaining.filter((r) => !r.key.startsWith('analytics/messages/_delta_log/'))).toStrictEqual([]);
        expect(new Set(remaining.map((r) => r.reason))).toStrictEqual(
          new Set([`compactions were running (tenant_id=acme/dt=${day}.lock): run the erase again once they have finished`]),
        );
        // the first attempt's commit conflicted with the erase's; the second read the erased staging and version
        expect(result.status).toBe('compacted');
        const live = [...(await new DeltaTable(store, {}).snapshot()).files.values()].filter(
          (f) => f.partitionValues.tenant_id === 'acme' && f.partitionValues.dt === day,
        );
        // attempt r1: the first attempt's commit conflicted with the erase's
        expect(result.runId).toMatch(/^\d{8}T\d{9}Z-[0-9a-f]{8}-r1$/);
        expect(live.map((f) => f.tags?.['makoto.run_id'])).toStrictEqual([result.runId]);
        const rows = await readLake(store);
        expect(rows.filter((r) => r.sender_id === ERASED_SENDER)).toStrictEqual([]);
        expect(rows).toStrictEqual(
          [...before, ...rows.filter((r) => r.message_id === 'acme-late-other')].sort((a, b) =>
            `${a.tenant_id}/${a.dt}/${a.message_id}`.localeCompare(`${b.tenant_id}/${b.dt}/${b.message_id}`),
          ),
        );
        expect(rows.filter((r) => r.message_id === 'acme-late-other').map((r) => r.content)).toStrictEqual(['other late']);
        // the losing attempt's upload (made after the erase's plan) holds the sender's row until the erase runs again
        const left = await rawScan(store, NEEDLES);
        const again = await eraseTenant(deps, { tenant: 'acme', selector: SELECT });
        expect(again.receipt?.verification?.ok).toBe(true);
        expect(
          Object.keys(left).filter(
            (k) =>
              !k.startsWith(`analytics/messages/tenant_id=acme/dt=${day}/`) && !k.startsWith('analytics/messages/_delta_log/'),
          ),
        ).toStrictEqual([]);
        expect(await rawScan(store, NEEDLES)).toStrictEqual({});
      });
    });
  }

  it('the table is readable, every file it names present, after each write and delete the erase makes', async () => {
    await withLake(async (store, deps) => {
      const checks: string[] = [];
      const reader = new LocalStore(store.root);
      /** After each change, a fresh reader loads the current version and finds every file it names. */
      class CheckingStore extends LocalStore {
        private async check(key: string): Promise<void> {
          const snapshot = await new DeltaTable(reader, {}).snapshot();
          for (const add of snapshot.files.values()) {
            if (!(await reader.head(`analytics/messages/${decodeURIComponent(add.path)}`)))
              checks.push(`${key}: ${add.path} missing`);
          }
          checks.push(`v${snapshot.version}`);
        }
        override async putBytes(...args: Parameters<LocalStore['putBytes']>) {
          const info = await super.putBytes(...args);
          await this.check(args[0]);
          return info;
        }
        override async putFile(...args: Parameters<LocalStore['putFile']>) {
          const info = await super.putFile(...args);
          await this.check(args[0]);
          return info;
        }
        override async delete(...args: Parameters<LocalStore['delete']>) {
          await super.delete(...args);
          await this.check(args[0]);
        }
      }
      const expected = (await readLake(store)).filter((r) => r.sender_id !== ERASED_SENDER);
      const checking = new CheckingStore(store.root);
      const done = await eraseTenant({ ...deps, store: checking }, { tenant: 'acme', selector: SELECT });
      expect(done.receipt?.status).toBe('done');
      expect(checks.filter((c) => c.includes('missing'))).toStrictEqual([]);
      // every write was checked: the versions seen are the one before the erase, then the erase's
      const version = done.receipt?.table_versions[0] as number;
      expect([...new Set(checks)]).toStrictEqual([`v${version - 1}`, `v${version}`]);
      expect(checks.length).toBeGreaterThan(40);
      expect(await readLake(store)).toStrictEqual(expected);
    });
  });

  it('a record of the erased sender captured after the erase is erased by the next nightly run (standing erase)', async () => {
    await withLake(async (store, deps, folder) => {
      const first = await eraseTenant(deps, { tenant: 'acme', selector: SELECT });
      expect(first.receipt?.status).toBe('done');
      const day = dayOf(SHAPE.start, 4);
      await store.putBytes(
        stagingKey('acme', day, 'late-after-erase'),
        gzipNdjson([
          stagedRecord({
            tenant_id: 'acme',
            dt: day,
            message_id: `${ERASED_MESSAGE}-after`,
            sender_id: ERASED_SENDER,
            content: `${ERASED_TEXT} after`,
            created_at: Date.parse(`${day}T03:00:00Z`),
            source_seq: '5000',
          }),
          stagedRecord({
            tenant_id: 'acme',
            dt: day,
            message_id: 'acme-after-other',
            sender_id: 'acme-s1',
            content: 'after other',
            created_at: Date.parse(`${day}T03:00:01Z`),
            source_seq: '5001',
          }),
        ]),
      );
      const config = loadConfig({
        DATA_DIR: store.root,
        TEMP_DIR: join(folder, 'tmp'),
        DUCKDB_THREADS: '1',
        DUCKDB_MEMORY_LIMIT: '512MB',
      });
      await mkdir(config.tempDir, { recursive: true });
      const summary = await runCompaction({
        store,
        config,
        date: dayOf(SHAPE.start, SHAPE.days - 1),
        tenants: ['acme'],
        late: true,
      });
      expect(summary.results.filter((r) => r.status === 'failed')).toStrictEqual([]);
      expect(await rawScan(store, NEEDLES)).toStrictEqual({});
      const rows = await readLake(store);
      expect(rows.filter((r) => r.sender_id === ERASED_SENDER)).toStrictEqual([]);
      expect(rows.filter((r) => r.message_id === 'acme-after-other').map((r) => r.content)).toStrictEqual(['after other']);
      const receipt = JSON.parse((await getBytes(store, first.receiptKey as string)).toString('utf8'));
      expect([receipt.status, receipt.reapplied.length, receipt.reapplied[0].counts.staging_lines]).toStrictEqual(['done', 1, 1]);
    });
  });

  it('the nightly run does not compact an offboarded tenant: what reached its staging (a backfill) is removed first', async () => {
    await withLake(async (store, deps, folder) => {
      const off = await offboardTenant(deps, 'globex');
      expect(off.receipt?.status).toBe('done');
      const day = dayOf(SHAPE.start, 2);
      await store.putBytes(
        stagingKey('globex', day, 'backfill-1'),
        gzipNdjson([
          stagedRecord({
            tenant_id: 'globex',
            dt: day,
            message_id: 'globex-back',
            sender_id: 'globex-s1',
            created_at: Date.parse(`${day}T03:00:00Z`),
          }),
        ]),
      );
      const config = loadConfig({
        DATA_DIR: store.root,
        TEMP_DIR: join(folder, 'tmp'),
        DUCKDB_THREADS: '1',
        DUCKDB_MEMORY_LIMIT: '512MB',
      });
      await mkdir(config.tempDir, { recursive: true });
      const rows = await readLake(store);
      const summary = await runCompaction({
        store,
        config,
        date: dayOf(SHAPE.start, SHAPE.days - 1),
        tenants: ['acme', 'globex'],
        late: true,
      });
      expect(summary.results.filter((r) => r.tenant === 'globex').map((r) => r.status)).toStrictEqual(['no-input']);
      expect(await listAll(store, 'staging/messages/tenant_id=globex/')).toStrictEqual([]);
      expect((await readLake(store)).filter((r) => r.tenant_id === 'globex')).toStrictEqual([]);
      expect((await readLake(store)).filter((r) => r.tenant_id === 'initech')).toStrictEqual(
        rows.filter((r) => r.tenant_id === 'initech'),
      );
      // a second offboard receipt records the sweep
      expect((await listAll(store, 'erasures/tenant_id=globex/')).length).toBe(2);
    });
  });

  it('retention: LAKE_RETENTION_DAYS drops older partitions by one commit (per-tenant override), with a receipt', async () => {
    await withLake(async (store, deps) => {
      expect(parseRetentionSetting('3,initech=0')).toStrictEqual({ days: 3, tenants: { initech: 0 } });
      expect(() => parseRetentionSetting('x')).toThrow(
        'LAKE_RETENTION_DAYS: the default must be a whole number of days, got "x"',
      );
      const before = await readLake(store);
      // "today" is the lake's last day + 1 (JST): 3 days kept = the last two days and today
      const now = Date.parse(`${dayOf(SHAPE.start, SHAPE.days)}T03:00:00Z`);
      const versionBefore = (await new DeltaTable(store, {}).snapshot()).version;
      const first = dayOf(SHAPE.start, SHAPE.days - 2);
      const expiredStaging = (await listAll(store, 'staging/')).filter(
        (o) => !o.key.includes('tenant_id=initech/') && (/dt=([\d-]+)/.exec(o.key)?.[1] as string) < first,
      ).length;
      expect(expiredStaging).toBe(13);
      const report = await applyRetention(deps, parseRetentionSetting('3,initech=0'), now);
      expect(report.version).toBe(versionBefore + 1);
      expect(report.partitions).toStrictEqual(
        ['acme', 'globex'].flatMap((t) =>
          Array.from({ length: SHAPE.days - 2 }, (_, d) => `tenant_id=${t}/dt=${dayOf(SHAPE.start, d)}`),
        ),
      );
      // staging of expired days goes too (acme's late staging of day 1), so nothing is compacted back
      expect(report.stagingObjects).toBe(expiredStaging);
      expect(
        (await listAll(store, 'staging/messages/tenant_id=acme/'))
          .map((o) => o.key.split('/')[3])
          .every((d) => (d as string).slice(3) >= first),
      ).toBe(true);
      expect(await readLake(store)).toStrictEqual(before.filter((r) => r.tenant_id === 'initech' || r.dt >= first));
      expect(report.receipt).toMatch(/^erasures\/retention\/\d{8}T\d{9}Z-[0-9a-f]{8}\.json$/);
    });
  });
});
