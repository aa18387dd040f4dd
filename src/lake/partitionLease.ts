import { hostname } from 'node:os';
import { LeaseLostError, PartitionLockedError } from '../core/errors.js';
import { LOCK_ROOT, lockKey } from '../core/staging/layout.js';
import { processExists } from '../core/util/processExists.js';
import { PreconditionFailedError, UnreadableJsonError } from '../ports/store/errors.js';
import { listAll, type ObjectStore } from '../ports/store/ObjectStore.js';
import { readJson } from '../ports/store/readJson.js';

/** How long a lease lasts without renewal: a crashed holder on another host is taken over after this. */
export const DEFAULT_LEASE_MS = 120_000;

export interface LeaseOptions {
  /** Clock (tests). */
  readonly now?: () => number;
  /** How long the lease lasts without a renewal; default {@link DEFAULT_LEASE_MS}. */
  readonly leaseMs?: number;
  /** Renewal interval; default leaseMs / 4. */
  readonly heartbeatMs?: number;
  /** The run's abort (SIGINT/SIGTERM): stops the heartbeat and aborts the lease's signal. */
  readonly signal?: AbortSignal;
  /**
   * The lease is held by a run whose tasks run in several processes (a split tenant-day): the process that
   * last renewed it exits between tasks by design, so only expiry lets another run take it over.
   */
  readonly acrossProcesses?: boolean;
}

export interface Lease {
  /** Aborted when the lease is lost (a renewal found another holder or failed past expiry) or the run was aborted. */
  readonly signal: AbortSignal;
  /**
   * Checks the lease is still this run's, and renews it unless it is fresh; throws LeaseLostError if another
   * run holds it or it was lost earlier. A lease written in the last quarter of its duration (FRESH_SHARE) is
   * read (its ETag unchanged: nobody replaced it), one request; an older one is renewed with a conditional
   * write (ifMatch the lease's own ETag). Called right before uploading parts (the lease saves doing the same
   * work twice; the table commit's put-if-absent is what keeps two runs' results apart).
   */
  confirm(): Promise<void>;
  /** Stops the heartbeat; deletes the lease conditionally (ifMatch its own ETag), never another run's lease. */
  release(): Promise<void>;
  /**
   * Renews the lease one last time and stops the heartbeat, leaving the lease in place for the next task of
   * the same run in another process (adoptLease); throws LeaseLostError like confirm().
   */
  handOver(): Promise<void>;
}

/** What the lease object holds; `holder` is `<host>:<pid>` (kept for messages), `host`/`pid` for takeover. */
export interface LeaseBody {
  readonly run_id: string;
  readonly holder: string;
  readonly host: string;
  readonly pid: number;
  readonly acquired_at: string;
  readonly expires_at: string;
  /** Set by a run whose tasks run in several processes: its holder's exit does not free it, only expiry. */
  readonly across_processes?: boolean;
}

/**
 * Takes the partition's lease `locks/messages/tenant_id=<t>/dt=<d>.lock`: created with ifNoneMatch '*', so
 * of two runs of a tenant-day exactly one proceeds and the other gets PartitionLockedError. The lease is
 * short and renewed by a heartbeat (an unref'd timer) with ifMatch on its own ETag while the run works.
 * Another run takes a lease over (ifMatch on the version it saw, so racing takers leave one winner) when it
 * has lapsed, or at once when its holder was a process on this host that no longer exists (a SIGKILL, an
 * out-of-memory kill). Stores without conditional writes (s3rver) give no mutual exclusion; see
 * docs/RELIABILITY.md.
 *
 * @example
 * const lease = await acquireLease(store, 'acme', '2025-08-11', runId, { signal });
 * try { ...; await lease.confirm(); await writeManifest(); } finally { await lease.release(); }
 */
