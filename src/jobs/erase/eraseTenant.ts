/**
 * `makoto-lake erase` and `offboard`: removes one person's (or one tenant's) records from every object the
 * lake keeps, writes a receipt under `erasures/`, and verifies with a scan of everything left (docs/PRIVACY.md).
 *
 * @example
 * const outcome = await eraseTenant(deps, { tenant: 'acme', selector: { senders: ['u-42'], conversations: [], messages: [] } });
 * if (!outcome.receipt.verification?.ok) console.error(outcome.receipt.verification?.remaining);
 */

import { UsageError } from '../../core/errors.js';
import { assertTenantId } from '../../core/tenant.js';
import { CommitConflictError } from '../../lake/table/errors.js';
import { PreconditionFailedError } from '../../ports/store/errors.js';
import { type Applied, applyErase } from './applyErase.js';
import { type EraseMatcher, type EraseSelector, hashedSelector, matcherOf, newSalt } from './eraseMatcher.js';
import { type EraseDeps, type ErasePlan, planErase, releasePlan } from './planErase.js';
import {
  type EraseCounts,
  type EraseReceipt,
  newEraseId,
  pendingReceipts,
  type Remaining,
  readReceipt,
  receiptKey,
  type Verification,
  writeReceipt,
  zeroCounts,
} from './receipt.js';
import { tenantObjects } from './tenantObjects.js';

export interface EraseRequest {
  readonly tenant: string;
  /** The identifiers to erase; absent with `everything` (offboard). */
  readonly selector?: EraseSelector;
  readonly everything?: boolean;
  readonly dryRun?: boolean;
}

export interface EraseOutcome {
  readonly dryRun: boolean;
  readonly counts: EraseCounts;
  /** Undefined for a dry run (nothing is written). */
  readonly receipt?: EraseReceipt;
  readonly receiptKey?: string;
  /** Whether this run resumed an erase a crash had interrupted. */
  readonly resumed: boolean;
}

/** What the receipt says about object versions: the store interface sees only current objects. */
export const OBJECT_VERSIONS_NOTE =
  'noncurrent object versions and backups were not removed: makoto-lake reads and deletes current objects only; where the bucket keeps versions (S3 versioning) or soft-deleted blobs (Blob soft delete/versioning), they expire by the lifecycle rules in docs/PRIVACY.md, "Object versions and backups"';

/** Rounds of plan + apply when a capture or a compaction changes what the erase read (each round starts afresh). */
const MAX_ROUNDS = 4;

export async function eraseTenant(deps: EraseDeps, request: EraseRequest): Promise<EraseOutcome> {
  const tenant = assertTenantId(request.tenant);
  const everything = request.everything === true;
  const selector = request.selector ?? { senders: [], conversations: [], messages: [] };
  const clearIds = [...selector.senders, ...selector.conversations, ...selector.messages];
  if (!everything && clearIds.length === 0)
    throw new UsageError('erase needs at least one --sender, --conversation or --message');
  for (const id of clearIds) if (id === '') throw new UsageError('an identifier to erase is empty');
  const now = deps.now ?? Date.now;

  // the same request after a crash resumes that erase (its salt, and the message ids it had derived)
  const pending = (await pendingReceipts(deps.store, tenant)).find((r) => sameRequest(r, selector, everything));
  const salt = pending?.request.salt ?? newSalt();
  const hashed = hashedSelector(salt, selector);
  const requested = [...hashed.senders, ...hashed.conversations, ...hashed.messages];
  // the identifiers asked for are known in clear (in memory only): DuckDB compares values instead of hashing them
  const matcher = matcherOf(tenant, salt, [...requested, ...(pending?.derived_messages ?? [])], everything, clearIds);

  // offboarding: every object under the tenant's prefixes goes (counted as it stands before anything changes)
  const tenantObjectCount = everything ? (await tenantObjects(deps.store, tenant)).length : 0;
  if (request.dryRun) {
    const plan = await planErase(deps, matcher, { clearIds });
    plan.counts.objects_deleted = tenantObjectCount;
    return { dryRun: true, counts: plan.counts, resumed: pending !== undefined };
  }

  const eraseId = pending?.erase_id ?? newEraseId(now());
  const receipt: EraseReceipt = pending ?? {
    version: 1,
    erase_id: eraseId,
    kind: everything ? 'offboard' : 'erase',
    tenant_id: tenant,
    status: 'in-progress',
    started_at: new Date(now()).toISOString(),
    finished_at: null,
    request: { salt, ...hashed },
    derived_messages: [],
    counts: zeroCounts(),
    table_versions: [],
    verification: null,
    object_versions: OBJECT_VERSIONS_NOTE,
  };
  let counts: EraseCounts | undefined;
  const notRemoved: Remaining[] = [];
  for (let round = 0; ; round++) {
    // the plan keeps its copies of the parts to rewrite: the rewrite reads them instead of downloading again
    const plan = await planErase(deps, matcher, { clearIds, keepCopies: true });
    let applied: Applied;
    try {
      counts ??= plan.counts;
      // the derived ids are recorded before anything changes: a re-run after a crash still finds those messages
      receipt.derived_messages = derivedOf(matcher, requested);
      receipt.counts = counts;
      await writeReceipt(deps.store, receipt);
      applied = await applyErase(deps, matcher, plan, round === 0 ? `erase-${eraseId}` : `erase-${eraseId}-r${round}`);
    } catch (error) {
      // a capture rewrote an object, or a compaction committed a partition, after the plan read it
      if (!(error instanceof PreconditionFailedError || error instanceof CommitConflictError) || round + 1 >= MAX_ROUNDS)
        throw error;
      deps.log?.('erase.replanned', { round, error: (error as Error).message });
      continue;
    } finally {
      await releasePlan(plan);
    }
    if (applied.version !== undefined) receipt.table_versions.push(applied.version);
    counts.log_files = applied.logFilesDeleted;
    notRemoved.push(...applied.notRemoved);
    break;
  }
  if (everything) {
    // offboarding: what is left under the tenant's prefixes goes too (manifests, caches, locks, empty parts)
    const left = await tenantObjects(deps.store, tenant);
    for (const info of left) await deps.store.delete(info.key);
    counts.objects_deleted = tenantObjectCount;
  }

  const verification = await verify(deps, matcher, notRemoved, now);
  receipt.counts = counts;
  receipt.derived_messages = derivedOf(matcher, requested);
  receipt.verification = verification;
  receipt.status = verification.ok ? 'done' : 'incomplete';
  receipt.finished_at = new Date(now()).toISOString();
  const key = await writeReceipt(deps.store, receipt);
  return { dryRun: false, counts, receipt, receiptKey: key, resumed: pending !== undefined };
}

