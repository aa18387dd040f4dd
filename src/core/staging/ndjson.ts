import { gzipSync } from 'node:zlib';

/** Gzip NDJSON, the staging and quarantine format. */
export function gzipNdjson(lines: readonly unknown[]): Buffer {
  return gzipSync(lines.map((line) => `${safeJson(line)}\n`).join(''));
}

/**
 * JSON text of a value that may be hostile (quarantine keeps raw input as it arrived): a value that cannot
 * be serialised (nested too deeply, a BigInt, a cycle) is replaced, a few levels down, by a description and
 * the start of its text, so writing the quarantine entry never fails because of the record it describes.
 */
export function safeJson(value: unknown, levels = 3): string {
  try {
    return JSON.stringify(value);
  } catch (error) {
    if (levels > 0 && typeof value === 'object' && value !== null && !Array.isArray(value)) {
      const entries = Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}:${safeJson(v, levels - 1)}`);
      return `{${entries.join(',')}}`;
    }
    return JSON.stringify({ unserialisable: (error as Error).message, type: Array.isArray(value) ? 'array' : typeof value });
  }
}
