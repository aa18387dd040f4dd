import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parquetWriteFile } from 'hyparquet-writer';
import { MESSAGE_COLUMNS, type StagedRecord } from '../src/core/schema/messageSchema.js';

export interface PeerResult {
  readonly rowsRead: number;
  readonly rowsWritten: number;
  readonly bytesWritten: number;
  readonly timings: Record<string, number>;
}

/** Newer version first: the same rule as LATEST_FIRST_SQL, written the way a hand-rolled Lambda would. */
function newer(a: StagedRecord, b: StagedRecord): boolean {
  if (a.source_seq.length !== b.source_seq.length) return a.source_seq.length > b.source_seq.length;
  if (a.source_seq !== b.source_seq) return a.source_seq > b.source_seq;
  return a.ingested_at < b.ingested_at;
}

/**
 * The baseline: what a typical Node.js Lambda does with the same tenant-day, with a pure-JavaScript
 * Parquet writer (hyparquet-writer): read each gzip NDJSON file, gunzip, JSON.parse every line, keep the
 * latest version per message in a Map, drop deletes, build the columns, write one snappy Parquet file.
 * Everything lives on the JS heap at once (the writer takes whole columns).
 */
export async function peerConvert(stagingDir: string, outFile: string): Promise<PeerResult> {
  const timings: Record<string, number> = {};
  let t = performance.now();
  const lap = (phase: string) => {
    const now = performance.now();
    timings[phase] = Math.round((timings[phase] ?? 0) + now - t);
    t = now;
  };
  const files = (await readdir(stagingDir)).filter((f) => f.endsWith('.ndjson.gz')).sort();
  lap('list');
  const latest = new Map<string, StagedRecord>();
  let rowsRead = 0;
  for (const file of files) {
    const compressed = await readFile(join(stagingDir, file));
    lap('read');
    const text = gunzipSync(compressed).toString('utf8');
    lap('decompress');
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const record = JSON.parse(line) as StagedRecord;
      rowsRead++;
      const seen = latest.get(record.message_id);
      if (seen === undefined || newer(record, seen)) latest.set(record.message_id, record);
    }
    lap('parse+dedup');
  }
  const rows = [...latest.values()].filter((r) => r.op !== 'delete');
  latest.clear();
  lap('parse+dedup');
  parquetWriteFile({
    filename: outFile,
    codec: 'SNAPPY',
    rowGroupSize: 122_880,
    columnData: MESSAGE_COLUMNS.map((c) => ({
      name: c.name,
      data: rows.map((r) => r[c.name as keyof StagedRecord] ?? null),
      type: c.parquet === 'TIMESTAMP_MS' ? ('TIMESTAMP' as const) : ('STRING' as const),
      nullable: c.nullable,
    })),
  });
  lap('write');
  return { rowsRead, rowsWritten: rows.length, bytesWritten: (await stat(outFile)).size, timings };
}
