/** A map task: one range of the inputs, its first delivery of each version bucketed by message id. */
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { CompactionError } from '../../core/errors.js';
import { quoteLiteral } from '../../core/sql/quote.js';
import { splitRangeAttemptPrefix, splitRangePrefix } from '../../core/staging/layout.js';
import { gzipNdjson } from '../../core/staging/ndjson.js';
import { mapLimit } from '../../core/util/concurrency.js';
import { DEFAULT_RETRY } from '../../core/util/retry.js';
import { createOnce, type ObjectInfo } from '../../ports/store/ObjectStore.js';
import {
  INPUT_ORIGINS,
  type InputOrigin,
  type MergeFiles,
  mergeParams,
  partitionParams,
  splitMapSql,
  stagedRowsSql,
} from '../compactionSql.js';
import type { CompactionDeps, PartitionRun } from '../compactPartition.js';
import {
  downloadVerified,
  isInputError,
  type LocalInputs,
  rejectedRowLines,
  salvageRefusedFiles,
  stagingLocalName,
  withObjectKeys,
} from '../mergePartition.js';
import type { RejectedInput } from '../salvage.js';
import { TALLY_FUNCTION } from '../tally.js';
import { assertTask, type SplitMode, type SplitRef } from './splitRef.js';
import { footerRows, type Task, withTallyConnection, withTask } from './task.js';
import { putJson, type RangeReport, readPlan, type SplitInput, type StoredRejected } from './workPrefix.js';

/**
 * Map task `range`: reads its inputs, validates and counts every row, keeps the first delivery of each
 * version and writes those bucketed by message id, its quarantine entries and its report. Idempotent: every
 * attempt writes its outputs under its own `attempt=<id>/` (put-if-absent, nothing deleted), then points the
 * range's report at them; a retried or duplicated attempt leaves the other's outputs as they are.
 */
export async function mapRange(deps: CompactionDeps, ref: SplitRef, range: number, mode: SplitMode = 'tasks'): Promise<void> {
  assertTask(ref, 'range', range, ref.ranges);
  await withTask(deps, ref, mode, `range-${range}`, async (task) => {
    const plan = await readPlan(deps.store, ref);
    const attempt = randomUUID();
    const prefix = splitRangeAttemptPrefix(ref.tenant, ref.date, ref.splitId, range, attempt);
    const inputs = plan.inputs.filter((i) => i.range === range);
    const local = await task.run.timed('download', () => downloadRange(task.run, inputs));
    const mapped = await task.run.timed('map', () => runMap(task, ref, range, local));
    await task.lease.confirm();
    const files = await task.run.timed('upload', () =>
      mapLimit(mapped.buckets, task.run.settings.transferConcurrency, async (b) => {
        const key = `${prefix}bucket=${b.bucket}/${basename(b.path)}`;
        const info = await createOnce(deps.store, key, task.run.signal, (options) =>
          deps.store.putFile(key, b.path, { ...options, contentType: 'application/vnd.apache.parquet' }),
        );
        return { bucket: b.bucket, key, etag: info.etag, rows: b.rows };
      }),
    );
    const rejectedKey = mapped.rejected.length === 0 ? null : `${prefix}rejected.ndjson.gz`;
    if (rejectedKey) {
      const body = gzipNdjson(mapped.rejected);
      await createOnce(deps.store, rejectedKey, task.run.signal, (options) =>
        deps.store.putBytes(rejectedKey, body, { ...options, contentType: 'application/gzip' }),
      );
    }
    const report: RangeReport = {
      range,
      attempt,
      read: mapped.read,
      rejected_rows: mapped.rejectedRows,
      salvaged_lines: mapped.salvaged.filter((r) => r.line !== undefined).length,
      objects_rejected: mapped.salvaged.filter((r) => r.line === undefined).length,
      valid_rows: mapped.validRows,
      versions: mapped.versions,
      buckets: files,
      rejected_key: rejectedKey,
      timings_ms: task.timings,
    };
    await task.lease.confirm();
    await putJson(deps.store, `${splitRangePrefix(ref.tenant, ref.date, ref.splitId, range)}report.json`, report);
  });
}

interface LocalRange extends LocalInputs {
  readonly keyOf: Map<string, string>;
}

