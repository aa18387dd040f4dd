/**
 * The one price table the cost model uses. List prices, pay-as-you-go, USD, no free tier, no savings plan.
 *
 * Stated honestly: these were taken from the public pricing pages as of August 2025 and written down by
 * hand – the build sandbox has no internet access, so they were NOT fetched or re-checked when the bench
 * ran. Check them against the pages below before quoting a number to anyone; edit them here only.
 */
export const PRICES = {
  asOf: '2025-08',
  currency: 'USD',
  aws: {
    region: 'ap-northeast-1 (Tokyo)',
    sources: ['https://aws.amazon.com/lambda/pricing/', 'https://aws.amazon.com/s3/pricing/'],
    /** x86, first tier (Tokyo equals us-east-1 for Lambda duration and requests). */
    lambdaPerGbSecond: 0.0000166667,
    lambdaPerMillionRequests: 0.2,
    /** Ephemeral storage above the free 512 MB, per GB-second (us-east-1 figure; Tokyo is within a few %). */
    lambdaEphemeralPerGbSecond: 0.0000000309,
    /** S3 Standard, first 50 TB. */
    s3PerGbMonth: 0.025,
    /** PUT, COPY, POST, LIST (and each multipart part). */
    s3PerThousandPutList: 0.0047,
    /** GET, SELECT, HEAD and all other requests. */
    s3PerThousandGet: 0.00037,
    /** DELETE is free; DynamoDB Streams reads by a Lambda trigger are free. */
  },
  azure: {
    region: 'East US list prices (Japan East is ~10-20% higher for storage)',
    sources: [
      'https://azure.microsoft.com/pricing/details/functions/',
      'https://azure.microsoft.com/pricing/details/storage/blobs/',
    ],
    /** Flex Consumption, on demand: billed on the instance memory size for the execution time. */
    flexPerGbSecond: 0.000026,
    flexPerMillionExecutions: 0.4,
    /** Premium EP1 (1 vCPU, 3.5 GB), one instance always on: ~$0.173/vCPU-h + $0.0123/GB-h. */
    premiumEp1PerMonth: (0.173 + 3.5 * 0.0123) * 730,
    /** Blob Storage, Hot, LRS, first 50 TB. */
    blobPerGbMonth: 0.0184,
    /** Write operations (Put Blob, Put Block, Put Block List) and List operations, per 10,000. */
    blobPerTenThousandWriteList: 0.065,
    /** Read operations (Get Blob, Get Properties), per 10,000. */
    blobPerTenThousandRead: 0.005,
    /** Delete is free. */
  },
} as const;

/** The seed README's estimate ("Lambda 3 GB, 5 min × 30 days: about $10/month") and sizing table. */
export const SEED_ESTIMATE = {
  monthlyUsd: 10,
  text: 'seed: Lambda 3 GB, 5 min × 30 days ≈ $10/month; ~100,000 messages/day take ~15 min and ~3 GB; beyond that EMR/Databricks',
} as const;
