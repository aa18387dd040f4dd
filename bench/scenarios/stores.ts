/** Scenario `stores`: compactPartition of the same day through the local store, s3rver and Azurite; requests by kind. */
import { join } from 'node:path';
import { stagingPrefix } from '../../src/core/staging/layout.js';
import { mapLimit } from '../../src/core/util/concurrency.js';
import { table } from '../../src/ops/report.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { listAll, type ObjectStore } from '../../src/ports/store/ObjectStore.js';
import { REQUEST_KINDS, type RequestKind } from '../../tools/CountingStore.js';
import { type Context, cleanLake, DATE, day, type Row, TENANT } from '../context.js';
import { blobStoreFor, s3StoreFor, servers } from '../localServers.js';
import { runStep } from '../runStep.js';
import type { StoreTarget } from '../step.js';

/** Copies the local tenant-day's staging objects into `store` (what the capture path would have written). */
async function seed(from: string, store: ObjectStore): Promise<{ objects: number; ms: number }> {
  const local = new LocalStore(from);
  const objects = await listAll(local, stagingPrefix(TENANT, DATE));
  const t0 = performance.now();
  await mapLimit(objects, 8, (o) => store.putFile(o.key, join(from, o.key)));
  return { objects: objects.length, ms: Math.round(performance.now() - t0) };
}

export async function storesScenario(context: Context) {
  const { dir, staged } = await day(context);
  const s = await servers(context);
  const perMillion = 1e6 / context.messages;
  const s3 = await s3StoreFor(s.s3.endpoint, s.s3.bucket);
  const s3Seed = await seed(dir, s3.store);
  const blobSeed = await seed(dir, await blobStoreFor(s.azurite.connectionString, 'bench'));
  context.say(`\nseeded ${s3Seed.objects} staging objects into s3rver in ${s3Seed.ms} ms and into Azurite in ${blobSeed.ms} ms`);
  const base = { tenant: TENANT, date: DATE, memory: context.memory, threads: context.threads };
  const targets: [string, StoreTarget][] = [
    ['local', { kind: 'local', root: dir }],
    ['s3 (s3rver)', { kind: 's3', endpoint: s.s3.endpoint, bucket: s.s3.bucket }],
    ['blob (Azurite)', { kind: 'blob', connectionString: s.azurite.connectionString, container: 'bench' }],
  ];
  const results: Record<string, Row> = {};
  for (const [name, target] of targets) {
    await cleanLake(dir);
    const r = runStep('store', [join(context.root, `store-${target.kind}`), JSON.stringify({ ...base, target })]);
    if (r.rows !== staged.expectedRows) throw new Error(`${name}: ${r.rows} rows, expected ${staged.expectedRows}`);
    results[name] = r;
  }
  await cleanLake(dir);
  const localMs = results.local?.ms as number;
  context.say(`scenario stores: compactPartition of the same day (${context.messages} messages) through each store`);
  context.say(
    table([
      [
        'store',
        'ms',
        'ratio vs local',
        'list',
        'download',
        'compact',
        'upload',
        'commit',
        ...REQUEST_KINDS.map((k) => `${k}/1M msgs`),
        'peak RSS MB',
        'load1',
      ],
      ...Object.entries(results).map(([name, r]) => {
        const t = r.timings as Record<string, number>;
        const req = r.requests as Record<RequestKind, number>;
        return [
          name,
          r.ms as number,
          Number(((r.ms as number) / localMs).toFixed(2)),
          t.list ?? 0,
          t.download ?? 0,
          t.compact ?? 0,
          t.upload ?? 0,
          t.commit ?? 0,
          ...REQUEST_KINDS.map((k) => Math.round(req[k] * perMillion)),
          r.maxRssMB as number,
          (r.load1 as number[]).join(' / '),
        ];
      }),
    ]),
  );
  const exact = results['s3 (s3rver)']?.s3Calls;
  context.say(`S3 API calls counted by the SDK (per run): ${JSON.stringify(exact)}`);
  context.say(
    'requests: LIST pages, GET/HEAD, PUT incl. multipart parts, DELETE; HEAD is billed like GET. Staging writes at ingest are not included (see ingest).',
  );
  return { seed: { s3: s3Seed, blob: blobSeed }, results, perMillion };
}
