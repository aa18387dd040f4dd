/**
 * Erase one sender across many days of one tenant, measured: `node bin/run-ts.mjs test/erase/eraseBench.ts
 * [--days 365] [--messages 200] [--every 30] [--senders 50] [--ordered]`. Stages and compacts the days
 * (staging older than 14 days then removed, as the lifecycle rule would), erases the sender through a
 * counting store, and prints the time, the requests by kind, the bytes read and written, and what the
 * statistics pruning skipped. `--ordered` gives sender ids that sort apart from the erased one (the best
 * case for pruning); by default ids are random hex, as UUIDs are.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_COMPACTION_SETTINGS } from '../../src/compaction/compactPartition.js';
import { compactTenants } from '../../src/compaction/compactTenants.js';
import { openDuckDb } from '../../src/duckdb/openDuckDb.js';
import { eraseTenant } from '../../src/erase/eraseTenant.js';
import { stagingKey } from '../../src/staging/layout.js';
import { gzipNdjson } from '../../src/staging/ndjson.js';
import { LocalStore } from '../../src/store/LocalStore.js';
import { listAll } from '../../src/store/ObjectStore.js';
import { CountingStore } from '../../tools/CountingStore.js';
import { stagedRecord } from '../kit/factories.js';
import { dayOf } from './eraseLake.js';

export async function main(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      days: { type: 'string', default: '365' },
      messages: { type: 'string', default: '200' },
      every: { type: 'string', default: '30' },
      senders: { type: 'string', default: '50' },
      ordered: { type: 'boolean', default: false },
    },
  });
  const days = Number(values.days);
  const perDay = Number(values.messages);
  const every = Number(values.every);
  const senders = Array.from({ length: Number(values.senders) }, (_, i) =>
    values.ordered ? `u-${String(i).padStart(4, '0')}` : `u-${randomBytes(8).toString('hex')}`,
  );
  const erased = values.ordered ? 'u-zzzz-erased' : `u-${randomBytes(8).toString('hex')}`;
  const root = join(tmpdir(), `makoto-erase-bench-${process.pid}`);
  await mkdir(join(root, 'work'), { recursive: true });
  const store = new LocalStore(join(root, 'lake'));
  const start = '2025-01-01';
  const t0 = Date.now();
  for (let d = 0; d < days; d++) {
    const date = dayOf(start, d);
    const lines = Array.from({ length: perDay }, (_, i) =>
      stagedRecord({
        tenant_id: 'acme',
        dt: date,
        message_id: `m-${d}-${i}`,
        conversation_id: `c-${i % 20}`,
        sender_id: d % every === 0 && i % 10 === 0 ? erased : (senders[i % senders.length] as string),
        content: `message ${i} of day ${d}: ${'x'.repeat(100)}`,
        created_at: Date.parse(`${date}T03:00:00Z`) + i,
        source_seq: String(1000 + i),
      }),
    );
    await store.putBytes(stagingKey('acme', date, `b-${d}`), gzipNdjson(lines));
  }
  const db = await openDuckDb({ memoryLimit: '1GB', threads: 2, workDirectory: join(root, 'duckdb') });
  try {
    const t1 = Date.now();
    await compactTenants(
      { store, db, workDirectory: join(root, 'partitions'), settings: DEFAULT_COMPACTION_SETTINGS },
      dayOf(start, days - 1),
      { tenants: ['acme'], concurrency: 2, lateLookbackDays: Number.POSITIVE_INFINITY },
    );
    const compactMs = Date.now() - t1;
    for (const info of await listAll(store, 'staging/')) {
      if ((/dt=([\d-]+)/.exec(info.key)?.[1] as string) < dayOf(start, days - 14)) await store.delete(info.key);
    }
    const counting = new CountingStore(store);
    const t2 = Date.now();
    const outcome = await eraseTenant(
      { store: counting, db, workDirectory: join(root, 'work') },
      { tenant: 'acme', selector: { senders: [erased], conversations: [], messages: [] } },
    );
    const eraseMs = Date.now() - t2;
    const c = counting.counts();
    console.log(
      JSON.stringify(
        {
          days,
          messages_per_day: perDay,
          erased_days: Math.ceil(days / every),
          sender_ids: values.ordered ? 'ordered' : 'random hex',
          build_ms: t1 - t0,
          compact_ms: compactMs,
          erase_ms: eraseMs,
          verified: outcome.receipt?.verification?.ok,
          counts: outcome.counts,
          requests: c.operations,
          bytes_read: c.bytesRead,
          bytes_written: c.bytesWritten,
        },
        null,
        2,
      ),
    );
  } finally {
    db.closeSync();
    await rm(root, { recursive: true, force: true });
  }
  return 0;
}