/** `erase --verify RECEIPT`: the scan again, from the receipt's hashes alone; the receipt gets the new result. */
export async function verifyReceipt(deps: EraseDeps, key: string): Promise<EraseReceipt> {
  const receipt = await readReceipt(deps.store, key);
  const matcher = receiptMatcher(receipt);
  receipt.verification = await verify(deps, matcher, [], deps.now ?? Date.now);
  if (receipt.status !== 'in-progress') receipt.status = receipt.verification.ok ? 'done' : 'incomplete';
  await writeReceipt(deps.store, receipt);
  return receipt;
}

export { receiptKey };

/**
 * The nightly re-application of an erase (src/jobs/erase/nightly.ts): the receipt's hashes matched against
 * everything again; when something matches (captured after the erase), it is erased the same way and the
 * receipt records the re-application. Returns whether anything was found.
 */
export async function reapplyReceipt(deps: EraseDeps, key: string): Promise<boolean> {
  const receipt = await readReceipt(deps.store, key);
  const matcher = receiptMatcher(receipt);
  const now = deps.now ?? Date.now;
  for (let round = 0; ; round++) {
    const plan = await planErase(deps, matcher);
    if (plan.found.length === 0 && plan.logFiles.length === 0) return false;
    const reapplied = receipt.reapplied ?? [];
    try {
      const applied = await applyErase(
        deps,
        matcher,
        plan,
        `erase-${receipt.erase_id}-n${reapplied.length + 1}${round > 0 ? `r${round}` : ''}`,
      );
      receipt.verification = await verify(deps, matcher, applied.notRemoved, now);
      receipt.derived_messages = [...matcher.hashes].filter((h) => !requestHashes(receipt).has(h)).sort();
      receipt.reapplied = [
        ...reapplied,
        {
          at: new Date(now()).toISOString(),
          counts: plan.counts,
          table_versions: applied.version === undefined ? [] : [applied.version],
        },
      ];
      receipt.status = receipt.verification.ok ? 'done' : 'incomplete';
      await writeReceipt(deps.store, receipt);
      return true;
    } catch (error) {
      if (!(error instanceof PreconditionFailedError || error instanceof CommitConflictError) || round + 1 >= MAX_ROUNDS)
        throw error;
    }
  }
}

const requestHashes = (receipt: EraseReceipt) =>
  new Set([...receipt.request.senders, ...receipt.request.conversations, ...receipt.request.messages]);

function receiptMatcher(receipt: EraseReceipt): EraseMatcher {
  return matcherOf(
    receipt.tenant_id,
    receipt.request.salt,
    [...requestHashes(receipt), ...receipt.derived_messages],
    receipt.kind === 'offboard',
  );
}

async function verify(deps: EraseDeps, matcher: EraseMatcher, notRemoved: Remaining[], now: () => number): Promise<Verification> {
  const plan: ErasePlan = await planErase(deps, matcher);
  const remaining = new Map<string, Remaining>();
  for (const found of plan.found) remaining.set(found.key, found);
  for (const left of notRemoved)
    if (remaining.has(left.key))
      remaining.set(left.key, { ...(remaining.get(left.key) as Remaining), reason: left.reason ?? '' });
  // offboarding: the table may still hold the tenant's empty parts only if they were not removed
  return {
    at: new Date(now()).toISOString(),
    objects_scanned: plan.objectsScanned,
    remaining: [...remaining.values()].sort((a, b) => (a.key < b.key ? -1 : 1)),
    ok: remaining.size === 0,
  };
}

function sameRequest(receipt: EraseReceipt, selector: EraseSelector, everything: boolean): boolean {
  if ((receipt.kind === 'offboard') !== everything) return false;
  const hashed = hashedSelector(receipt.request.salt, selector);
  const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  return (
    same(hashed.senders, receipt.request.senders) &&
    same(hashed.conversations, receipt.request.conversations) &&
    same(hashed.messages, receipt.request.messages)
  );
}

const derivedOf = (matcher: EraseMatcher, requested: readonly string[]) => {
  const asked = new Set(requested);
  return [...matcher.hashes].filter((h) => !asked.has(h)).sort();
};
