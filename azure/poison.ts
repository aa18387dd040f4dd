import { gzipSync } from 'node:zlib';
import { errorMessage } from '../src/core/errors.js';
import { QUARANTINE_ROOT, safeName } from '../src/core/staging/layout.js';
import { jstDate } from '../src/core/time/jst.js';
import type { ObjectStore } from '../src/ports/store/ObjectStore.js';

export interface PoisonBatch {
  readonly source: 'cosmos';
  readonly batchId: string;
  readonly firstPosition: string;
  readonly lastPosition: string;
  readonly documents: readonly unknown[];
  readonly error: unknown;
  readonly functionName: string;
  readonly invocationId: string;
  readonly retryCount: number | undefined;
  readonly now?: number;
}

/**
 * Writes a batch the retries could not stage to `quarantine/poison/source=<s>/dt=<JST day>/<batch>.json.gz`,
 * raw documents and the reason, so the checkpoint can move on without losing a change silently.
 * The name comes from the batch's positions: a poison write that is itself retried replaces the object.
 * Replay: `gunzip`, take `.documents`, `makoto-lake ingest --source cosmos FILE` (docs/AZURE.md).
 */
export async function writePoisonBatch(store: ObjectStore, batch: PoisonBatch): Promise<string> {
  const now = batch.now ?? Date.now();
  const name = safeName(`${batch.batchId}_${batch.firstPosition}_${batch.lastPosition}`);
  const key = `${QUARANTINE_ROOT}poison/source=${batch.source}/dt=${jstDate(now)}/${name}.json.gz`;
  const body = {
    reason: errorMessage(batch.error),
    source: batch.source,
    batch_id: batch.batchId,
    function: batch.functionName,
    invocation_id: batch.invocationId,
    retry_count: batch.retryCount ?? null,
    quarantined_at: new Date(now).toISOString(),
    documents: batch.documents,
  };
  await store.putBytes(key, gzipSync(JSON.stringify(body)), { contentType: 'application/json' });
  return key;
}
