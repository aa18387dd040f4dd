import { hostname } from 'node:os';
import { PartitionLockedError } from '../errors.js';
import { lockKey } from '../staging/layout.js';
import { ObjectNotFoundError, PreconditionFailedError } from '../store/errors.js';
import { getBytes, type ObjectStore } from '../store/ObjectStore.js';

/** How long a compaction may hold a partition before another run may take it over (a crashed run). */
export const DEFAULT_LEASE_MS = 30 * 60 * 1000;

interface LeaseBody {
  run_id: string;
  holder: string;
  acquired_at: string;
  expires_at: string;
}

export interface Lease {
  release(): Promise<void>;
}

/**
 * Takes the partition's lease: `locks/messages/tenant_id=<t>/dt=<d>.lock`, created with a conditional
 * write (ifNoneMatch '*'), so of two runs of the same tenant-day exactly one proceeds and the other gets
 * PartitionLockedError ("already running"). A lease past its expiry (its run crashed) is taken over with
 * ifMatch on the expired lease's version, so two runs racing for a stale lease still leave one winner.
 * Stores without conditional writes (s3rver) give no mutual exclusion; see docs/RELIABILITY.md.
 */
export async function acquireLease(
  store: ObjectStore,
  tenant: string,
  date: string,
  runId: string,
  now: number,
  leaseMs = DEFAULT_LEASE_MS,
): Promise<Lease> {
  const key = lockKey(tenant, date);
  const body: LeaseBody = {
    run_id: runId,
    holder: `${hostname()}:${process.pid}`,
    acquired_at: new Date(now).toISOString(),
    expires_at: new Date(now + leaseMs).toISOString(),
  };
  const text = `${JSON.stringify(body)}\n`;
  const release = async () => {
    const current = await readLease(store, key);
    if (current?.body.run_id === runId) await store.delete(key);
  };
  try {
    await store.putBytes(key, text, { ifNoneMatch: '*', contentType: 'application/json' });
    return { release };
  } catch (error) {
    if (!(error instanceof PreconditionFailedError)) throw error;
  }
  const current = await readLease(store, key);
  // our own lease: the create succeeded but its reply was lost and the retried write found it
  if (current?.body.run_id === runId) return { release };
  const locked = (holder: LeaseBody) =>
    new PartitionLockedError(
      `tenant ${tenant} for ${date} is already being compacted by run ${holder.run_id} on ${holder.holder} (lease until ${holder.expires_at})`,
      { context: { tenant, date, key, holder: holder.run_id } },
    );
  if (current && Date.parse(current.body.expires_at) > now) throw locked(current.body);
  try {
    await store.putBytes(
      key,
      text,
      current
        ? { ifMatch: current.etag, contentType: 'application/json' }
        : { ifNoneMatch: '*', contentType: 'application/json' },
    );
    return { release };
  } catch (error) {
    if (error instanceof PreconditionFailedError) {
      const winner = await readLease(store, key);
      if (winner?.body.run_id === runId) return { release };
      throw locked(winner?.body ?? { ...body, run_id: 'unknown', holder: 'unknown' });
    }
    throw error;
  }
}

async function readLease(store: ObjectStore, key: string): Promise<{ body: LeaseBody; etag: string } | undefined> {
  const info = await store.head(key);
  if (!info) return undefined;
  try {
    const body = JSON.parse((await getBytes(store, key)).toString('utf8')) as LeaseBody;
    return { body, etag: info.etag };
  } catch (error) {
    if (error instanceof ObjectNotFoundError) return undefined;
    if (error instanceof SyntaxError) {
      // an unreadable lease is treated as expired, so a torn write never blocks the partition for good
      return {
        body: { run_id: 'unreadable', holder: 'unknown', acquired_at: '', expires_at: new Date(0).toISOString() },
        etag: info.etag,
      };
    }
    throw error;
  }
}
