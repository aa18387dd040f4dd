/**
 * Monthly cost from measured durations and request counts.
 *   node bin/run-ts.mjs bench/costModel.ts REPORT.json   (a report written by `npm run bench -- --out REPORT.json`)
 * The bench prints the same table at the end of a run that measured single, stores and ingest.
 */
import { readFile } from 'node:fs/promises';
import { REQUEST_KINDS, type RequestKind } from '../tools/CountingStore.js';
import type { StagingStats } from '../tools/generateStaging.js';
import type { Row } from './context.js';
import { PRICES, SEED_ESTIMATE } from './prices.js';

/** What the model takes from a bench run (every figure measured; see docs/PERFORMANCE.md). */
export interface Measured {
  /** Compaction wall time per million messages of one tenant-day (2 threads, DuckDB memory_limit as benched). */
  readonly compactMsPerMillion: number;
  /** The same for a tenant-day big enough to spill (a --messages 10000000 run); used for tenant-days ≥ 5M. */
  readonly compactMsPerMillionSpilling?: number;
  readonly compactPeakRssMB: number;
  /** Extra wall time per tenant when the same messages are spread over many small tenants. */
  readonly tenantOverheadMs: number;
  readonly stagingBytesPerMessage: number;
  readonly parquetBytesPerMessage: number;
  /** Store requests of one compaction, per million messages (LIST pages, GET, HEAD, PUT incl. parts, DELETE). */
  readonly s3RequestsPerMillion: Record<RequestKind, number>;
  readonly blobRequestsPerMillion: Record<RequestKind, number>;
  /** Store operations per tenant that do not scale with messages (listing, manifest, quarantine marker). */
  readonly tenantRequests: Record<RequestKind, number>;
  /** Ingest handler time for a 500-record and a 10,000-record stream batch (median, ms). */
  readonly ingestMs500: number;
  readonly ingestMs10000: number;
}

/** How the capture path batches: template.yaml's defaults, and the batching the model recommends. */
export interface IngestBatching {
  readonly name: string;
  /** Event source mapping BatchSize and MaximumBatchingWindowInSeconds (one shard). */
  readonly batchSize: number;
  readonly windowS: number;
}
export const TEMPLATE_BATCHING: IngestBatching = {
  name: 'StreamBatchSize 10,000, window 300 s (template.yaml defaults)',
  batchSize: 10_000,
  windowS: 300,
};
export const SMALL_BATCHING: IngestBatching = { name: 'StreamBatchSize 500, window 10 s', batchSize: 500, windowS: 10 };

/** Sizes and settings the model assumes (template.yaml defaults where there is one). */
export const ASSUMPTIONS = {
  days: 30,
  ingestMemoryGB: 0.5,
  /** Compactor at 4 GB gets ~2.3 vCPUs, about the 2 cores the bench ran on. */
  compactMemoryGB: 4,
  /** Cold start, DuckDB start, first listing: not in the per-message figure. */
  compactStartMs: 2_000,
  stagingRetentionDays: 14,
  /** Azure Flex Consumption instance sizes (ingest 2 GB, compaction 4 GB). */
  azureIngestMemoryGB: 2,
  azureCompactMemoryGB: 4,
} as const;

export const VOLUMES = [
  { perDay: 1_000, tenants: 1 },
  { perDay: 100_000, tenants: 1 },
  { perDay: 100_000, tenants: 100 },
  { perDay: 1_000_000, tenants: 1 },
  { perDay: 1_000_000, tenants: 1_000 },
  { perDay: 10_000_000, tenants: 1 },
  { perDay: 10_000_000, tenants: 1_000 },
] as const;

export interface Estimate {
  readonly perDay: number;
  readonly tenants: number;
  /** Extrapolated from the measurements: compaction wall seconds per night. */
  readonly compactSeconds: number;
  readonly ingestInvocationsPerDay: number;
  /** Staging objects written per day (one per tenant-day per batch): the PUTs that dominate at many tenants. */
  readonly stagingPutsPerDay: number;
  readonly aws: { lambda: number; s3Requests: number; s3Storage: number; total: number };
  readonly azure: { functions: number; blobRequests: number; blobStorage: number; total: number };
}

const round2 = (n: number) => Math.round(n * 100) / 100;

