import type { DuckDBInstance } from '@duckdb/node-api';
import { BIGINT, BOOLEAN, DuckDBScalarFunction, INTEGER, VARCHAR } from '../ports/duckdb/nodeApi.js';
import { INPUT_ORIGINS, type InputOrigin } from './compactionSql.js';

/**
 * What happened to each row of a merge: 0 current (kept), 1 deleted (the latest version is a user delete),
 * 2 superseded, 3 duplicate, 4 rejected (classifiedRowsSql). The single pass counts them with SQL over its
 * narrow table of classified rows (tallyFromCounts). A split's map and reduce statements write Parquet
 * straight from the classification, so they pass every row's kind and origin through
 * `makoto_tally(run, kind, origin, deleted_id, deleted_seq, deleted_at)`, which counts it and keeps only
 * `current` rows. The last three arguments are NULL except for `deleted` rows (few), whose id, feed position
 * and capture time are collected as the partition's remembered deletes. The run key must be a literal of
 * the statement (one value for every row): it is read once per chunk.
 */
export const ROW_KINDS = ['current', 'deleted', 'superseded', 'duplicate', 'rejected'] as const;
export type RowKind = (typeof ROW_KINDS)[number];
export type RowCounts = Record<RowKind, number>;

/** A message whose latest version is a user delete: what the tombstone file keeps. */
export interface RememberedDelete {
  readonly message_id: string;
  readonly source_seq: string;
  /** Capture time of the delete, epoch milliseconds. */
  readonly ingested_at: number;
}

export interface TallyResult {
  /** Rows by kind, all origins together. */
  readonly counts: RowCounts;
  /** Rows read, by origin. */
  readonly read: Record<InputOrigin, number>;
  /** Rows of kind `deleted`, by origin (INPUT_ORIGINS order). */
  readonly deletedByOrigin: number[];
  readonly deletes: RememberedDelete[];
}

export const TALLY_FUNCTION = 'makoto_tally';

interface RunTally {
  /** counts[origin * ROW_KINDS.length + kind] */
  counts: number[];
  deletes: RememberedDelete[];
}

const runs = new Map<string, RunTally>();
const installed = new WeakSet<DuckDBInstance>();
const freshTally = (): RunTally => ({ counts: new Array(INPUT_ORIGINS.length * ROW_KINDS.length).fill(0), deletes: [] });

/** Registers makoto_tally once per instance (functions live in the instance's catalog). */
export async function installTally(db: DuckDBInstance): Promise<void> {
  if (installed.has(db)) return;
  const connection = await db.connect();
  try {
    connection.registerScalarFunction(
      DuckDBScalarFunction.create({
        name: TALLY_FUNCTION,
        returnType: BOOLEAN,
        parameterTypes: [VARCHAR, INTEGER, INTEGER, VARCHAR, VARCHAR, BIGINT],
        volatile: true,
        specialHandling: true,
        mainFunction: (_info, input, output) => {
          const runKeys = input.getColumnVector(0);
          const kinds = input.getColumnVector(1);
          const origins = input.getColumnVector(2);
          // the run key is a literal in every statement that calls the tally: one lookup per chunk, not per
          // row (reading a string per row was the tally's largest cost, docs/PERFORMANCE.md)
          const tally = input.rowCount > 0 ? runs.get(runKeys.getItem(0) as string) : undefined;
          for (let row = 0; row < input.rowCount; row++) {
            const kind = kinds.getItem(row) as number;
            if (tally) {
              const slot = (origins.getItem(row) as number) * ROW_KINDS.length + kind;
              tally.counts[slot] = (tally.counts[slot] ?? 0) + 1;
              if (kind === 1) {
                tally.deletes.push({
                  message_id: input.getColumnVector(3).getItem(row) as string,
                  source_seq: input.getColumnVector(4).getItem(row) as string,
                  ingested_at: Number(input.getColumnVector(5).getItem(row) as bigint),
                });
              }
            }
            output.setItem(row, kind === 0);
          }
          output.flush();
        },
      }),
    );
  } finally {
    connection.closeSync();
  }
  installed.add(db);
}

/** Starts counting for one statement; `read()` returns the counts, `end()` forgets them. */
export function openTally(runKey: string) {
  runs.set(runKey, freshTally());
  return {
    reset: () => runs.set(runKey, freshTally()),
    read: (): TallyResult => summarise(runs.get(runKey) ?? freshTally()),
    end: () => runs.delete(runKey),
  };
}

/** The counts of a merge from SQL: rows of (input_origin, row_kind, n), and its remembered deletes. */
export function tallyFromCounts(
  rows: readonly { input_origin: number; row_kind: number; n: number }[],
  deletes: RememberedDelete[],
): TallyResult {
  const tally = { ...freshTally(), deletes };
  for (const { input_origin, row_kind, n } of rows) tally.counts[input_origin * ROW_KINDS.length + row_kind] = n;
  return summarise(tally);
}

function summarise(tally: RunTally): TallyResult {
  const at = (origin: number, kind: number) => tally.counts[origin * ROW_KINDS.length + kind] ?? 0;
  const counts = Object.fromEntries(
    ROW_KINDS.map((k, kind) => [k, INPUT_ORIGINS.reduce((n, _, origin) => n + at(origin, kind), 0)]),
  ) as RowCounts;
  const read = Object.fromEntries(
    INPUT_ORIGINS.map((o, origin) => [o, ROW_KINDS.reduce((n, _, kind) => n + at(origin, kind), 0)]),
  ) as Record<InputOrigin, number>;
  const deletedByOrigin = INPUT_ORIGINS.map((_, origin) => at(origin, ROW_KINDS.indexOf('deleted')));
  return { counts, read, deletedByOrigin, deletes: tally.deletes };
}
