/**
 * One tenant-day compacted as K map tasks and B reduce tasks that may run in different processes or machines
 * (docs/SCALING.md, "Splitting one huge tenant-day across invocations"). Everything the tasks hand to each
 * other lives in the ObjectStore under `compaction-work/messages/tenant_id=<t>/dt=<d>/<splitId>/`:
 *
 *   plan.json                                     the inputs, each assigned to a range; the partition as planned
 *   range=<i>/attempt=<a>/bucket=<b>/data_<n>.parquet   map i's first delivery of each version, by hash(message_id) % B
 *   range=<i>/attempt=<a>/rejected.ndjson.gz      map i's quarantine entries (salvaged lines, rows breaking a rule)
 *   range=<i>/report.json                         map i's counts and files of attempt <a> (written last: the task is done)
 *   bucket=<b>/report.json                        reduce b's counts, parts and remembered deletes of attempt <a>
 *
 * A reduce writes its current rows once, where the table will name them:
 * `analytics/messages/tenant_id=<t>/dt=<d>/part-<j>-<splitId>-<b>-<attempt>.parquet` (put-if-absent, with the
 * part's Delta statistics taken at reduce time and kept in its report). The commit names them as they lie: it
 * moves no data part. Parts no version names (a reduce retried, a split abandoned) are orphans that vacuum
 * removes after the retention, like a crashed single pass's uploads.
 *
 * Every attempt of a task (a retry, or a twin the queue redelivered while the first still runs) writes its
 * outputs under names of its own attempt (a map's `attempt=<id>/` folder, a reduce's part names), each created
 * put-if-absent, and deletes nothing (no task starts by clearing a folder): a twin writes beside
 * its sibling, never over it. The report is the one pointer that changes: the last attempt to finish names its
 * own outputs there, and whatever reads a report (the reduce, the commit) reads exactly the files of the attempt
 * it names (keys of that attempt only, at the versions it recorded). A reduce records the range attempts
 * it read; the commit refuses a reduce made from attempts that are no longer the current ones.
 *
 * The rows are exactly the single pass's: the single pass keeps, of each message, the first row in the
 * total latest-first order; a map keeps the first delivery of each version of its range in that order, the
 * reduce the first of those across ranges and then classifies exactly as the single pass. The counts are
 * exact too: in the single pass a message's valid rows sort by version, so its duplicates are its rows minus
 * its distinct versions and its superseded rows its distinct versions minus one. Hence duplicates = valid rows
 * read by the maps − versions classified by the reduces, and the reduces' tally gives the rest.
 *
 * One file per phase, in split/: plan.ts (startSplit), map.ts (mapRange), reduce.ts (reduceBucket),
 * commit.ts (commitSplit), abandon.ts (abandonSplit), runSplit.ts (all of them in one process), around the
 * task skeleton in task.ts (lease, work folder, run, tally connection) and the work prefix's files in
 * workPrefix.ts; splitRef.ts holds what every task shares.
 */
export { abandonSplit } from './split/abandon.js';
export { commitSplit, committedSplitResult } from './split/commit.js';
export { mapRange } from './split/map.js';
export { startSplit } from './split/plan.js';
export { reduceBucket } from './split/reduce.js';
export { runSplit } from './split/runSplit.js';
export { SPLIT_LEASE_MS, type SplitMode, type SplitRef, type SplitShape } from './split/splitRef.js';