export async function acquireLease(
  store: ObjectStore,
  tenant: string,
  date: string,
  runId: string,
  options: LeaseOptions = {},
): Promise<Lease> {
  const key = lockKey(tenant, date);
  const now = options.now ?? Date.now;
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  options.signal?.throwIfAborted();
  const bodyText = leaseBodyText(runId, new Date(now()).toISOString(), now, leaseMs, options);
  const locked = (holder: LeaseBody) =>
    new PartitionLockedError(
      `tenant ${tenant} for ${date} is already being compacted by run ${holder.run_id} on ${holder.holder} (lease until ${holder.expires_at})`,
      { context: { tenant, date, key, holder: holder.run_id } },
    );
  const json = { contentType: 'application/json' } as const;

  let etag: string;
  // when the lease found in place is as valid as the one written: the expiry of the version held
  let text = bodyText();
  let expiresAt = expiryOf(text);
  try {
    etag = (await store.putBytes(key, text, { ...json, ifNoneMatch: '*' })).etag;
  } catch (error) {
    if (!(error instanceof PreconditionFailedError)) throw error;
    const current = await readLease(store, key);
    if (current?.body.run_id === runId) {
      // our own lease: the create succeeded but its reply was lost and the retried write found it
      etag = current.etag;
      expiresAt = Math.min(expiresAt, Date.parse(current.body.expires_at));
    } else {
      if (current && !canTakeOver(current.body, now())) throw locked(current.body);
      try {
        const condition = current ? { ifMatch: current.etag } : { ifNoneMatch: '*' as const };
        text = bodyText();
        expiresAt = expiryOf(text);
        etag = (await store.putBytes(key, text, { ...json, ...condition })).etag;
      } catch (takeoverError) {
        if (!(takeoverError instanceof PreconditionFailedError)) throw takeoverError;
        const winner = await readLease(store, key);
        if (winner?.body.run_id !== runId) throw locked(winner?.body ?? unknownHolder());
        etag = winner.etag;
        expiresAt = Math.min(expiresAt, Date.parse(winner.body.expires_at));
      }
    }
  }
  return new HeldLease(store, key, runId, etag, bodyText, now, leaseMs, options, expiresAt);
}

/** Renewal attempts while the lease keeps naming this run (tasks of one split renew it side by side). */
const RENEW_ATTEMPTS = 12;

/**
 * confirm() only reads a lease that has at least this share of its duration left (written in the last
 * quarter of it, the default heartbeat interval): no other run can have taken it over by the rules (it has not
 * lapsed, and its holder lives), so an unchanged ETag is all the check needs; the heartbeat renews it.
 */
const FRESH_SHARE = 0.75;

/** The expiry a lease body names, as epoch ms. */
const expiryOf = (text: string) => Date.parse((JSON.parse(text) as LeaseBody).expires_at);

/**
 * Takes up a lease this run already holds, from another process (a task of a split tenant-day): the lease
 * must exist and name `runId`; it is renewed at once (conditional on the version read) and then by a
 * heartbeat. Never creates a lease: a lease that lapsed and was removed, or was taken over, is lost
 * (LeaseLostError), so a straggler task of an abandoned run cannot lock the partition again.
 */
export async function adoptLease(
  store: ObjectStore,
  tenant: string,
  date: string,
  runId: string,
  options: LeaseOptions = {},
): Promise<Lease> {
  const key = lockKey(tenant, date);
  const now = options.now ?? Date.now;
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  options.signal?.throwIfAborted();
  const current = await readOwnLease(store, key);
  if (current?.body.run_id !== runId) {
    const why = current ? `run ${current.body.run_id} on ${current.body.holder} holds it` : 'the lease object is gone';
    throw new LeaseLostError(`lost the lease ${key} of run ${runId}: ${why}`, { context: { key, runId } });
  }
  const bodyText = leaseBodyText(runId, current.body.acquired_at, now, leaseMs, options);
  // the version read may be another task's, written long ago: renewed at once, never only read
  const lease = new HeldLease(store, key, runId, current.etag, bodyText, now, leaseMs, options, 0);
  try {
    await lease.confirm();
  } catch (error) {
    await lease.handOver().catch(() => undefined);
    throw error;
  }
  return lease;
}

function leaseBodyText(runId: string, acquiredAt: string, now: () => number, leaseMs: number, options: LeaseOptions) {
  const host = hostname();
  return () => {
    const body: LeaseBody = {
      run_id: runId,
      holder: `${host}:${process.pid}`,
      host,
      pid: process.pid,
      acquired_at: acquiredAt,
      expires_at: new Date(now() + leaseMs).toISOString(),
      ...(options.acrossProcesses ? { across_processes: true } : {}),
    };
    return `${JSON.stringify(body)}\n`;
  };
}

class HeldLease implements Lease {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private readonly onRunAbort: () => void;
  /** Renewals and the release run one at a time, each on the ETag the previous one left. */
  private queue: Promise<void> = Promise.resolve();
  private released = false;

