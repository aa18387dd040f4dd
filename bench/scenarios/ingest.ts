/** Scenario `ingest`: DynamoDB Streams events through stream-ingest's handler into each store. */
import { mkdir } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { DynamoDBStreamEvent } from 'aws-lambda';
import { loadConfig } from '../../src/core/config.js';
import { generateChatDay, toDynamoDBRecord } from '../../src/jobs/demo/chatDay.js';
import { table } from '../../src/ops/report.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import type { ObjectStore } from '../../src/ports/store/ObjectStore.js';
import { ingestStreamEvent } from '../../stream-ingest/handler.js';
import { CountingStore } from '../../tools/CountingStore.js';
import { quietTelemetry } from '../../tools/quietTelemetry.js';
import { type Context, DATE, type Row } from '../context.js';
import { blobStoreFor, s3StoreFor, servers } from '../localServers.js';

export async function ingestScenario(context: Context) {
  const s = await servers(context);
  const config = loadConfig({});
  const records = 10_000;
  // A multi-tenant table's stream: 20 tenants, one JST day, ~5% edits, ~1% deletes, some TTL expiries.
  const chat = generateChatDay({
    date: DATE,
    tenants: Array.from({ length: 20 }, (_, i) => `tenant${i}`),
    messagesPerTenant: 500,
    seed: 3,
  });
  // The generator emits tenant after tenant; a table's stream interleaves them in time order.
  const changes = [...chat.changes]
    .sort((x, y) => x.item.updatedAt.localeCompare(y.item.updatedAt))
    .slice(0, records)
    .map((c, i) => ({ ...c, seq: 300_000_000_000_000_000_000n + BigInt(i) * 10n }));
  const event = (round: number): DynamoDBStreamEvent =>
    ({
      Records: changes.map((c) => toDynamoDBRecord({ ...c, seq: c.seq + BigInt(round) * 1_000_000n })),
    }) as unknown as DynamoDBStreamEvent;
  const groups = new Set(changes.map((c) => c.item.tenantId)).size;
  const localRoot = join(context.root, 'ingest-local');
  await mkdir(localRoot, { recursive: true });
  const s3 = await s3StoreFor(s.s3.endpoint, s.s3.bucket);
  const targets: [string, ObjectStore][] = [
    ['local', new LocalStore(localRoot)],
    ['s3 (s3rver)', s3.store],
    ['blob (Azurite)', await blobStoreFor(s.azurite.connectionString, 'ingest')],
  ];
  const rows: Row[] = [];
  for (const [name, inner] of targets) {
    for (const size of [records, 500]) {
      const store = new CountingStore(inner);
      const times: number[] = [];
      const before = loadavg()[0];
      for (let round = 0; round < 6; round++) {
        const full = event(round);
        const batch = { Records: full.Records.slice(0, size) } as DynamoDBStreamEvent;
        store.reset();
        const t0 = performance.now();
        const answer = await ingestStreamEvent(batch, { store, config, ...quietTelemetry() });
        const ms = performance.now() - t0;
        if (answer.batchItemFailures.length > 0) throw new Error(`ingest into ${name} reported failures`);
        if (round > 0) times.push(ms); // round 0 warms up the JIT and the connection pool
      }
      times.sort((a, b) => a - b);
      const median = times[Math.floor(times.length / 2)] as number;
      rows.push({
        store: name,
        records: size,
        medianMs: Number(median.toFixed(1)),
        recordsPerS: Math.round((size / median) * 1000),
        objectsPerBatch: store.counts().operations.PUT,
        load1: [Number(before?.toFixed(2)), Number(loadavg()[0]?.toFixed(2))],
      });
    }
  }
  context.say(
    `\nscenario ingest: DynamoDB Streams events through stream-ingest's ingestStreamEvent (${groups} tenants, one day; median of 5 after a warm-up)`,
  );
  context.say(
    table([
      ['store', 'records/event', 'median ms', 'records/s', 'objects/batch', 'load1'],
      ...rows.map((r) => [
        r.store as string,
        r.records as number,
        r.medianMs as number,
        r.recordsPerS as number,
        r.objectsPerBatch as number,
        (r.load1 as number[]).join(' / '),
      ]),
    ]),
  );
  return { tenantDayGroups: groups, rows };
}