/** Downloads a range's inputs; staging copies are named by their place in the whole listing (the tie order). */
async function downloadRange(run: PartitionRun, inputs: readonly SplitInput[]): Promise<LocalRange> {
  const inDir = join(run.work, 'in');
  await mkdir(inDir, { recursive: true });
  const retry = run.deps.retry ?? DEFAULT_RETRY;
  const pathOf = (i: SplitInput) =>
    join(inDir, i.origin === 'staging' ? stagingLocalName(i.number) : `${i.origin}-${String(i.number).padStart(6, '0')}.parquet`);
  const infos = await mapLimit(inputs, run.settings.transferConcurrency, async (input) => {
    const info = await downloadVerified(run.deps.store, input.key, pathOf(input), retry);
    if (info.etag !== input.etag) {
      throw new CompactionError(`${input.key} changed after the split was planned (etag ${input.etag}, now ${info.etag})`, {
        context: { key: input.key },
      });
    }
    return info;
  });
  const keyOf = new Map(inputs.map((i) => [pathOf(i), i.key]));
  const of = (origin: InputOrigin) =>
    inputs.map((input, i) => ({ input, info: infos[i] as ObjectInfo })).filter((x) => x.input.origin === origin);
  const published = (origin: InputOrigin) => of(origin).map((x) => ({ path: pathOf(x.input), key: x.input.key }));
  return {
    keyOf,
    stagingInfo: of('staging').map((x) => x.info),
    staging: of('staging').map((x) => pathOf(x.input)),
    stagingNumbers: of('staging').map((x) => x.input.number),
    published: published('published'),
    tombstones: published('tombstone'),
  };
}

/** The map statement over one range, with the single pass's salvage of files DuckDB refuses. */
async function runMap(task: Task, ref: SplitRef, range: number, local: LocalRange) {
  const { run } = task;
  const outDir = join(run.work, 'out');
  const runKey = `${ref.splitId}/range=${range}`;
  try {
    return await withTallyConnection(run, runKey, async (connection, tally) => {
      const files: MergeFiles = local;
      const copy = async () => {
        await rm(outDir, { recursive: true, force: true });
        tally.reset();
        if (files.staging.length + files.published.length + files.tombstones.length === 0) return;
        await connection.run(
          `COPY (${splitMapSql(files, TALLY_FUNCTION, runKey, ref.buckets)}) TO ${quoteLiteral(outDir)} (FORMAT parquet, COMPRESSION ${run.settings.compression}, ROW_GROUP_SIZE_BYTES ${Math.trunc(run.settings.rowGroupBytes)}, PARTITION_BY (bucket))`,
          mergeParams(run.tenant, run.date, files),
        );
      };
      let salvaged: RejectedInput[] = [];
      try {
        await copy();
      } catch (error) {
        if (!isInputError(error)) throw error;
        salvaged = await salvageRefusedFiles(connection, run, local, local.keyOf);
        await copy();
      }
      const { counts, read } = tally.read();
      const rows = { sql: `(${stagedRowsSql(local.staging)})`, params: partitionParams(run.tenant, run.date) };
      const rejectedRows = counts.rejected > 0 ? await rejectedRowLines(connection, run, rows, local.keyOf) : [];
      const buckets = await bucketFiles(connection, outDir);
      const versions = buckets.reduce((n, b) => n + b.rows, 0);
      if (versions !== counts.current) {
        throw new CompactionError(
          `the map outputs hold ${versions} rows, the map counted ${counts.current}: nothing was published`,
        );
      }
      const totalRead = INPUT_ORIGINS.reduce((n, o) => n + read[o], 0);
      return {
        read,
        rejectedRows: counts.rejected,
        validRows: totalRead - counts.rejected,
        versions,
        buckets,
        salvaged,
        rejected: storedRejected(salvaged, rejectedRows, local),
      };
    });
  } catch (error) {
    run.signal.throwIfAborted();
    throw withObjectKeys(error, local.keyOf);
  }
}

/**
 * The quarantine entries of a range, each with its place in the single pass's order: the salvaged ones
 * first, by the object's place in the listing; then the rows breaking a rule, by the local file name.
 */
function storedRejected(salvaged: RejectedInput[], rows: RejectedInput[], local: LocalRange): StoredRejected[] {
  const numberOf = new Map(local.stagingInfo.map((info, i) => [info.key, local.stagingNumbers?.[i] ?? i]));
  const nameOf = new Map(local.staging.map((path, i) => [local.stagingInfo[i]?.key, basename(path)]));
  return [
    ...salvaged.map((entry) => ({ order: `0 ${String(numberOf.get(entry.object_key) ?? 0).padStart(12, '0')}`, entry })),
    ...rows.map((entry) => ({ order: `1 ${nameOf.get(entry.object_key) ?? ''}`, entry })),
  ];
}

/** The map's files by bucket (PARTITION_BY writes `bucket=<b>/data_<n>.parquet`), each with its footer's row count. */
async function bucketFiles(connection: DuckDBConnection, outDir: string) {
  let dirs: string[];
  try {
    dirs = await readdir(outDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const files: { bucket: number; path: string }[] = [];
  for (const dir of dirs.sort()) {
    const bucket = /^bucket=(\d+)$/.exec(dir)?.[1];
    if (bucket === undefined) throw new CompactionError(`unexpected map output ${dir} in ${outDir}`);
    for (const name of (await readdir(join(outDir, dir))).sort())
      files.push({ bucket: Number(bucket), path: join(outDir, dir, name) });
  }
  const rows = await footerRows(
    connection,
    files.map((f) => f.path),
  );
  return files.map((f, i) => ({ ...f, rows: rows[i] as number }));
}