  constructor(
    private readonly store: ObjectStore,
    private readonly key: string,
    private readonly runId: string,
    private etag: string,
    private readonly bodyText: () => string,
    private readonly now: () => number,
    private readonly leaseMs: number,
    private readonly options: LeaseOptions,
    /** When the version held lapses (epoch ms): the expiry its body names. */
    private expiresAt: number,
  ) {
    this.timer = setInterval(
      () => {
        // a failed heartbeat is recorded in the signal; confirm() reports it
        this.renew().catch(() => undefined);
      },
      options.heartbeatMs ?? Math.max(1, Math.floor(leaseMs / 4)),
    );
    this.timer.unref();
    this.onRunAbort = () => {
      clearInterval(this.timer);
      this.controller.abort(options.signal?.reason);
    };
    options.signal?.addEventListener('abort', this.onRunAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  async confirm(): Promise<void> {
    await this.renew(true);
  }

  async handOver(): Promise<void> {
    try {
      if (!this.released) await this.renew();
    } finally {
      this.stop();
    }
  }

  /** Stops the heartbeat and forgets the run's abort, leaving the lease object as it is. */
  private stop(): void {
    this.released = true;
    clearInterval(this.timer);
    this.options.signal?.removeEventListener('abort', this.onRunAbort);
  }

  release(): Promise<void> {
    if (this.released) return this.queue;
    this.released = true;
    clearInterval(this.timer);
    this.options.signal?.removeEventListener('abort', this.onRunAbort);
    this.queue = this.queue
      .catch(() => undefined)
      .then(async () => {
        try {
          // checked first too, for stores that ignore the condition (s3rver): never delete another run's lease
          const current = await this.store.head(this.key);
          if (current === undefined) return;
          if (current.etag !== this.etag) throw new PreconditionFailedError(`${this.key} changed`);
          await this.store.delete(this.key, { ifMatch: this.etag });
        } catch (error) {
          if (!(error instanceof PreconditionFailedError)) throw error;
          // our last renewal may have committed with its reply lost: the lease is ours under another ETag
          const current = await readLease(this.store, this.key);
          if (current?.body.run_id === this.runId) await this.store.delete(this.key, { ifMatch: current.etag });
        }
      });
    return this.queue;
  }

  private renew(readIfFresh = false): Promise<void> {
    const next = this.queue.then(() => (readIfFresh && this.fresh() ? this.check() : this.renewNow()));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Whether the version held has at least FRESH_SHARE of the lease's duration left. */
  private fresh(): boolean {
    return this.expiresAt - this.now() >= this.leaseMs * FRESH_SHARE;
  }

  /**
   * confirm() of a fresh lease: one read. The same ETag means nobody replaced it (a store that ignores
   * conditions too); another version goes through the renewal, which tells a lost reply of ours from a takeover.
   */
  private async check(): Promise<void> {
    if (this.released) throw this.lost('the lease was released');
    const reason = this.controller.signal.reason;
    if (reason instanceof LeaseLostError) throw reason;
    this.options.signal?.throwIfAborted();
    const current = await this.store.head(this.key);
    if (current?.etag !== this.etag) await this.renewNow();
  }

  /**
   * One renewal. A renewal that finds another version of the lease re-reads it: while it still names this
   * run (a renewal whose reply was lost, or another task of the same split renewing at the same moment) it
   * tries again, up to RENEW_ATTEMPTS times with a short random pause; another run's lease is lost at once.
   */
  private async renewNow(attempt = 1): Promise<void> {
    if (this.released) throw this.lost('the lease was released');
    const reason = this.controller.signal.reason;
    if (reason instanceof LeaseLostError) throw reason;
    this.options.signal?.throwIfAborted();
    try {
      // a store that ignores conditions (s3rver) still shows a takeover here
      const current = await this.store.head(this.key);
      if (current?.etag !== this.etag) await this.adoptOwn(current === undefined ? 'the lease object is gone' : undefined);
      const text = this.bodyText();
      const written = await this.store.putBytes(this.key, text, { ifMatch: this.etag, contentType: 'application/json' });
      this.etag = written.etag;
      this.expiresAt = Date.parse((JSON.parse(text) as LeaseBody).expires_at);
    } catch (error) {
      if (error instanceof LeaseLostError) throw this.lose(error);
      if (error instanceof PreconditionFailedError && attempt < RENEW_ATTEMPTS) {
        await this.adoptOwn(undefined).catch((adoptError: unknown) => {
          throw adoptError instanceof LeaseLostError ? this.lose(adoptError) : adoptError;
        });
        if (attempt > 1) await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 90 * attempt));
        return this.renewNow(attempt + 1);
      }
      if (error instanceof PreconditionFailedError) throw this.lose(this.lost('another run changed it', error));
      // a transient failure: keep the lease until it would have lapsed
      if (this.now() >= this.expiresAt) throw this.lose(this.lost('it could not be renewed before it lapsed', error));
      throw error;
    }
  }

  /** The lease under another ETag is still ours only if it names our run (a renewal whose reply was lost). */
  private async adoptOwn(gone: string | undefined): Promise<void> {
    if (gone) throw this.lost(gone);
    const current = await readOwnLease(this.store, this.key);
    if (current?.body.run_id !== this.runId) {
      throw this.lost(current ? `run ${current.body.run_id} on ${current.body.holder} took it over` : 'the lease object is gone');
    }
    this.etag = current.etag;
  }

  private lost(why: string, cause?: unknown): LeaseLostError {
    return new LeaseLostError(`lost the lease ${this.key} of run ${this.runId}: ${why}`, {
      cause,
      context: { key: this.key, runId: this.runId },
    });
  }

  private lose(error: LeaseLostError): LeaseLostError {
    clearInterval(this.timer);
    if (!this.controller.signal.aborted) this.controller.abort(error);
    return error;
  }
}

/**
 * Removes the leases of dead runs (lapsed, or held by a process of this host that is gone) for the tenants
 * named: a run killed after its last write leaves a lease that no later run of that day would remove. Each
 * delete is conditional on the version read, so a lease taken meanwhile stays. One listing per tenant.
 */
export async function removeDeadLeases(
  store: ObjectStore,
  tenants: readonly string[] | 'all',
  now: number = Date.now(),
): Promise<string[]> {
  const prefixes = tenants === 'all' ? [LOCK_ROOT] : tenants.map((t) => `${LOCK_ROOT}tenant_id=${t}/`);
  const removed: string[] = [];
  for (const prefix of prefixes) {
    for (const info of await listAll(store, prefix)) {
      if (!info.key.endsWith('.lock')) continue;
      const lease = await readLease(store, info.key);
      if (!lease || !canTakeOver(lease.body, now)) continue;
      try {
        await store.delete(info.key, { ifMatch: lease.etag });
        removed.push(info.key);
      } catch (error) {
        if (!(error instanceof PreconditionFailedError)) throw error;
      }
    }
  }
  return removed;
}

/** A lapsed lease, or one whose holder was a process on this host that has exited. */
export function canTakeOver(body: LeaseBody, now: number): boolean {
  if (!(Date.parse(body.expires_at) > now)) return true;
  if (body.across_processes) return false;
  return body.host === hostname() && body.pid !== process.pid && !processExists(body.pid);
}

function unknownHolder(): LeaseBody {
  return { run_id: 'unknown', holder: 'unknown', host: '', pid: 0, acquired_at: '', expires_at: 'unknown' };
}

/**
 * readLease for a run that expects to hold the lease: a body read while another task of the same run was
 * replacing it (a store without atomic replacement, such as s3rver) is unreadable, so it is read again, a
 * few times, before it counts as somebody else's.
 */
async function readOwnLease(store: ObjectStore, key: string): Promise<Awaited<ReturnType<typeof readLease>>> {
  let current = await readLease(store, key);
  for (let i = 0; i < 3 && current?.body.run_id === 'unreadable'; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 80));
    current = await readLease(store, key);
  }
  return current;
}