export function estimateCosts(m: Measured, batching: IngestBatching = TEMPLATE_BATCHING, volumes = VOLUMES): Estimate[] {
  const a = ASSUMPTIONS;
  const p = PRICES;
  const slope = (m.ingestMs10000 - m.ingestMs500) / 9_500;
  const ingestMs = (records: number) => Math.max(1, m.ingestMs500 + slope * (records - 500));
  return volumes.map(({ perDay, tenants }) => {
    // A batch holds what arrives within the window (traffic spread evenly over the day), 1 to BatchSize records.
    const recordsPerInvocation = Math.min(batching.batchSize, Math.max(1, (perDay / 86_400) * batching.windowS));
    const invocations = perDay / recordsPerInvocation;
    const ingestSeconds = (invocations * ingestMs(recordsPerInvocation)) / 1000;
    // One staging object per tenant-day in a batch (measured: 20 tenants in a batch → 20 objects). With tenants
    // equally busy, a batch of r records holds T·(1−(1−1/T)^r) tenants; skewed traffic holds fewer (upper bound).
    const tenantsPerBatch = tenants * (1 - (1 - 1 / tenants) ** recordsPerInvocation);
    const stagingPuts = invocations * tenantsPerBatch;
    const perMillion = perDay / tenants >= 5e6 ? (m.compactMsPerMillionSpilling ?? m.compactMsPerMillion) : m.compactMsPerMillion;
    const compactMs = a.compactStartMs + tenants * m.tenantOverheadMs + (perDay / 1e6) * perMillion;
    const compactSeconds = compactMs / 1000;
    const scaled = (perMillion: Record<RequestKind, number>) => {
      const r = (k: RequestKind) => (perMillion[k] * perDay) / 1e6 + tenants * m.tenantRequests[k];
      return { putList: r('PUT') + r('LIST') + stagingPuts, get: r('GET') + r('HEAD') };
    };
    const stagingGB = (perDay * a.stagingRetentionDays * m.stagingBytesPerMessage) / 1e9;
    const parquetGB = (perDay * a.days * m.parquetBytesPerMessage) / 1e9;

    const s3 = scaled(m.s3RequestsPerMillion);
    const ephemeralGB = perDay >= 5_000_000 ? 10 : 4;
    const lambda =
      a.days *
      (invocations * 1e-6 * p.aws.lambdaPerMillionRequests +
        ingestSeconds * a.ingestMemoryGB * p.aws.lambdaPerGbSecond +
        1e-6 * p.aws.lambdaPerMillionRequests +
        compactSeconds * (a.compactMemoryGB * p.aws.lambdaPerGbSecond + (ephemeralGB - 0.5) * p.aws.lambdaEphemeralPerGbSecond));
    const s3Requests = a.days * ((s3.putList / 1000) * p.aws.s3PerThousandPutList + (s3.get / 1000) * p.aws.s3PerThousandGet);
    const s3Storage = (stagingGB + parquetGB) * p.aws.s3PerGbMonth;

    const blob = scaled(m.blobRequestsPerMillion);
    const functions =
      a.days *
      ((invocations + 1) * 1e-6 * p.azure.flexPerMillionExecutions +
        ingestSeconds * a.azureIngestMemoryGB * p.azure.flexPerGbSecond +
        compactSeconds * a.azureCompactMemoryGB * p.azure.flexPerGbSecond);
    const blobRequests =
      a.days * ((blob.putList / 1e4) * p.azure.blobPerTenThousandWriteList + (blob.get / 1e4) * p.azure.blobPerTenThousandRead);
    const blobStorage = (stagingGB + parquetGB) * p.azure.blobPerGbMonth;
    return {
      perDay,
      tenants,
      compactSeconds: Math.round(compactSeconds),
      ingestInvocationsPerDay: Math.round(invocations),
      stagingPutsPerDay: Math.round(stagingPuts),
      aws: {
        lambda: round2(lambda),
        s3Requests: round2(s3Requests),
        s3Storage: round2(s3Storage),
        total: round2(lambda + s3Requests + s3Storage),
      },
      azure: {
        functions: round2(functions),
        blobRequests: round2(blobRequests),
        blobStorage: round2(blobStorage),
        total: round2(functions + blobRequests + blobStorage),
      },
    };
  });
}

const usd = (n: number) => (n < 0.01 ? '< $0.01' : `$${n.toFixed(2)}`);

