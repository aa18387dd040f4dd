import { join } from 'node:path';
import { analyticsKey, compactionQuarantineKey, runManifestKey, tombstoneKey } from '../core/staging/layout.js';
import { gzipNdjson } from '../core/staging/ndjson.js';
import { mapLimit } from '../core/util/concurrency.js';
import { lakeTable, tableMetadata } from '../lake/lakeTable.js';
import type { ManifestObject, PartitionManifest } from '../lake/manifest.js';
import type { PartitionPlan } from '../lake/planPartition.js';
import { type AddAction, removeOf } from '../lake/table/actions.js';
import { addOf, partitionId, TAG_DELETES, TAG_MANIFEST, TAG_QUARANTINE, TAG_RUN } from '../lake/table/deltaTable.js';
import { withConnection } from '../ports/duckdb/openDuckDb.js';
import { PreconditionFailedError } from '../ports/store/errors.js';
import { createOnce, type ObjectInfo, type ObjectStore, type PutOptions } from '../ports/store/ObjectStore.js';
import { emptyPartSql } from './compactionSql.js';
import type { PartitionLease, PartitionRun } from './compactPartition.js';
import type { MergeOutcome } from './mergePartition.js';
import { partStats } from './partStats.js';

export interface Committed {
  readonly outputs: ObjectInfo[];
  readonly manifest: PartitionManifest;
  /** The table version that published the partition. */
  readonly version: number;
}

const PARQUET: PutOptions = { contentType: 'application/vnd.apache.parquet', ifNoneMatch: '*' };

/**
 * The commit phase. Every file is new, named for this attempt and created put-if-absent — the parts (with
 * their statistics; a split's, already placed by its reduces, are only named), the remembered-deletes file,
 * the run manifest — and then one table commit replaces the
 * partition's files (remove the version read at plan time, add these; when the merge kept the published
 * parts, add these beside them and name the kept ones again with this run's tags): the only step readers see. A newer
 * commit of the same partition makes it a CommitConflictError (the caller re-plans); nothing is deleted here
 * (vacuum removes what no retained version references).
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
  // parts a split's reduces already placed are named as they lie: no transfer, their stats from the reduce
  const placed = (outcome.placed ?? []).map((p) => ({
    info: { key: p.key, size: p.size, etag: p.etag, lastModified: new Date(p.modificationTime) },
    stats: p.stats,
  }));
  // published parts every row of which is still current stay as they are (MergeOutcome.partsKept)
  const kept = outcome.partsKept ? plan.files : [];
  const files = outcome.parts.length > 0 || placed.length > 0 || kept.length > 0 ? outcome.parts : [await emptyPart(run)];
  const uploaded = await run.timed('upload', async () => ({
    parts: [
      ...placed,
      ...(await mapLimit(files, settings.transferConcurrency, async (file, i) => {
        const stats = outcome.partStats?.[i] ?? (await partStats(deps.db, file));
        const info = await putOnce(deps.store, analyticsKey(tenant, date, runId, i), file, PARQUET, run.signal);
        return { info, stats };
      })),
    ],
    // remembered deletes unchanged since the version read: it names the same file again (vacuum keeps what a
    // retained version names)
    tombstones: outcome.tombstoneFile
      ? await putOnce(deps.store, tombstoneKey(tenant, date, runId), outcome.tombstoneFile, PARQUET, run.signal)
      : outcome.tombstonesKept,
  }));
  // every part the new version names: the kept ones (as the plan listed them) and the ones written
  const outputs = [...(outcome.partsKept ? plan.published : []), ...uploaded.parts.map((p) => p.info)];

  await run.phase('committing');
  const { manifest, version } = await run.timed('commit', async () => {
    const quarantine = await writeQuarantine(run, outcome);
    const body = manifestOf(run, plan, outcome, { outputs, tombstones: uploaded.tombstones, quarantine });
    const manifestKey = runManifestKey(tenant, date, runId);
    await deps.store.putBytes(manifestKey, `${JSON.stringify(body, null, 2)}\n`, {
      contentType: 'application/json',
      ifNoneMatch: '*',
    });
    const tags: Record<string, string> = { [TAG_RUN]: runId, [TAG_MANIFEST]: manifestKey };
    if (uploaded.tombstones) tags[TAG_DELETES] = uploaded.tombstones.key;
    if (quarantine) tags[TAG_QUARANTINE] = quarantine;
    const partitionValues = { tenant_id: tenant, dt: date };
    const at = run.now();
    const adds: AddAction[] = [
      // a kept part again, with the new tags: its rows do not change (dataChange false), the tags name this run
      ...kept.map((file): AddAction => ({ ...file, dataChange: false, tags })),
      ...uploaded.parts.map(({ info, stats }) => addOf(info, partitionValues, stats, tags)),
    ];
    const table = lakeTable(deps);
    const committedAt = await table.commit(
      {
        partitions: [partitionId(partitionValues)],
        adds,
        removes: outcome.partsKept ? [] : plan.files.map((f) => removeOf(f, at)),
        txns: [{ appId: `makoto-lake/${partitionId(partitionValues)}`, version: run.started, lastUpdated: at }],
        info: {
          operationParameters: {
            mode: outcome.partsKept ? 'AppendToPartition' : 'ReplacePartition',
            partition: partitionId(partitionValues),
          },
          makoto: { run_id: runId, tenant_id: tenant, dt: date, rows_written: outcome.counts.current },
        },
      },
      plan.readVersion,
      () => tableMetadata(at),
    );
    return { manifest: body, version: committedAt };
  });
  await run.phase('cleaning');
  return { outputs, manifest, version };
}

/** Uploads a file under a key unique to this attempt (createOnce: put-if-absent, stopped by the run's signal). */
const putOnce = (store: ObjectStore, key: string, file: string, options: PutOptions, signal: AbortSignal) =>
  createOnce(store, key, signal, (create) => store.putFile(key, file, { ...options, ...create }));

