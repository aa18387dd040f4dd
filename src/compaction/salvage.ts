import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { STAGING_COLUMNS } from '../schema/messageSchema.js';

/** A line or a whole object that compaction could not use, with the reason. */
export interface RejectedInput {
  readonly reason: string;
  readonly object_key: string;
  /** 1-based line number in the decompressed object, when the problem is one line. */
  readonly line?: number;
  readonly raw?: unknown;
}

export interface SalvageResult {
  readonly goodLines: number;
  readonly rejected: RejectedInput[];
}

const RAW_TEXT_LIMIT = 1024 * 1024;

/**
 * The slow path for a staging object DuckDB refused: read it line by line, keep every line that is a
 * valid staging record (written to `goodPath`, gzip NDJSON) and describe every other line, or the
 * truncation of the object itself, so nothing is dropped without a reason.
 */
export async function salvageStagingObject(path: string, objectKey: string, goodPath: string): Promise<SalvageResult> {
  const rejected: RejectedInput[] = [];
  const good: string[] = [];
  if ((await stat(path)).size === 0) {
    rejected.push({ reason: 'empty object (0 bytes, not gzip)', object_key: objectKey });
  } else {
    const gunzip = createGunzip();
    let streamError: Error | undefined;
    const source = createReadStream(path).pipe(gunzip);
    source.on('error', (error) => {
      streamError = error;
    });
    const lines = createInterface({ input: source, crlfDelay: Number.POSITIVE_INFINITY });
    let lineNo = 0;
    try {
      for await (const line of lines) {
        lineNo++;
        if (line.trim() === '') continue;
        const problem = stagingLineProblem(line);
        if (problem) {
          rejected.push({ reason: problem, object_key: objectKey, line: lineNo, raw: line.slice(0, RAW_TEXT_LIMIT) });
        } else good.push(line);
      }
    } catch (error) {
      streamError = error as Error;
    }
    if (streamError) {
      rejected.push({
        reason: `unreadable gzip after ${lineNo} complete lines: ${streamError.message}`,
        object_key: objectKey,
      });
    }
  }
  await pipeline(Readable.from(good.map((l) => `${l}\n`)), createGzip(), createWriteStream(goodPath));
  return { goodLines: good.length, rejected };
}

/** Why one staging line is unusable by type, or undefined. Value rules are checked in SQL afterwards. */
export function stagingLineProblem(line: string): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    return `malformed JSON: ${(error as Error).message}`;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return `a staging line must be a JSON object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`;
  }
  const record = value as Record<string, unknown>;
  for (const column of STAGING_COLUMNS) {
    const v = record[column.name];
    if (v === undefined || v === null) continue;
    if (column.staging === 'VARCHAR' && typeof v !== 'string') {
      return `field ${column.name} must be a string, got ${typeof v}`;
    }
    if (column.staging === 'BIGINT' && !(typeof v === 'number' && Number.isSafeInteger(v))) {
      return `field ${column.name} must be an integer, got ${JSON.stringify(v).slice(0, 40)}`;
    }
  }
  return undefined;
}
