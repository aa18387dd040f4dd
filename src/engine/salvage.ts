import { isUtf8 } from 'node:buffer';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32, createGzip, inflateRawSync, constants as zlibConstants } from 'node:zlib';
import { STAGING_COLUMNS } from '../core/schema/messageSchema.js';

/** A line or a whole object that compaction could not use, with the reason. */
export interface RejectedInput {
  readonly reason: string;
  readonly object_key: string;
  /** 1-based line number in the decompressed object, when the problem is one line. */
  readonly line?: number;
  readonly raw?: unknown;
}

/** A line of a staging object that passed the line check, with its 1-based line number. */
export interface StagingLine {
  readonly line: number;
  readonly text: string;
}

export interface SalvageResult {
  readonly good: StagingLine[];
  readonly rejected: RejectedInput[];
}

const RAW_TEXT_LIMIT = 1024 * 1024;

/**
 * The slow path for a staging object DuckDB refused: read it line by line, keep every line that is a
 * valid staging record and describe every other line (one that is not UTF-8, not JSON, of the wrong
 * types), the truncation of the object, or bytes after its gzip data, so nothing is dropped without a
 * reason. A byte order mark before the first line is read past, as DuckDB does. The object is read whole
 * (staging objects are one capture batch each).
 */
export async function salvageStagingObject(path: string, objectKey: string): Promise<SalvageResult> {
  const rejected: RejectedInput[] = [];
  const good: StagingLine[] = [];
  const bytes = await readFile(path);
  if (bytes.length === 0) {
    rejected.push({ reason: 'empty object (0 bytes, not gzip)', object_key: objectKey });
    return { good, rejected };
  }
  const { data, problem } = gunzipMembers(bytes);
  // after a gzip problem, the bytes after the last newline are a cut line: part of the unreadable tail
  const complete = problem?.unreadable ? data.subarray(0, data.lastIndexOf(0x0a) + 1) : data;
  let lineNo = 0;
  let start = 0;
  while (start < complete.length) {
    const newline = complete.indexOf(0x0a, start);
    const end = newline === -1 ? complete.length : newline;
    let raw = complete.subarray(start, end > start && complete[end - 1] === 0x0d ? end - 1 : end);
    start = end + 1;
    lineNo++;
    if (lineNo === 1 && raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf) raw = raw.subarray(3);
    if (!isUtf8(raw)) {
      const text = { line: lineNo, text: raw.toString('utf8') };
      rejected.push(lineRejected(`not valid UTF-8 (byte ${firstInvalidUtf8(raw) + 1} of the line)`, objectKey, text));
      continue;
    }
    const line = raw.toString('utf8');
    if (line.trim() === '') continue;
    const lineProblem = stagingLineProblem(line);
    if (lineProblem) rejected.push(lineRejected(lineProblem, objectKey, { line: lineNo, text: line }));
    else good.push({ line: lineNo, text: line });
  }
  if (problem?.unreadable) {
    rejected.push({ reason: `unreadable gzip after ${lineNo} complete lines: ${problem.message}`, object_key: objectKey });
  } else if (problem) {
    rejected.push({ reason: `${problem.message} (the ${lineNo} lines before them were read)`, object_key: objectKey });
  }
  return { good, rejected };
}

/** What is wrong with an object's gzip: data cut short or damaged (`unreadable`), or junk after it. */
interface GzipProblem {
  readonly message: string;
  readonly unreadable: boolean;
}

const GZIP_FLAGS = { HCRC: 2, EXTRA: 4, NAME: 8, COMMENT: 16 } as const;

/**
 * Decompresses every gzip member of `bytes` (RFC 1952), keeping the data of the members before a problem
 * (and what a damaged or cut member yields before it): bytes after the last member that are not gzip are
 * reported as such, not as an unreadable object.
 */
