/**
 * An erase that kills itself: `node bin/run-ts.mjs test/erase/eraseCrashChild.ts ROOT WORK POINT SENDER` erases
 * SENDER of tenant acme in the LocalStore at ROOT and SIGKILLs its own process right after the first write
 * at POINT: `staging` (a staging object rewritten), `commit` (the erase's table commit written, before its
 * checkpoint), `log` (the first old log file deleted), `old` (the first replaced file deleted). Exit code 3:
 * the point was never reached.
 */

import { eraseTenant } from '../../src/jobs/erase/eraseTenant.js';
import { openDuckDb } from '../../src/ports/duckdb/openDuckDb.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import type { DeleteOptions, ObjectInfo, PutOptions } from '../../src/ports/store/ObjectStore.js';

export const MISSED_EXIT_CODE = 3;

class DyingStore extends LocalStore {
  constructor(
    root: string,
    private readonly point: string,
  ) {
    super(root);
  }
  override async putBytes(key: string, body: Uint8Array | string, options?: PutOptions): Promise<ObjectInfo> {
    const info = await super.putBytes(key, body, options);
    if (this.point === 'staging' && key.startsWith('staging/')) process.kill(process.pid, 'SIGKILL');
    if (this.point === 'commit' && /_delta_log\/\d{20}\.json$/.test(key)) process.kill(process.pid, 'SIGKILL');
    return info;
  }
  override async delete(key: string, options?: DeleteOptions): Promise<void> {
    await super.delete(key, options);
    if (this.point === 'staging' && key.startsWith('staging/')) process.kill(process.pid, 'SIGKILL');
    if (this.point === 'log' && key.includes('/_delta_log/')) process.kill(process.pid, 'SIGKILL');
    if (this.point === 'old' && key.startsWith('analytics/messages/tenant_id=')) process.kill(process.pid, 'SIGKILL');
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  const [root, work, point, sender] = argv as [string, string, string, string];
  const db = await openDuckDb({ memoryLimit: '512MB', threads: 1, workDirectory: `${work}/duckdb` });
  try {
    await eraseTenant(
      { store: new DyingStore(root, point), db, workDirectory: work },
      { tenant: 'acme', selector: { senders: [sender], conversations: [], messages: [] } },
    );
  } finally {
    db.closeSync();
  }
  return MISSED_EXIT_CODE;
}
