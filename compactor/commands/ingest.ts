/**
 * `ingest`: a captured DynamoDB Streams event or a JSON array of Cosmos change-feed documents (or a
 * quarantine / poison batch, gzip as stored) into staging, through the cloud handlers' own code.
 *
 *   makoto-lake ingest --source dynamodb|cosmos FILE [--lease NAME] [--data-dir DIR] [--json]
 */
import { isUtf8 } from 'node:buffer';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { describeFailures, ingestBatch } from '../../src/capture/ingest/ingestBatch.js';
import { quarantineLines } from '../../src/capture/ingest/quarantineSummary.js';
import { cosmosDocumentChanges, dynamodbEventChanges } from '../../src/capture/ingest/sources.js';
import { stagedDays, stagedDaysLines } from '../../src/capture/ingest/stagedDays.js';
import type { Config } from '../../src/core/config.js';
import { errorMessage, UsageError } from '../../src/core/errors.js';
import { offboardedTenants } from '../../src/lake/offboarded.js';
import { table } from '../../src/ops/report.js';
import { createStore } from '../../stores/createStore.js';
import { chosenStore, type Out } from './args.js';

/**
 * The text of a replayed file: gzip (as written to quarantine/poison/) or plain, UTF-8 with or without a
 * byte order mark. Bytes that are not UTF-8 are refused, naming the line: decoding them would put U+FFFD in
 * place of what the record held, silently.
 */
export function replayText(bytes: Buffer): string {
  let plain = bytes;
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      plain = gunzipSync(bytes);
    } catch (error) {
      throw new Error(
        `not a complete gzip file (${(error as Error).message}: damaged, cut short, or followed by bytes that are not gzip)`,
      );
    }
  }
  if (!isUtf8(plain)) {
    let start = 0;
    for (let line = 1; ; line++) {
      const end = plain.indexOf(0x0a, start);
      const text = plain.subarray(start, end === -1 ? plain.length : end);
      if (!isUtf8(text)) throw new Error(`line ${line} is not valid UTF-8`);
      if (end === -1) break;
      start = end + 1;
    }
  }
  const text = plain.toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

export async function ingestCommand(args: readonly string[], loaded: Config, out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      source: { type: 'string' },
      json: { type: 'boolean' },
      lease: { type: 'string' },
      'data-dir': { type: 'string' },
    },
  });
  if (values.source !== 'dynamodb' && values.source !== 'cosmos') {
    throw new UsageError(`--source must be dynamodb or cosmos, got ${JSON.stringify(values.source ?? null)}`);
  }
  if (positionals.length !== 1) throw new UsageError('ingest takes exactly one FILE');
  if (values.lease !== undefined && values.source !== 'cosmos') throw new UsageError('--lease goes with --source cosmos');
  const file = positionals[0] as string;
  const config = chosenStore(loaded, values['data-dir'], `ingest replays ${values.source} changes from ${file}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(replayText(await readFile(file)));
  } catch (error) {
    throw new UsageError(`cannot read ${file} as JSON: ${(error as Error).message}; nothing was staged`, { cause: error });
  }
  // A poison batch holds its documents under `documents`, next to the reason it was set aside.
  const poison = (parsed as { documents?: unknown } | null)?.documents;
  if (values.source === 'cosmos' && !Array.isArray(parsed) && Array.isArray(poison)) parsed = poison;
  // Both sources name objects from the content (stream ARN + positions; a hash of the Cosmos batch); the
  // first build's `--lease NAME` is still accepted and only prefixes the Cosmos hash, so it cannot collide.
  const { changes, batchId } =
    values.source === 'dynamodb' ? dynamodbEventChanges(parsed) : cosmosDocumentChanges(parsed, values.lease);
  const store = await createStore(config);
  // records of an offboarded tenant are quarantined with the reason, as capture does (the list read once)
  const result = await ingestBatch(store, changes, {
    source: values.source,
    batchId,
    mapping: config.fieldMapping,
    refused: await offboardedTenants(store),
  });
  if (values.json) {
    out.stdout(
      JSON.stringify(
        {
          received: result.received,
          staged: result.staged,
          quarantined: result.quarantined,
          quarantine: result.quarantine,
          objects: result.written.map((w) => w.key),
          failed: result.failed.map((f) => ({ key: f.key, records: f.records, error: errorMessage(f.error) })),
        },
        null,
        2,
      ),
    );
  } else {
    out.stdout(
      table([
        ['received', 'staged', 'quarantined', 'objects', 'failed'],
        [result.received, result.staged, result.quarantined, result.written.length, result.failed.length],
      ]),
    );
  }
  for (const w of result.written) out.stderr(`wrote ${w.key} (${w.records} records)`);
  for (const line of stagedDaysLines(stagedDays(result.written.map((w) => w.key)))) out.stderr(line);
  for (const line of quarantineLines(result.quarantine)) out.stderr(line);
  if (result.failed.length > 0) out.stderr(`failed: ${describeFailures(result)}`);
  return result.failed.length > 0 || result.quarantined > 0 ? 1 : 0;
}
