import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { mapLimit } from '../../core/util/concurrency.js';
import type { ObjectStore } from '../../ports/store/ObjectStore.js';
import type { AddAction } from './actions.js';
import { type TableSnapshot, tableKey } from './deltaTable.js';

/**
 * Downloads the files of one table version into `folder`, in the table's own layout
 * (`tenant_id=<t>/dt=<d>/<file>`), so any Parquet reader with hive partitioning reads exactly that version
 * (`read_parquet('<folder>/*\/*\/*.parquet', hive_partitioning = true)`). Returns the local paths.
 */
export async function exportSnapshot(
  store: ObjectStore,
  snapshot: TableSnapshot,
  folder: string,
  keep: (add: AddAction) => boolean = () => true,
  concurrency = 8,
): Promise<string[]> {
  const files = [...snapshot.files.values()].filter(keep).sort((a, b) => (a.path < b.path ? -1 : 1));
  return mapLimit(files, concurrency, async (add) => {
    const local = join(folder, decodeURIComponent(add.path));
    await mkdir(dirname(local), { recursive: true });
    await store.getToFile(tableKey(add.path), local);
    return local;
  });
}
