/**
 * `ingest_changefeed`: Cosmos DB change feed (latest-version mode) → gzip NDJSON staging in Blob.
 * Bad documents are quarantined with the reason and never block the batch; a batch whose staging cannot
 * be written is retried by the host (exponential backoff) and, after the last retry, written raw to the
 * poison location before returning, so the lease moves on and no change is lost silently.
 */

import { app, type InvocationContext } from '@azure/functions';
import { describeFailures, ingestBatch } from '../../src/capture/ingest/ingestBatch.js';
import { cosmosBatchName, cosmosDocumentChanges } from '../../src/capture/ingest/sources.js';
import { errorMessage } from '../../src/core/errors.js';
import { offboardedTenants } from '../../src/lake/offboarded.js';
import { ingestGroupLogLine } from '../../src/ops/logFields.js';
import { ingestMetrics } from '../../src/ops/metrics.js';
import { StagingWriteError } from '../errors.js';
import { writePoisonBatch } from '../poison.js';
import { azureRuntime } from '../runtime.js';
import { COSMOS_CONNECTION_SETTING, triggerSettings } from '../settings.js';
import { functionLog } from '../telemetry.js';

export interface ChangeFeedOutcome {
  readonly received: number;
  readonly staged: number;
  readonly quarantined: number;
  readonly objects: readonly string[];
  /** Set when the batch went to the poison location after the last retry. */
  readonly poison?: string;
}

/**
 * The handler. Throws on a failed write while retries remain (the host runs the batch again, and the
 * deterministic object names make the re-run overwrite instead of duplicating).
 *
 * @example
 * await ingestChangefeed([{ id: 'm1', tenantId: 'a', createdAt: '2025-08-11T00:00:00Z', _lsn: 7 }], context);
 */
export async function ingestChangefeed(documents: unknown[], context: InvocationContext): Promise<ChangeFeedOutcome> {
  const { store, config } = await azureRuntime();
  const { changes, batchId } = cosmosDocumentChanges(documents);
  const positions = changes.map((c) => c.sourceSeq).filter((p) => p !== '');
  const log = functionLog(context, batchId);
  try {
    const refused = await offboardedTenants(store);
    const result = await ingestBatch(store, changes, { source: 'cosmos', batchId, mapping: config.fieldMapping, refused });
    log.metrics('cosmos', ingestMetrics(result));
    for (const group of result.written) log('info', ...ingestGroupLogLine(group));
    for (const group of result.failed) log('error', ...ingestGroupLogLine(group));
    if (result.failed.length > 0) {
      throw new StagingWriteError(`cannot stage ${result.failed.length} group(s): ${describeFailures(result)}`, {
        cause: result.failed[0]?.error,
        context: { batchId },
      });
    }
    log('info', 'change feed batch ingested', {
      received: result.received,
      staged: result.staged,
      quarantined: result.quarantined,
      objects: result.written.length,
    });
    return {
      received: result.received,
      staged: result.staged,
      quarantined: result.quarantined,
      objects: result.written.map((w) => w.key),
    };
  } catch (error) {
    const retry = context.retryContext;
    if (retry && (retry.maxRetryCount < 0 || retry.retryCount < retry.maxRetryCount)) {
      log('warn', 'change feed batch failed; the host retries', { attempt: retry.retryCount + 1, error: errorMessage(error) });
      throw error;
    }
    const poison = await writePoisonBatch(store, {
      source: 'cosmos',
      batchId,
      firstPosition: positions[0] ?? '0',
      lastPosition: positions[positions.length - 1] ?? '0',
      documents,
      error,
      functionName: context.functionName,
      invocationId: context.invocationId,
      retryCount: retry?.retryCount,
    });
    log('error', 'change feed batch failed after the last retry; raw batch kept in the poison location', {
      retries: retry?.retryCount ?? 0,
      poison,
      error: errorMessage(error),
    });
    return { received: documents.length, staged: 0, quarantined: 0, objects: [], poison };
  }
}

/**
 * The trigger does not tell a Node handler which lease (feed range) a batch came from, and `_lsn` values
 * of different physical partitions can coincide: batches are named by their content (shared with the CLI).
 */
export const feedRangeName = cosmosBatchName;

const settings = triggerSettings(process.env);

app.cosmosDB('ingest_changefeed', {
  connection: COSMOS_CONNECTION_SETTING,
  databaseName: settings.database,
  containerName: settings.container,
  leaseContainerName: settings.leaseContainer,
  createLeaseContainerIfNotExists: true,
  startFromBeginning: settings.startFromBeginning,
  maxItemsPerInvocation: settings.maxItemsPerInvocation,
  retry: {
    strategy: 'exponentialBackoff',
    maxRetryCount: settings.changeFeedMaxRetries,
    minimumInterval: { seconds: 5 },
    maximumInterval: { minutes: 5 },
  },
  handler: ingestChangefeed,
});