/** A markdown table (README-ready). */
export function costTable(estimates: readonly Estimate[], batching: IngestBatching = TEMPLATE_BATCHING): string {
  const n = (x: number) => x.toLocaleString('en-US');
  const lines = [
    `Ingest batching: ${batching.name}.`,
    '',
    '| messages/day | tenants | staging PUTs/day | compaction/night | AWS Lambda | S3 requests | S3 storage (month 1) | **AWS/month** | Azure Functions (Flex) | Blob requests | Blob storage (month 1) | **Azure/month** |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...estimates.map(
      (e) =>
        `| ${n(e.perDay)} | ${n(e.tenants)} | ${n(e.stagingPutsPerDay)} | ${e.compactSeconds} s | ${usd(e.aws.lambda)} | ${usd(e.aws.s3Requests)} | ${usd(e.aws.s3Storage)} | **${usd(e.aws.total)}** | ${usd(e.azure.functions)} | ${usd(e.azure.blobRequests)} | ${usd(e.azure.blobStorage)} | **${usd(e.azure.total)}** |`,
    ),
  ];
  return `${lines.join('\n')}\n\nPrices: bench/prices.ts (${PRICES.asOf}, list prices, no free tier). Compare: ${SEED_ESTIMATE.text}.`;
}

/** Both batchings, as the bench prints them. */
export function costTables(m: Measured): { batching: string; estimates: Estimate[]; table: string }[] {
  return [TEMPLATE_BATCHING, SMALL_BATCHING].map((b) => {
    const estimates = estimateCosts(m, b);
    return { batching: b.name, estimates, table: costTable(estimates, b) };
  });
}

/** What the cost model needs, when this run measured it (single, tenants, stores and ingest). */
export function measuredFrom(report: Record<string, unknown>): Measured | undefined {
  const single = report.single as { messages: number; project: Row; staged: StagingStats } | undefined;
  const manyTenants = report.tenants as { runs: Row[] } | undefined;
  const many = manyTenants?.runs.find((r) => r.contender === 'project');
  const stores = report.stores as { results: Record<string, Row>; perMillion: number } | undefined;
  const ingest = report.ingest as { rows: Row[] } | undefined;
  if (!single || !many || !stores || !ingest) return undefined;
  const messages = single.messages;
  const perM = (r: Row | undefined) =>
    Object.fromEntries(
      Object.entries((r?.requests as Record<string, number>) ?? {}).map(([k, v]) => [k, Math.round(v * stores.perMillion)]),
    ) as Record<RequestKind, number>;
  const ingestMs = (records: number) =>
    (ingest.rows.find((r) => r.store === 's3 (s3rver)' && r.records === records)?.medianMs as number | undefined) ?? 0;
  const tenantOps = many.operations as Record<RequestKind, number>;
  const tenantCount = many.tenants as number;
  return {
    compactMsPerMillion: Math.round(((single.project.ms as number) / messages) * 1e6),
    compactPeakRssMB: single.project.maxRssMB as number,
    // same number of messages in 1 partition vs `tenants` partitions: the difference is the per-tenant overhead
    tenantOverheadMs: Math.max(
      0,
      Number(
        (((many.ms as number) - (single.project.ms as number) * ((many.rows as number) / messages)) / tenantCount).toFixed(1),
      ),
    ),
    stagingBytesPerMessage: Math.round(single.staged.bytes / messages),
    parquetBytesPerMessage: Math.round((single.project.bytesWritten as number) / messages),
    s3RequestsPerMillion: perM(stores.results['s3 (s3rver)']),
    blobRequestsPerMillion: perM(stores.results['blob (Azurite)']),
    tenantRequests: Object.fromEntries(
      REQUEST_KINDS.map((k) => [k, Number(((tenantOps[k] ?? 0) / tenantCount).toFixed(2))]),
    ) as Record<RequestKind, number>,
    ingestMs500: ingestMs(500),
    ingestMs10000: ingestMs(10_000),
  };
}

/**
 * `costModel.ts REPORT.json [LARGE.json]`: REPORT from `npm run bench -- --scenario all --out REPORT.json`;
 * LARGE (optional) from `npm run bench -- --scenario single --messages 10000000 --out LARGE.json`.
 */
export async function main(argv: string[]): Promise<number> {
  const [file, large] = argv;
  if (!file) {
    console.error('usage: costModel.ts REPORT.json [LARGE.json]');
    return 2;
  }
  const report = JSON.parse(await readFile(file, 'utf8')) as { cost?: { measured: Measured } };
  if (!report.cost) {
    console.error(`${file} has no cost section: run the bench with single, tenants, stores and ingest`);
    return 1;
  }
  let measured = report.cost.measured;
  if (large) {
    const big = JSON.parse(await readFile(large, 'utf8')) as { single: { messages: number; project: { ms: number } } };
    measured = { ...measured, compactMsPerMillionSpilling: Math.round((big.single.project.ms / big.single.messages) * 1e6) };
  }
  console.log(JSON.stringify(measured));
  for (const t of costTables(measured)) console.log(`${t.table}\n`);
  return 0;
}