/** The lease's body and version; leases written before `host`/`pid` existed are read from `holder`. */
export async function readLease(store: ObjectStore, key: string): Promise<{ body: LeaseBody; etag: string } | undefined> {
  const info = await store.head(key);
  if (!info) return undefined;
  let raw: Partial<LeaseBody> | undefined;
  try {
    raw = await readJson<Partial<LeaseBody>>(store, key, 'lease');
  } catch (error) {
    if (!(error instanceof UnreadableJsonError)) throw error;
    // an unreadable lease is treated as lapsed, so a torn write never blocks the partition for good
    return { body: { ...unknownHolder(), run_id: 'unreadable', expires_at: new Date(0).toISOString() }, etag: info.etag };
  }
  if (raw === undefined) return undefined;
  const holder = String(raw.holder ?? 'unknown');
  const colon = holder.lastIndexOf(':');
  const body: LeaseBody = {
    run_id: String(raw.run_id ?? 'unknown'),
    holder,
    host: raw.host ?? (colon > 0 ? holder.slice(0, colon) : ''),
    pid: raw.pid ?? (colon > 0 ? Number(holder.slice(colon + 1)) : 0),
    acquired_at: String(raw.acquired_at ?? ''),
    expires_at: String(raw.expires_at ?? new Date(0).toISOString()),
    ...(raw.across_processes === true ? { across_processes: true } : {}),
  };
  return { body, etag: info.etag };
}