export function gunzipMembers(bytes: Buffer): { data: Buffer; problem?: GzipProblem } {
  const parts: Buffer[] = [];
  const done = (problem?: GzipProblem) => ({ data: Buffer.concat(parts), ...(problem ? { problem } : {}) });
  let at = 0;
  while (at < bytes.length) {
    if (bytes[at] !== 0x1f || bytes[at + 1] !== 0x8b) {
      if (at === 0) return done({ message: 'incorrect header check', unreadable: true });
      const n = bytes.length - at;
      return done({ message: `${n} byte${n === 1 ? '' : 's'} after the gzip data are not gzip`, unreadable: false });
    }
    if (bytes.length - at < 10) return done({ message: 'unexpected end of file', unreadable: true });
    if (bytes[at + 2] !== 8) return done({ message: 'unknown compression method', unreadable: true });
    const flags = bytes[at + 3] as number;
    let body = at + 10;
    if (flags & GZIP_FLAGS.EXTRA) body += 2 + (bytes.length >= body + 2 ? bytes.readUInt16LE(body) : 0);
    for (const flag of [GZIP_FLAGS.NAME, GZIP_FLAGS.COMMENT]) {
      if (flags & flag) body = bytes.indexOf(0, body) + 1 || bytes.length + 1;
    }
    if (flags & GZIP_FLAGS.HCRC) body += 2;
    if (body > bytes.length) return done({ message: 'unexpected end of file', unreadable: true });
    let inflated: { buffer: Buffer; engine: { bytesWritten: number } };
    try {
      inflated = inflateRawSync(bytes.subarray(body), {
        info: true,
        finishFlush: zlibConstants.Z_SYNC_FLUSH,
      }) as unknown as typeof inflated;
    } catch (error) {
      parts.push(inflatedBefore(bytes.subarray(body)));
      return done({ message: (error as Error).message, unreadable: true });
    }
    parts.push(inflated.buffer);
    const trailer = body + inflated.engine.bytesWritten;
    if (trailer + 8 > bytes.length) return done({ message: 'unexpected end of file', unreadable: true });
    if (bytes.readUInt32LE(trailer) !== crc32(inflated.buffer)) {
      return done({ message: 'incorrect data check', unreadable: true });
    }
    at = trailer + 8;
  }
  return done();
}

/**
 * What a damaged deflate stream yields before the damage (a synchronous inflate of all of it keeps none):
 * the output of its longest prefix that inflates, found by bisection.
 */
function inflatedBefore(deflated: Buffer): Buffer {
  const inflate = (n: number) => {
    try {
      return inflateRawSync(deflated.subarray(0, n), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    } catch {
      return undefined;
    }
  };
  let low = 0;
  let high = deflated.length;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (inflate(mid) === undefined) high = mid - 1;
    else low = mid;
  }
  return inflate(low) ?? Buffer.alloc(0);
}

/** Index of the first byte of `bytes` that does not start a UTF-8 character (-1: none). */
function firstInvalidUtf8(bytes: Buffer): number {
  let i = 0;
  while (i < bytes.length) {
    const c = bytes[i] as number;
    const n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    // isUtf8 of the one character also refuses overlong forms, surrogates and cut sequences
    if (n === 0 || !isUtf8(bytes.subarray(i, i + n))) return i;
    i += n;
  }
  return -1;
}

/** Writes lines as a gzip NDJSON file (the repaired copy of a staging object). */
export async function writeStagingLines(path: string, lines: readonly StagingLine[]): Promise<void> {
  await pipeline(Readable.from(lines.map((l) => `${l.text}\n`)), createGzip(), createWriteStream(path));
}

/**
 * Lines that pass the JS line check but that DuckDB still refuses (a duplicate key, an escaped lone
 * surrogate, anything else its reader rejects), found by bisection: `probe` asks DuckDB to read a set of
 * lines and returns its error message, or undefined when it reads them. k refused lines among n cost about
 * 2·k·log2(n) probes; a clean set costs one.
 */
export async function findRefusedLines(
  lines: readonly StagingLine[],
  objectKey: string,
  probe: (lines: readonly StagingLine[]) => Promise<string | undefined>,
): Promise<RejectedInput[]> {
  if (lines.length === 0) return [];
  const refusal = await probe(lines);
  if (refusal === undefined) return [];
  if (lines.length === 1) {
    return [lineRejected(`DuckDB refused the line: ${refusal}`, objectKey, lines[0] as StagingLine)];
  }
  const half = Math.ceil(lines.length / 2);
  return [
    ...(await findRefusedLines(lines.slice(0, half), objectKey, probe)),
    ...(await findRefusedLines(lines.slice(half), objectKey, probe)),
  ];
}

const lineRejected = (reason: string, objectKey: string, line: StagingLine): RejectedInput => ({
  reason,
  object_key: objectKey,
  line: line.line,
  raw: line.text.slice(0, RAW_TEXT_LIMIT),
});

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
