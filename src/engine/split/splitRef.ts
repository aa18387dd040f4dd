/**
 * What every task of one split shares: its shape, its reference (all a task needs to find the others' work)
 * and where its tasks run (the lease they hold). See ../splitPartition.ts for the whole split.
 */
import { UsageError } from '../../core/errors.js';
import { assertSplitShape } from '../../core/splitShape.js';
import { splitWorkPrefix } from '../../core/staging/layout.js';
import { assertTenantId } from '../../core/tenant.js';
import { parseDate } from '../../core/time/jst.js';

export type { SplitShape } from '../../core/splitShape.js';

/** What every task of one split needs to find the others' work: pass it from task to task. */
export interface SplitRef {
  readonly tenant: string;
  readonly date: string;
  readonly splitId: string;
  readonly ranges: number;
  readonly buckets: number;
}

/**
 * How long a split's lease lasts without renewal. The lease is held from startSplit to commitSplit across
 * processes; each task renews it when it starts (adoptLease), while it works (heartbeat, every quarter) and
 * when it hands over. The gap between tasks (an orchestrator queueing the next stage) must stay under this:
 * 30 minutes is two Lambda timeouts. A split that crashed holds the day for at most this long; then any run
 * takes the lease over and the split's commit fails on it (and on the table version it planned at).
 */
export const SPLIT_LEASE_MS = 30 * 60_000;

/**
 * Where a split's tasks run. `tasks` (the default): an orchestrator hands each task to whatever process or
 * machine it starts, so the lease is held across processes and only its expiry (SPLIT_LEASE_MS) frees the day.
 * `in-process`: runSplit runs them all in this process (the CLI, a job that is not fanned out), so the lease is
 * the single pass's: DEFAULT_LEASE_MS, and taken over at once when its holder, a process of this host, is gone
 * (a SIGKILL, an out-of-memory kill).
 */
export type SplitMode = 'tasks' | 'in-process';

/** A ref comes from another process (a payload, a queue message): checked before any key is built from it. */
export function assertRef(ref: SplitRef): void {
  assertTenantId(ref.tenant);
  parseDate(ref.date);
  assertSplitShape(ref);
  splitWorkPrefix(ref.tenant, ref.date, ref.splitId);
}

/** The ref, and a task number inside the split's shape. */
export function assertTask(ref: SplitRef, what: 'range' | 'bucket', n: number, count: number): void {
  assertRef(ref);
  if (!Number.isSafeInteger(n) || n < 0 || n >= count) {
    throw new UsageError(`${what} must be a whole number from 0 to ${count - 1}, got ${JSON.stringify(n)}`);
  }
}
