import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { quoteLiteral } from '../../src/sql/quote.js';
import { listAll, type ObjectStore } from '../../src/store/ObjectStore.js';

/** A lake row as the tests compare it: timestamps as ISO strings, attributes parsed. */
export interface LakeRow {
  tenant_id: string;
  dt: string;
  message_id: string;
  conversation_id: string | null;
  sender_id: string | null;
  role: string | null;
  content: string | null;
  created_at: string;
  updated_at: string | null;
  source: string;
  source_seq: string;
  attributes: Record<string, unknown>;
}

/** Downloads every Parquet file under analytics/ and reads it back with DuckDB (hive partitions). */
export async function readLake(store: ObjectStore): Promise<LakeRow[]> {
  const keys = (await listAll(store, 'analytics/messages/')).map((o) => o.key);
  if (keys.length === 0) return [];
  const work = await mkdtemp(join(tmpdir(), 'makoto-lake-read-'));
  try {
    for (const key of keys) {
      await mkdir(dirname(join(work, key)), { recursive: true });
      await store.getToFile(key, join(work, key));
    }
    const db = await DuckDBInstance.create(':memory:', { threads: '1' });
    const c = await db.connect();
    try {
      const glob = quoteLiteral(join(work, 'analytics/messages/*/*/*.parquet'));
      const result = await c.runAndReadAll(`SELECT tenant_id, dt::VARCHAR AS dt, message_id, conversation_id, sender_id, role,
          content, strftime(created_at, '%Y-%m-%dT%H:%M:%S.%g') || 'Z' AS created_at,
          strftime(updated_at, '%Y-%m-%dT%H:%M:%S.%g') || 'Z' AS updated_at, source, source_seq, attributes
        FROM read_parquet(${glob}, hive_partitioning = true) ORDER BY tenant_id, dt, message_id`);
      return result.getRowObjectsJS().map((r) => ({
        ...(r as unknown as LakeRow),
        attributes: JSON.parse(r.attributes as string) as Record<string, unknown>,
      }));
    } finally {
      c.closeSync();
      db.closeSync();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
