import { BOOLEAN, type DuckDBInstance, DuckDBScalarFunction, INTEGER, VARCHAR } from '@duckdb/node-api';

/**
 * What happened to each staging row, as the compaction statement classifies it. The statement passes
 * every row's kind through `makoto_tally(run, kind)`, which counts it and keeps only `current` rows:
 * the counts for the manifest come out of the same single pass that writes the Parquet, instead of a
 * second scan of the day (a second pass costs ~40% more; see docs/PERFORMANCE.md).
 */
export const ROW_KINDS = ['current', 'deleted', 'superseded', 'duplicate', 'rejected'] as const;
export type RowKind = (typeof ROW_KINDS)[number];
export type RowCounts = Record<RowKind, number>;

export const TALLY_FUNCTION = 'makoto_tally';

const counters = new Map<string, number[]>();
const installed = new WeakSet<DuckDBInstance>();

/** Registers makoto_tally once per instance (functions live in the instance's catalog). */
export async function installTally(db: DuckDBInstance): Promise<void> {
  if (installed.has(db)) return;
  const connection = await db.connect();
  try {
    connection.registerScalarFunction(
      DuckDBScalarFunction.create({
        name: TALLY_FUNCTION,
        returnType: BOOLEAN,
        parameterTypes: [VARCHAR, INTEGER],
        volatile: true,
        mainFunction: (_info, input, output) => {
          const runs = input.getColumnVector(0);
          const kinds = input.getColumnVector(1);
          for (let row = 0; row < input.rowCount; row++) {
            const kind = kinds.getItem(row) as number;
            const counts = counters.get(runs.getItem(row) as string);
            if (counts) counts[kind] = (counts[kind] ?? 0) + 1;
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
  counters.set(
    runKey,
    ROW_KINDS.map(() => 0),
  );
  return {
    reset: () =>
      counters.set(
        runKey,
        ROW_KINDS.map(() => 0),
      ),
    read: (): RowCounts => {
      const counts = counters.get(runKey) ?? [];
      return Object.fromEntries(ROW_KINDS.map((k, i) => [k, counts[i] ?? 0])) as RowCounts;
    },
    end: () => counters.delete(runKey),
  };
}
