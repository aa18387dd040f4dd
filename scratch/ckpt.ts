import { openDuckDb } from '../src/duckdb/openDuckDb.js';
import { readCheckpointFile, writeCheckpointFile } from '../src/table/checkpointFile.js';
import { night, year } from '../bench/tableLog.js';
export async function main() {
  const db = await openDuckDb({ memoryLimit: '1GB', threads: 2, workDirectory: '/tmp/ck-work' });
  const actions: any[] = [];
  for (let i = 0; i < 100000; i++) actions.push({ add: { path: `tenant_id=t${i%1000}/dt=2025-01-01/part-${i}.parquet`, partitionValues: { tenant_id: `t${i%1000}`, dt: '2025-01-01' }, size: 1, modificationTime: 1, dataChange: true, stats: '{"numRecords":1000,"minValues":{"created_at":"2025-01-01T00:00:00.000Z","message_id":"m0000"},"maxValues":{"created_at":"2025-01-01T14:59:59.999Z"},"nullCount":{"created_at":0}}', tags: { 'makoto.run_id': 'r'+i, 'makoto.manifest': 'manifests/messages/x/'+i+'.json' } } });
  let t = performance.now();
  await writeCheckpointFile(db, actions, '/tmp/ck.parquet');
  console.log('write', performance.now() - t);
  for (let k = 0; k < 2; k++) { t = performance.now(); const r = await readCheckpointFile(db, '/tmp/ck.parquet'); console.log('read', r.length, performance.now() - t); }
  return 0;
}
