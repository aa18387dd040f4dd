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
 * valid staging record and describe every other line, or the truncation of the object itself, so nothing
 * is dropped without a reason.
 */
export async function salvageStagingObject(path: string, objectKey: string): Promise<SalvageResult> {
  const rejected: RejectedInput[] = [];
  const good: StagingLine[] = [];
  if ((await stat(path)).size === 0) {
    rejected.push({ reason: 'empty object (0 bytes, not gzip)', object_key: objectKey });
    return { good, rejected };
  }
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
      if (problem) rejected.push(lineRejected(problem, objectKey, { line: lineNo, text: line }));
      else good.push({ line: lineNo, text: line });
    }
  } catch (error) {
    if (!(error instanceof Error)) throw error;
    streamError = error;
  }
  if (streamError) {
    rejected.push({
      reason: `unreadable gzip after ${lineNo} complete lines: ${streamError.message}`,
      object_key: objectKey,
    });
  }
  return { good, rejected };
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
