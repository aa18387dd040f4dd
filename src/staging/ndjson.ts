import { gzipSync } from 'node:zlib';

/** Gzip NDJSON, the staging and quarantine format. */
export function gzipNdjson(lines: readonly unknown[]): Buffer {
  return gzipSync(lines.map((line) => `${JSON.stringify(line)}\n`).join(''));
}