/** A part with no rows: a partition whose every message is deleted still has a file that carries its state. */
async function emptyPart(run: PartitionRun): Promise<string> {
  const file = join(run.work, 'empty-part.parquet');
  await withConnection(run.deps.db, (connection) => connection.run(emptyPartSql(file, run.settings)).then(() => undefined));
  return file;
}

/** The attempt's rejected lines, in a file of its own (a losing attempt never touches the winner's). */
async function writeQuarantine(run: PartitionRun, outcome: MergeOutcome): Promise<string | null> {
  if (outcome.rejected.length === 0) return null;
  const key = compactionQuarantineKey(run.tenant, run.date, run.runId);
  const at = new Date(run.now()).toISOString();
  const body = gzipNdjson(
    outcome.rejected.map((r) => ({ ...r, tenant_id: run.tenant, dt: run.date, run_id: run.runId, quarantined_at: at })),
  );
  try {
    await run.deps.store.putBytes(key, body, { ifNoneMatch: '*', contentType: 'application/gzip' });
  } catch (error) {
    // this attempt's own earlier write whose reply was lost: the key is unique to the attempt
    if (!(error instanceof PreconditionFailedError)) throw error;
  }
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
    // every staging object the partition's rows now include: the ones this run read, and (an incremental
    // plan) the ones earlier runs folded in, so the planner sees them as folded
    inputs: [...(plan.folded ?? []), ...outcome.staging].map((i) => ({
      key: i.key,
      size: i.size,
      etag: i.etag,
      last_modified: i.lastModified.toISOString(),
    })),
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
    ...(plan.folded && plan.folded.length > 0 ? { inputs_carried: plan.folded.length } : {}),
    ...(outcome.split ? { split: { ranges: outcome.split.ranges, buckets: outcome.split.buckets } } : {}),
  };
}
