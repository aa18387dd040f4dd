import { rm } from 'node:fs/promises';
import { CompactionError } from '../errors.js';
import { analyticsKey, compactionQuarantineKey, manifestKey, tombstoneKey, tombstonePrefix } from '../staging/layout.js';
import { gzipNdjson } from '../staging/ndjson.js';
import { PreconditionFailedError } from '../store/errors.js';
import { listAll, type ObjectInfo } from '../store/ObjectStore.js';
import { mapLimit } from '../util/concurrency.js';
import type { PartitionLease, PartitionRun } from './compactPartition.js';
import type { ManifestObject, PartitionManifest } from './manifest.js';
import type { MergeOutcome } from './mergePartition.js';
import type { PartitionPlan } from './planPartition.js';

export interface Committed {
  readonly outputs: ObjectInfo[];
  readonly manifest: PartitionManifest;
}

/**
 * The commit phase. Order of writes, so that a crash at any point is repaired by the next run and nothing
 * the current manifest names is ever overwritten: new part files (numbered past the parts the manifest
 * names when their numbers would collide), the tombstone file (a new key per run), the quarantine file,
 * then the manifest — conditional on the version seen at plan time and on still holding the lease — and
 * last the part and tombstone files no longer named.
 */
export async function commitPartition(
  run: PartitionRun,
  lease: PartitionLease,
  plan: PartitionPlan,
  outcome: MergeOutcome,
): Promise<Committed> {
  const { deps, tenant, date, runId, settings } = run;
  await run.phase('uploading');
  await lease.confirm();
  const first = firstPartNumber(plan, outcome.parts.length);
  const { outputs, tombstones } = await run.timed('upload', async () => ({
    outputs: await mapLimit(outcome.parts, settings.transferConcurrency, async (file, i) => {
      await outcome.fetchPart?.(i);
      try {
        return await deps.store.putFile(analyticsKey(tenant, date, first + i), file, {
          contentType: 'application/vnd.apache.parquet',
        });
      } finally {
        if (outcome.fetchPart) await rm(file, { force: true });
      }
    }),
    tombstones: outcome.tombstoneFile
      ? await deps.store.putFile(tombstoneKey(tenant, date, runId), outcome.tombstoneFile, {
          contentType: 'application/vnd.apache.parquet',
        })
      : undefined,
  }));

  await run.phase('committing');
  const manifest = await run.timed('commit', async () => {
    const quarantine = await writeQuarantine(run, outcome);
    const body = manifestOf(run, plan, outcome, { outputs, tombstones, quarantine });
    await lease.confirm();
    try {
      await deps.store.putBytes(manifestKey(tenant, date), `${JSON.stringify(body, null, 2)}\n`, {
        contentType: 'application/json',
        ...(plan.manifestEtag ? { ifMatch: plan.manifestEtag } : { ifNoneMatch: '*' }),
      });
    } catch (error) {
      if (!(error instanceof PreconditionFailedError)) throw error;
      throw new CompactionError(
        `the manifest was not replaced (its condition failed: another run changed it since this run read it, or holds it): nothing committed`,
        {
          cause: error,
          context: { tenant, date, runId },
        },
      );
    }
    return body;
  });

  await run.phase('cleaning');
  await run.timed('cleanup', async () => {
    const current = new Set([...outputs.map((o) => o.key), ...(tombstones ? [tombstones.key] : [])]);
    const previous = [...plan.folder, ...(await listAll(deps.store, tombstonePrefix(tenant, date)))];
    for (const stale of previous) {
      if (!current.has(stale.key)) await deps.store.delete(stale.key);
    }
  });
  return { outputs, manifest };
}

/**
 * Where the new parts start: part-0 unless that would overwrite a part the current manifest names (a crash
 * mid-upload must leave the published partition readable for the run that repairs it); then just past them.
 */
function firstPartNumber(plan: PartitionPlan, count: number): number {
  const named = (plan.manifest?.outputs ?? plan.published).map((o) => Number(/part-(\d+)\.parquet$/.exec(o.key)?.[1] ?? -1));
  const collides = named.some((n) => n >= 0 && n < count);
  return collides ? Math.max(...named) + 1 : 0;
}

async function writeQuarantine(run: PartitionRun, outcome: MergeOutcome): Promise<string | null> {
  const key = compactionQuarantineKey(run.tenant, run.date);
  if (outcome.rejected.length === 0) {
    await run.deps.store.delete(key);
    return null;
  }
  const at = new Date(run.now()).toISOString();
  await run.deps.store.putBytes(
    key,
    gzipNdjson(
      outcome.rejected.map((r) => ({ ...r, tenant_id: run.tenant, dt: run.date, run_id: run.runId, quarantined_at: at })),
    ),
  );
  return key;
}

const described = (o: ObjectInfo): ManifestObject => ({ key: o.key, size: o.size, etag: o.etag });

function manifestOf(
  run: PartitionRun,
  plan: PartitionPlan,
  outcome: MergeOutcome,
  written: { outputs: ObjectInfo[]; tombstones: ObjectInfo | undefined; quarantine: string | null },
): PartitionManifest {
  return {
    version: 1,
    run_id: run.runId,
    tenant_id: run.tenant,
    dt: run.date,
    started_at: new Date(run.started).toISOString(),
    finished_at: new Date(run.now()).toISOString(),
    inputs: outcome.staging.map((i) => ({ key: i.key, size: i.size, etag: i.etag, last_modified: i.lastModified.toISOString() })),
    rows_read: outcome.rowsRead,
    rows_rejected: outcome.rowsRejected,
    objects_rejected: outcome.objectsRejected,
    duplicates_removed: outcome.counts.duplicate,
    versions_superseded: outcome.counts.superseded,
    deletes_applied: outcome.counts.deleted,
    rows_written: outcome.counts.current,
    outputs: written.outputs.map(described),
    quarantine: written.quarantine,
    settings: { compression: run.settings.compression, target_file_bytes: run.settings.targetFileBytes },
    previous_run_id: plan.manifest?.run_id ?? null,
    rows_carried: outcome.rowsCarried,
    deletes_remembered: outcome.deletesRemembered,
    published_inputs: outcome.published.map(described),
    tombstones: written.tombstones ? { ...described(written.tombstones), rows: outcome.counts.deleted } : null,
    ...(plan.missing.length > 0 ? { missing_inputs: plan.missing } : {}),
    ...(outcome.split ? { split: { ranges: outcome.split.ranges, buckets: outcome.split.buckets } } : {}),
  };
}
