/** A reduce task: one bucket of message ids across every range, classified, its parts placed in the table's folder. */
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CompactionError } from '../../core/errors.js';
import { quoteLiteral } from '../../core/sql/quote.js';
import { splitBucketPrefix } from '../../core/staging/layout.js';
import { mapLimit } from '../../core/util/concurrency.js';
import { DEFAULT_RETRY } from '../../core/util/retry.js';
import { createOnce } from '../../ports/store/ObjectStore.js';
import { parquetCopyOptionsSql, splitReduceSql } from '../compactionSql.js';
import type { CompactionDeps } from '../compactPartition.js';
import { downloadVerified, type PlacedPart, partFiles, verifyRowCount } from '../mergePartition.js';
import { partStats } from '../partStats.js';
import { TALLY_FUNCTION } from '../tally.js';
import { assertTask, type SplitMode, type SplitRef } from './splitRef.js';
import { footerRows, type Task, withTallyConnection, withTask } from './task.js';
import { assertVersion, type BucketReport, placedPartKey, putJson, readRangeReports } from './workPrefix.js';

/**
 * Reduce task `bucket`: reads the bucket's outputs of every range (each range must have reported), keeps the
 * first delivery of each version across ranges, classifies as the single pass and writes the current rows
 * as parts with its report (counts, parts, remembered deletes). Idempotent.
 */
export async function reduceBucket(
  deps: CompactionDeps,
  ref: SplitRef,
  bucket: number,
  mode: SplitMode = 'tasks',
): Promise<void> {
  assertTask(ref, 'bucket', bucket, ref.buckets);
  await withTask(deps, ref, mode, `bucket-${bucket}`, async (task) => {
    const ranges = await readRangeReports(deps.store, ref);
    const attempt = randomUUID();
    const inputs = ranges.flatMap((r) => r.buckets.filter((b) => b.bucket === bucket));
    const inDir = join(task.run.work, 'in');
    await mkdir(inDir, { recursive: true });
    const retry = deps.retry ?? DEFAULT_RETRY;
    const files = await task.run.timed('download', () =>
      mapLimit(inputs, task.run.settings.transferConcurrency, async (input, i) => {
        const path = join(inDir, `${String(i).padStart(6, '0')}.parquet`);
        assertVersion(await downloadVerified(deps.store, input.key, path, retry), input.etag, 'its range reported');
        return path;
      }),
    );
    const reduced = await task.run.timed('reduce', () => runReduce(task, ref, bucket, files, inputs));
    const stats = await task.run.timed('stats', () => mapLimit(reduced.parts, 2, (part) => partStats(deps.db, part.path)));
    await task.lease.confirm();
    // straight into the partition's folder, under names of this attempt: the commit only names them
    const parts = await task.run.timed('upload', () =>
      mapLimit(reduced.parts, task.run.settings.transferConcurrency, async (part, j): Promise<PlacedPart> => {
        const key = placedPartKey(ref, bucket, attempt, j);
        const info = await createOnce(deps.store, key, task.run.signal, (options) =>
          deps.store.putFile(key, part.path, { ...options, contentType: 'application/vnd.apache.parquet' }),
        );
        return {
          key,
          size: info.size,
          etag: info.etag,
          rows: part.rows,
          modificationTime: info.lastModified.getTime(),
          stats: stats[j] as string,
        };
      }),
    );
    const report: BucketReport = {
      bucket,
      attempt,
      range_attempts: ranges.map((r) => r.attempt),
      counts: reduced.counts,
      parts,
      deletes: reduced.deletes,
      timings_ms: task.timings,
    };
    await task.lease.confirm();
    await putJson(deps.store, `${splitBucketPrefix(ref.tenant, ref.date, ref.splitId, bucket)}report.json`, report);
  });
}

/** The reduce statement over one bucket's map outputs; verifies the inputs' and the parts' footers. */
async function runReduce(
  task: Task,
  ref: SplitRef,
  bucket: number,
  files: readonly string[],
  inputs: readonly { key: string; rows: number }[],
) {
  const { run } = task;
  const outDir = join(run.work, 'out');
  const runKey = `${ref.splitId}/bucket=${bucket}`;
  return withTallyConnection(run, runKey, async (connection, tally) => {
    const rows = await footerRows(connection, files);
    for (const [i, input] of inputs.entries()) {
      if (rows[i] !== input.rows) {
        throw new CompactionError(`${input.key} holds ${rows[i]} rows, its range reported ${input.rows}`, {
          context: { key: input.key },
        });
      }
    }
    if (files.length === 0) return { counts: { current: 0, deleted: 0, superseded: 0 }, parts: [], deletes: [] };
    await connection.run(
      `COPY (${splitReduceSql(files, TALLY_FUNCTION, runKey)}) TO ${quoteLiteral(outDir)} (${parquetCopyOptionsSql(run.settings)})`,
    );
    const { counts, deletes } = tally.read();
    if (counts.duplicate !== 0 || counts.rejected !== 0) {
      throw new CompactionError(
        `the reduce found ${counts.duplicate} duplicates and ${counts.rejected} rejected rows, expected none`,
      );
    }
    const paths = counts.current === 0 ? [] : await partFiles(outDir);
    await verifyRowCount(connection, paths, counts.current, 'bucket parts');
    const partRows = await footerRows(connection, paths);
    return {
      counts: { current: counts.current, deleted: counts.deleted, superseded: counts.superseded },
      parts: paths.map((path, i) => ({ path, rows: partRows[i] as number })),
      deletes,
    };
  });
}
