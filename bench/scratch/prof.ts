import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
export async function main() {
  const dir = '/tmp/mksmall/staging/messages/tenant_id=bench/dt=2025-08-11';
  const files = (await readdir(dir)).map((f) => join(dir, f));
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  await c.run(`SET enable_profiling = 'json'`);
  await c.run(`SET profiling_output = '/tmp/prof.json'`);
  await c.run(`SET profiling_mode = 'detailed'`);
  await c.run(`COPY (SELECT message_id, row_number() over (partition by message_id order by source_seq) r FROM read_ndjson(${JSON.stringify(files).replaceAll('"', "'")}, compression='gzip')) TO '/tmp/x.parquet'`);
  const j = JSON.parse(await readFile('/tmp/prof.json', 'utf8'));
  const walk = (n: any, d = 0) => { console.log(' '.repeat(d), n.operator_type ?? n.query_name?.slice(0,20), n.operator_name, n.operator_timing, n.cpu_time, n.operator_cardinality, Object.keys(n).join(',')); for (const ch of n.children ?? []) walk(ch, d + 2); };
  walk(j);
  try { await c.run(`SELECT regexp_like('a','a')`); console.log('regexp_like ok'); } catch (e) { console.log(String(e)); }
  try { await c.run(`SELECT len('abc'), CAST(TIMESTAMP '2020-01-01' AS timestamp(3))`); console.log('len/ts3 ok'); } catch (e) { console.log(String(e)); }
  try { await c.run(`CREATE MACRO regexp_like(s, p) AS regexp_matches(s, p)`); console.log('macro regexp_like ok'); } catch (e) { console.log(String(e)); }
  return 0;
}
