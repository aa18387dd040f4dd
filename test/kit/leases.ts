import { hostname } from 'node:os';
import { lockKey } from '../../src/core/staging/layout.js';
import type { LeaseBody } from '../../src/lake/partitionLease.js';
import type { ObjectStore } from '../../src/ports/store/ObjectStore.js';

/** A pid no process of this host has (above the kernel's pid_max default). */
export const GONE_PID = 4_194_305;

/**
 * Writes a lease as another run left it: by default a process of this host that is gone, lease valid for
 * an hour. `host` other than this host's simulates a run on another machine.
 */
export async function plantLease(
  store: ObjectStore,
  tenant: string,
  date: string,
  fields: Partial<LeaseBody> = {},
): Promise<LeaseBody> {
  const host = fields.host ?? hostname();
  const pid = fields.pid ?? GONE_PID;
  const body: LeaseBody = {
    run_id: 'planted-run',
    acquired_at: new Date(Date.now() - 1000).toISOString(),
    expires_at: new Date(Date.now() + 3_600_000).toISOString(),
    ...fields,
    host,
    pid,
    holder: fields.holder ?? `${host}:${pid}`,
  };
  await store.putBytes(lockKey(tenant, date), `${JSON.stringify(body)}\n`, { contentType: 'application/json' });
  return body;
}
