/**
 * `makoto-lake`: the command line. Thin: parse arguments, build the store from config, call src/.
 *
 *   makoto-lake compact [DATE] [TENANTS] [--all-tenants] [--late] [--allow-empty] [--json]
  makoto-lake compact --today [TENANTS] [--all-tenants] [--json]
 *   makoto-lake ingest --source dynamodb|cosmos FILE [--lease NAME] [--data-dir DIR] [--json]
 *   makoto-lake redrive --source dynamodb [FILE | --queue-url URL] [--max-messages N] [--data-dir DIR] [--json]
 *   makoto-lake demo [--date DATE] [--tenants a,b,c] [--messages N]
 *   makoto-lake sql --target athena|synapse [--out DIR]
 *   makoto-lake backfill --source cosmos|dynamodb DATE [TENANTS] [--restart] [--data-dir DIR] [--json]
 *   makoto-lake backfill --source dynamodb [DATE] [TENANTS] --from-export PREFIX [--data-dir DIR] [--json]
 *   makoto-lake status [DATE | --days N] [TENANTS] [--all-tenants] [--json]
 *
 * Exit codes: 0 success, 1 some tenant or record failed (the rest completed), 2 usage error (also: ingest,
 * redrive or backfill with no store chosen, which would fill ./data with a cloud source's records),
 * 3 a partition was locked by another run (none failed), 4 `compact` found no staging for the day,
 * 5 `status` found something that needs attention,
 * 130 / 143 compact stopped by SIGINT / SIGTERM (no new partition started, running ones stopped before
 * their next write, leases released, work folder removed). A closed stdout or stderr (EPIPE, `compact … | head -2`,
 * `compact … 2>&1 | head`) stops that output only: the work goes on and the exit status is the work's.
 */

import { isUtf8 } from 'node:buffer';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { progressLine, summaryJson, summaryTable, table } from '../src/app/report.js';
import { runCompaction } from '../src/app/runCompaction.js';
import { lakeStatus, statusDates, statusTable } from '../src/app/status.js';
import { DynamoExportReader } from '../src/backfill/DynamoExportReader.js';
import {
  type BackfillProgress,
  isStreamingReader,
  runBackfill,
  runExportBackfill,
  type TenantBackfillResult,
} from '../src/backfill/runBackfill.js';
import type { RunSummary } from '../src/compaction/compactTenants.js';
import { resultFailed } from '../src/compaction/resultFailed.js';
import { type Config, cloudStoreSetting, type Env, isStoreChosen, loadConfig, parseTenantList } from '../src/config.js';
import { runDemo } from '../src/demo/runDemo.js';
import { offboardedTenants } from '../src/erase/offboard.js';
import { ConfigError, errorMessage, RunAbortedError, UsageError } from '../src/errors.js';
import { describeFailures, ingestBatch } from '../src/ingest/ingestBatch.js';
import { quarantineLines } from '../src/ingest/quarantineSummary.js';
import { cosmosDocumentChanges, dynamodbEventChanges } from '../src/ingest/sources.js';
import { stagedDays, stagedDaysLines } from '../src/ingest/stagedDays.js';
import type { FailureMessageSource } from '../src/ports/FailureMessageSource.js';
import type { SourceReader } from '../src/ports/SourceReader.js';
import { failureMessagesFromText } from '../src/redrive/fileMessages.js';
import { ListedFailureMessages, runRedrive } from '../src/redrive/runRedrive.js';
import { writeSqlFiles } from '../src/sqlgen/generateSql.js';
import { SQL_TARGETS, type SqlTarget } from '../src/sqlgen/placeholders.js';
import { renderSql } from '../src/sqlgen/renderSql.js';
import type { ObjectStore } from '../src/store/ObjectStore.js';
import { parseDate, targetDate } from '../src/time/jst.js';
import { createStore } from '../stores/createStore.js';
import { eraseCommand, offboardCommand } from './commands/erase.js';
import { convertCommand, exportCommand, parseAsOf, vacuumCommand } from './commands/table.js';

const USAGE = `usage:
  makoto-lake compact [DATE] [TENANTS] [--all-tenants] [--late] [--allow-empty] [--json]
      Compact one JST day (default: today in JST + TARGET_DATE_OFFSET) for TENANTS
      (comma list; default TENANT_ID, '*' or --all-tenants = every tenant in staging).
      --late also compacts every partition of TENANTS whose staging or analytics folder differs
      from its manifest, at any age (LATE_DATA_LOOKBACK_DAYS, default 0 = no bound, may limit
      the days checked): what the nightly Lambda / daily_batch always do.
      Exit 130/143 when stopped by SIGINT/SIGTERM (leases released, work folder removed).
      A named tenant with no staging for DATE (or no tenant at all with --all-tenants) exits 4,
      as capture may be broken; --allow-empty accepts an empty day (exit 0).
  makoto-lake compact --today [TENANTS] [--all-tenants] [--json]
      Intraday: today's JST partitions (and yesterday's before the 02:00 JST run closes it) of
      TENANTS that gained staging since their last commit; nothing new exits 0.
  makoto-lake ingest --source dynamodb|cosmos FILE [--lease NAME] [--data-dir DIR] [--json]
      Push a captured DynamoDB Streams event ({"Records":[...]}) or a JSON array of Cosmos
      change-feed documents (or a quarantine/poison batch, .json.gz as stored) into staging,
      through the same code as the cloud handlers.
      Exits 1 when a record was quarantined (counts per reason on stderr).
  makoto-lake redrive --source dynamodb [FILE | --queue-url URL] [--max-messages N] [--data-dir DIR] [--json]
      Re-read the records of failed stream batches (the on-failure messages in FILE, or in the
      SQS queue URL / STREAM_FAILURE_QUEUE_URL) from DynamoDB Streams and stage them under the
      Lambda's own object names. A queue message is deleted only after its records are staged.
      Within 24 hours of the failure; after that, backfill.
  makoto-lake demo [--date DATE] [--tenants a,b,c] [--messages N]
      Generate a day of chat for three tenants, ingest, compact and show what the lake holds.
  makoto-lake sql --target athena|synapse [--out DIR]
      Print (or write to DIR) the Athena / Synapse DDL with \${S3_BUCKET_NAME} or
      \${AZURE_STORAGE_ACCOUNT}/\${AZURE_STORAGE_CONTAINER} filled in from the environment (docs/SQL.md).
  makoto-lake backfill --source cosmos|dynamodb DATE [TENANTS] [--from-export PREFIX] [--restart] [--data-dir DIR] [--json]
      Re-read a JST day's messages per tenant straight from the source (cosmos: COSMOS_ENDPOINT,
      COSMOS_KEY, COSMOS_DATABASE, COSMOS_CONTAINER; dynamodb: DYNAMODB_TABLE_NAME, at most
      DYNAMODB_BACKFILL_MAX_RCU read units a second, resumable; or --from-export PREFIX, a DynamoDB
      export to S3 in the configured store) into staging, when staging was lost or capture started
      late; then run compact. Captured versions always win over backfilled ones. --restart ignores
      the checkpoint of an interrupted run. An export is streamed in one pass; without DATE it
      stages every day it holds (makoto-lake backfill --source dynamodb t1,t2 --from-export PREFIX);
      from an export, TENANTS (or TENANT_ID) may be '*': every tenant it holds.
  ingest, redrive and backfill write where S3_BUCKET_NAME / AZURE_STORAGE_CONNECTION_STRING /
  AZURE_STORAGE_ACCOUNT_URL point; without one of them they need --data-dir DIR (or DATA_DIR) and
  refuse (exit 2) rather than fill ./data with the cloud source's records.
  makoto-lake status [DATE] [--days N] [TENANTS] [--all-tenants] [--as-of VERSION|TIMESTAMP] [--json]
      Per tenant-day (DATE as for compact; --days N = the N days ending at DATE): staging objects
      and bytes, whether the manifest covers them, rows, last run, stale or missing parts,
      quarantined records, and what needs attention: staging not compacted 2 hours after its
      02:00 JST run, a folder that differs from its manifest, quarantine not yet reviewed
      (deleted or moved away). Exits 5 when anything needs attention.

  makoto-lake vacuum [--retain HOURS] [--dry-run] [--json]
      Delete the files no table version inside the retention references (default 168 hours,
      Delta's 7 days): replaced parts, runs' manifests and remembered deletes, crashed runs'
      uploads, abandoned split work, foreign files. The nightly run vacuums too.
  makoto-lake convert
      Make a lake written by the previous release (folders + manifests) version 0 of the Delta
      table, in place, without rewriting data (the first compaction does it too; idempotent).
  makoto-lake export DIR [--as-of VERSION|TIMESTAMP] [--tenants a,b]
      Download the files of the table's current version (or an older one, within the retention)
      into DIR as tenant_id=<t>/dt=<d>/*.parquet, for any Parquet reader.
  makoto-lake erase --tenant T (--sender ID | --conversation ID | --message ID)... [--ids-file FILE] [--dry-run] [--json]
      Remove the matching records from every object the lake keeps (table, staging, quarantine,
      remembered deletes, split work, reports, old table versions) and write a receipt under
      erasures/ (identifiers as salted hashes) with a verification scan; --dry-run counts only.
      erase --verify RECEIPT scans again. Exit 0 done and verified, 1 something left (named).
  makoto-lake offboard --tenant T [--dry-run] [--json] | --reenable
      Remove every object of tenant T and refuse (quarantine) its new records until --reenable.

Storage: S3_BUCKET_NAME (S3), AZURE_STORAGE_CONNECTION_STRING (Blob), else DATA_DIR (default ./data).
Exit codes: 0 success; 1 some tenant or record failed (the others completed); 2 usage error (or no
  store chosen for ingest, redrive, backfill);
  3 a partition is locked by another run (none failed; run again later); 4 no staging to compact;
  5 status: something needs attention.`;

/** The CLI's exit codes; a failure outranks a lock, a lock outranks an empty day. */
export const EXIT = { ok: 0, failed: 1, usage: 2, locked: 3, empty: 4, attention: 5 } as const;

type Out = { stdout: (text: string) => void; stderr: (text: string) => void };

let stdoutClosed = false;
let stderrClosed = false;
const defaultOut: Out = {
  stdout: (t) => {
    if (!stdoutClosed) process.stdout.write(`${t}\n`);
  },
  stderr: (t) => {
    if (!stderrClosed) process.stderr.write(`${t}\n`);
  },
};

/**
 * A reader that goes away (`| head -2`, `2>&1 | head`) makes writes to stdout or stderr fail with EPIPE,
 * asynchronously. Unhandled, that error ends the process mid-run (leases held, work folder left, tenants
 * not compacted); here it only stops that stream's output and the exit status stays the work's. A closed
 * stdout is told on stderr while stderr is open. A closed stderr is told nowhere: stdout holds only the
 * summary (or `--json`), and the exit status says how the work went. Any other error writing stdout (the
 * summary lost: ENOSPC, EIO) makes the exit status 1; on stderr (progress lines lost) it does not.
 */
let outputGuarded = false;
let stdoutFailed = false;
function guardOutput(): void {
  if (outputGuarded) return;
  outputGuarded = true;
  const note = (text: string) => {
    if (!stderrClosed) process.stderr.write(`${text}\n`);
  };
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (stdoutClosed) return;
    stdoutClosed = true;
    if (error.code === 'EPIPE') {
      note('makoto-lake: stdout was closed by its reader (EPIPE); output stopped, the work goes on');
    } else {
      note(`makoto-lake: cannot write to stdout: ${error.message}`);
      stdoutFailed = true;
      process.exitCode = EXIT.failed;
    }
  });
  process.stderr.on('error', () => {
    stderrClosed = true;
  });
}

/** Runs the CLI; returns the exit code. */
export async function main(
  argv: readonly string[],
  env: Env,
  out: Out = defaultOut,
  now: () => number = Date.now,
): Promise<number> {
  if (out !== defaultOut) return await run(argv, env, out, now);
  guardOutput();
  const code = await run(argv, env, out, now);
  // stdout failed before the end (its error event came while the work ran): the summary is lost
  return stdoutFailed && code === EXIT.ok ? EXIT.failed : code;
}

async function run(argv: readonly string[], env: Env, out: Out, now: () => number): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'compact':
        return await compact(rest, loadConfig(env), out);
      case 'ingest':
        return await ingest(rest, loadConfig(env), out);
      case 'demo':
        return await demo(rest, loadConfig(env), out);
      case 'sql':
        return await sql(rest, loadConfig(env), out);
      case 'backfill':
        return await backfill(rest, loadConfig(env), out);
      case 'redrive':
        return await redrive(rest, loadConfig(env), out);
      case 'status':
        return await status(rest, loadConfig(env), out, now());
      case 'vacuum':
        return await vacuumCommand(rest, loadConfig(env), out);
      case 'convert':
        return await convertCommand(rest, loadConfig(env), out);
      case 'export':
        return await exportCommand(rest, loadConfig(env), out);
      case 'erase':
        return await eraseCommand(rest, loadConfig(env), out);
      case 'offboard':
        return await offboardCommand(rest, loadConfig(env), out);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        out.stdout(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (error) {
    if (error instanceof NoStoreChosenError) {
      out.stderr(`makoto-lake: ${error.message}`);
      return EXIT.usage;
    }
    if (error instanceof UsageError || error instanceof ConfigError) {
      out.stderr(`makoto-lake: ${error.message}\n\n${USAGE}`);
      return 2;
    }
    if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      out.stderr(`makoto-lake: ${(error as Error).message}\n\n${USAGE}`);
      return 2;
    }
    out.stderr(`makoto-lake: ${errorMessage(error)}`);
    return 1;
  }
}

/** A command that reads a cloud source was given no store: refused before anything is read (exit 2, no usage text). */
class NoStoreChosenError extends UsageError {}

/**
 * The config a command reading a cloud source writes with: `--data-dir DIR` chooses the local store (and
 * may not be combined with a cloud store setting); without it the store must have been chosen (a cloud
 * setting, or DATA_DIR). Otherwise the records would land in ./data of the operator's working directory,
 * where no compaction of the lake looks, and the command would report success.
 */
function chosenStore(config: Config, dataDir: string | undefined, reads: string): Config {
  const cloud = cloudStoreSetting(config);
  if (dataDir !== undefined) {
    if (dataDir.trim() === '') throw new UsageError('--data-dir needs a directory');
    if (cloud !== undefined)
      throw new UsageError(`--data-dir names a local store, but ${cloud} selects the cloud store: give one`);
    return { ...config, dataDir: resolve(dataDir), dataDirGiven: true };
  }
  if (isStoreChosen(config)) return config;
  throw new NoStoreChosenError(
    `${reads}, but no store is set: export S3_BUCKET_NAME (S3) or AZURE_STORAGE_CONNECTION_STRING / ` +
      'AZURE_STORAGE_ACCOUNT_URL (Blob) to write to the lake, or give --data-dir DIR (or DATA_DIR) to write to a local ' +
      `folder; refusing to fill ${config.dataDir} (nothing was read or written)`,
  );
}

/** TENANTS, or --all-tenants ('all'), or the config's TENANT_ID list; giving both is a usage error. */
function selectedTenants(allTenants: boolean, tenantsArg: string | undefined, config: Config): readonly string[] | 'all' {
  if (allTenants && tenantsArg !== undefined) throw new UsageError('give TENANTS or --all-tenants, not both');
  if (allTenants) return 'all';
  return tenantsArg === undefined ? config.tenants : parseTenantList(tenantsArg, 'TENANTS');
}

async function compact(args: readonly string[], config: Config, out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      'all-tenants': { type: 'boolean' },
      json: { type: 'boolean' },
      late: { type: 'boolean' },
      'allow-empty': { type: 'boolean' },
      today: { type: 'boolean' },
    },
  });
  if (positionals.length > 2) throw new UsageError(`compact takes at most DATE and TENANTS, got ${positionals.length} arguments`);
  const today = values.today === true;
  // --today: today's (and before 02:00 JST yesterday's) partitions that gained staging; TENANTS is then the only positional
  const [dateArg, tenantsArg] = today ? [undefined, ...positionals] : positionals;
  if (today && (positionals.length > 1 || values.late)) throw new UsageError('compact --today takes no DATE and no --late');
  const date = dateArg === undefined ? targetDate(Date.now(), today ? 0 : config.targetDateOffset) : parseDate(dateArg, 'DATE');
  const tenants = selectedTenants(values['all-tenants'] === true, tenantsArg, config);
  const store = await createStore(config);
  out.stderr(`compacting ${date} for ${tenants === 'all' ? 'every tenant in staging' : tenants.join(', ')} in ${store.location}`);
  const stop = new AbortController();
  const stopped = stopOnSignals(stop, out);
  try {
    const summary = await runCompaction({
      store,
      config,
      date,
      tenants,
      late: values.late === true,
      intraday: today,
      onResult: (r) => out.stderr(progressLine(r)),
      signal: stop.signal,
    });
    if (values.json) out.stdout(JSON.stringify(summaryJson(summary), null, 2));
    else out.stdout(summaryTable(summary));
    const signal = stopped.signal();
    if (signal) {
      const count = (status: string) => summary.results.filter((r) => r.status === status).length;
      out.stderr(
        `makoto-lake: stopped by ${signal}: ${count('compacted')} compacted, ${summary.results.filter(resultFailed).length} failed or not started; leases released, work folder removed`,
      );
      return SIGNAL_EXIT[signal];
    }
    // an intraday run with nothing new to fold in is the normal case, not a sign of broken capture
    return compactExitCode(summary, date, values['allow-empty'] === true || today, out);
  } finally {
    stopped.dispose();
  }
}

const SIGNAL_EXIT = { SIGINT: 130, SIGTERM: 143 } as const;
type StopSignal = keyof typeof SIGNAL_EXIT;

/**
 * SIGINT/SIGTERM abort the run's signal: no partition starts, running ones stop before their next write and
 * release their leases, then the summary and a message are printed and the exit status is 128 + signal.
 * A second signal exits at once (its leases are taken over at once by the next run on this host).
 */
function stopOnSignals(controller: AbortController, out: Out): { signal: () => StopSignal | undefined; dispose: () => void } {
  let received: StopSignal | undefined;
  const handlers = (Object.keys(SIGNAL_EXIT) as StopSignal[]).map((name) => {
    const handler = () => {
      if (received) {
        out.stderr(`makoto-lake: ${name} again: exiting now`);
        process.exit(SIGNAL_EXIT[name]);
      }
      received = name;
      out.stderr(`makoto-lake: ${name} received: stopping (no new partition starts; running ones stop and release their leases)`);
      controller.abort(new RunAbortedError(`the run was stopped by ${name}`, { context: { signal: name } }));
    };
    process.on(name, handler);
    return [name, handler] as const;
  });
  return {
    signal: () => received,
    dispose: () => {
      for (const [name, handler] of handlers) process.off(name, handler);
    },
  };
}

/** Failed → 1, locked → 3, and a day with nothing to compact → 4 (saying which tenants) unless allowed. */
function compactExitCode(summary: RunSummary, date: string, allowEmpty: boolean, out: Out): number {
  if (summary.results.some((r) => r.status === 'failed')) return EXIT.failed;
  if (summary.results.some((r) => r.status === 'locked')) return EXIT.locked;
  const empty = summary.results.filter((r) => r.status === 'no-input' && r.date === date).map((r) => r.tenant);
  if (summary.results.length === 0) out.stderr(`makoto-lake: no tenant has staging objects for ${date}`);
  else if (empty.length > 0) out.stderr(`makoto-lake: no staging objects for ${empty.join(', ')} on ${date}`);
  if (allowEmpty || (summary.results.length > 0 && empty.length === 0)) return EXIT.ok;
  out.stderr('(capture may be broken; --allow-empty accepts an empty day)');
  return EXIT.empty;
}

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

async function ingest(args: readonly string[], loaded: Config, out: Out): Promise<number> {
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

async function redrive(args: readonly string[], loaded: Config, out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      source: { type: 'string' },
      'queue-url': { type: 'string' },
      'max-messages': { type: 'string' },
      'data-dir': { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (values.source !== 'dynamodb') {
    throw new UsageError(`redrive --source must be dynamodb, got ${JSON.stringify(values.source ?? null)}`);
  }
  if (positionals.length > 1) throw new UsageError('redrive takes at most one FILE');
  const file = positionals[0];
  const queueUrl = values['queue-url'] ?? (file === undefined ? loaded.aws.failureQueueUrl : undefined);
  if (file !== undefined && values['queue-url'] !== undefined) throw new UsageError('give FILE or --queue-url, not both');
  if (file === undefined && queueUrl === undefined) {
    throw new UsageError('redrive needs FILE (on-failure message bodies) or --queue-url URL (or STREAM_FAILURE_QUEUE_URL)');
  }
  const maxText = values['max-messages'];
  const maxMessages = maxText === undefined ? undefined : Number(maxText);
  if (maxMessages !== undefined && (!Number.isInteger(maxMessages) || maxMessages < 1)) {
    throw new UsageError(`--max-messages must be a positive integer, got ${JSON.stringify(maxText)}`);
  }
  // before the first message is received: nothing may be taken from the queue for an implicit ./data
  const config = chosenStore(loaded, values['data-dir'], 'redrive stages records it reads from DynamoDB Streams');
  const messages = file !== undefined ? await fileMessages(file) : await sqsMessages(queueUrl as string, config);
  const { DynamoStreamBatchReader } = await import('../stores/dynamodb/DynamoStreamBatchReader.js');
  const reader = new DynamoStreamBatchReader({ region: config.aws.region, endpoint: config.aws.dynamodbEndpoint });
  const store = await createStore(config);
  out.stderr(`redriving failed stream batches from ${messages.location} into ${store.location}`);
  const summary = await runRedrive({
    store,
    reader,
    messages,
    maxMessages,
    mapping: config.fieldMapping,
    refused: await offboardedTenants(store),
    ...(config.aws.bucket ? { exportBucket: config.aws.bucket } : {}),
    onResult: (r) =>
      out.stderr(
        r.status === 'staged'
          ? `✓ ${r.batch}: ${r.received} records → staged ${r.staged}, quarantined ${r.quarantined}${r.acknowledged && file === undefined ? ' (message deleted)' : ''}`
          : `✗ ${r.batch || r.message} ${r.status}: ${r.error}`,
      ),
  });
  if (values.json) out.stdout(JSON.stringify(summary, null, 2));
  else {
    out.stdout(
      table([
        ['batch', 'status', 'records', 'staged', 'quarantined', 'objects'],
        ...summary.results.map((r) => [r.batch || r.message, r.status, r.received, r.staged, r.quarantined, r.objects.length]),
      ]),
    );
  }
  for (const line of stagedDaysLines(summary.days)) out.stderr(line);
  for (const line of quarantineLines(summary.quarantine)) out.stderr(line);
  if (summary.messages === 0) out.stderr(`no on-failure messages in ${messages.location}`);
  return summary.ok ? 0 : 1;
}

async function fileMessages(file: string): Promise<FailureMessageSource> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  return new ListedFailureMessages(file, failureMessagesFromText(text, file));
}

async function sqsMessages(queueUrl: string, config: Config): Promise<FailureMessageSource> {
  const { SQSClient } = await import('@aws-sdk/client-sqs');
  const { SqsFailureQueue } = await import('../stores/sqs/SqsFailureQueue.js');
  return new SqsFailureQueue(new SQSClient({ region: config.aws.region, endpoint: config.aws.sqsEndpoint }), queueUrl);
}

async function demo(args: readonly string[], config: Config, out: Out): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: { date: { type: 'string' }, tenants: { type: 'string' }, messages: { type: 'string' } },
  });
  const date = values.date === undefined ? targetDate(Date.now(), config.targetDateOffset) : parseDate(values.date, '--date');
  const tenantList = parseTenantList(values.tenants ?? 'sakura-shop,fuji-bank,default_tenant', '--tenants');
  if (tenantList === 'all') throw new UsageError('--tenants needs tenant ids, not *');
  const messages = Number(values.messages ?? '200');
  if (!Number.isInteger(messages) || messages < 2 || messages > 1_000_000) {
    throw new UsageError(`--messages must be an integer from 2 to 1000000, got ${JSON.stringify(values.messages)}`);
  }
  const store = await createStore(config);
  out.stderr(`demo: ${messages} messages for each of ${tenantList.join(', ')} on ${date} (JST) in ${store.location}`);
  const result = await runDemo({ store, config, date, tenants: tenantList, messagesPerTenant: messages });
  const i = result.ingest;
  out.stdout(
    `ingested ${i.records} stream records in ${i.batches} batches → ${i.staged} staged in ${i.objects} objects, ${i.quarantined} quarantined\n`,
  );
  out.stdout(summaryTable(result.summary));
  if (result.perTenant.length > 0) {
    out.stdout('\nread back from Parquet with DuckDB:');
    out.stdout(rowsTable(result.perTenant));
    out.stdout('');
    out.stdout(rowsTable(result.sample));
  }
  return result.summary.ok ? 0 : 1;
}

async function backfill(args: readonly string[], loaded: Config, out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      source: { type: 'string' },
      json: { type: 'boolean' },
      'from-export': { type: 'string' },
      restart: { type: 'boolean' },
      'data-dir': { type: 'string' },
    },
  });
  // From an export, DATE is optional (every day the export holds): a first positional that is no date is TENANTS.
  const fromExport = values['from-export'] !== undefined;
  const dated = !fromExport || /^\d{4}-\d{2}-\d{2}$/.test(positionals[0] ?? '');
  if (fromExport && !dated && positionals.length > 1) throw new UsageError('backfill takes [DATE] and optional TENANTS');
  if (dated && (positionals.length < 1 || positionals.length > 2))
    throw new UsageError('backfill takes DATE and optional TENANTS');
  const date = dated ? parseDate(positionals[0] as string, 'DATE') : undefined;
  const tenantArg = dated ? positionals[1] : positionals[0];
  const tenants = tenantArg === undefined ? loaded.tenants : parseTenantList(tenantArg, 'TENANTS');
  // A table or container is read per tenant; an export is read whole anyway, so it can stage every tenant.
  if (tenants === 'all' && !fromExport) {
    throw new UsageError('backfill needs tenant ids (TENANTS or TENANT_ID), not * (every tenant: only with --from-export)');
  }
  if (values.source !== 'cosmos' && values.source !== 'dynamodb') {
    throw new UsageError(`backfill --source must be cosmos or dynamodb, got ${JSON.stringify(values.source ?? null)}`);
  }
  if (fromExport && values.source !== 'dynamodb') throw new UsageError('--from-export needs --source dynamodb');
  const config = chosenStore(
    loaded,
    values['data-dir'],
    `backfill stages what it reads from ${backfillSourceName(values.source, values['from-export'], loaded)}`,
  );
  const store = await createStore(config);
  const reader = await sourceReader(values.source, values['from-export'], config, store);
  out.stderr(
    `backfilling ${date ?? 'every day'} for ${tenants === 'all' ? 'every tenant' : tenants.join(', ')} from ${reader.location} into ${store.location}`,
  );
  const options = {
    store,
    mapping: config.fieldMapping,
    refused: await offboardedTenants(store),
    concurrency: config.compaction.concurrency,
    onProgress: (p: BackfillProgress) =>
      out.stderr(
        `… ${p.tenant} ${p.date}: read ${p.read}, matched ${p.matched}, staged ${p.staged}${noTenantNote(p.noTenant)}${p.consumedCapacity > 0 ? `, ${p.consumedCapacity} RCU` : ''}`,
      ),
    onResult: (r: TenantBackfillResult) =>
      out.stderr(
        r.status === 'ok'
          ? `✓ ${r.tenant} ${r.date} read ${r.read}, matched ${r.matched} → staged ${r.staged} in ${r.objects.length} objects, ${r.quarantined} quarantined${r.noTenant > 0 ? ` (${r.noTenant} matched no tenant)` : ''}, ${r.outside} outside the day${r.resumedAfterObject === undefined ? '' : ` (resumed after object ${r.resumedAfterObject})`}`
          : `✗ ${r.tenant} ${r.date} failed: ${r.error} (run the same command again to resume)`,
      ),
  };
  // An export is read in one streamed pass for every tenant-day; a table or container per tenant-day.
  const summary = isStreamingReader(reader)
    ? await runExportBackfill({ ...options, tenants, reader, date })
    : await runBackfill({
        ...options,
        tenants: tenants as readonly string[],
        reader,
        date: date as string,
        restart: values.restart === true,
      });
  if (values.json) out.stdout(JSON.stringify(summary, null, 2));
  else {
    out.stdout(
      table([
        ['tenant', 'dt', 'status', 'read', 'matched', 'staged', 'quarantined', 'no tenant', 'outside', 'objects', 'replaced'],
        ...summary.results.map((r) => [
          r.tenant,
          r.date,
          r.status,
          r.read,
          r.matched,
          r.staged,
          r.quarantined,
          r.noTenant,
          r.outside,
          r.objects.length,
          r.removed,
        ]),
      ]),
    );
  }
  for (const line of stagedDaysLines(summary.days)) out.stderr(line);
  for (const line of quarantineLines(summary.quarantine)) out.stderr(line);
  return summary.ok && summary.quarantined === 0 ? 0 : 1;
}

/** What a backfill reads, for the refusal without a store. */
function backfillSourceName(source: string | undefined, fromExport: string | undefined, config: Config): string {
  if (fromExport !== undefined) return `the DynamoDB export ${fromExport}`;
  if (source === 'cosmos') return `the Cosmos DB container ${config.azure.cosmosContainer}`;
  if (source === 'dynamodb') return `the DynamoDB table ${config.aws.tableName ?? '(DYNAMODB_TABLE_NAME)'}`;
  return 'a cloud source';
}

/** `, N matched no tenant (quarantined)` when a backfill read such items (only the first tenant's pass does). */
function noTenantNote(count: number): string {
  return count > 0 ? `, ${count} matched no tenant (quarantined)` : '';
}

/** The backfill source named by --source, built from config (the SDK is imported only when chosen). */
async function sourceReader(
  source: string | undefined,
  fromExport: string | undefined,
  config: Config,
  store: ObjectStore,
): Promise<SourceReader> {
  if (fromExport !== undefined && source !== 'dynamodb') throw new UsageError('--from-export needs --source dynamodb');
  if (source === 'cosmos') {
    const { cosmosEndpoint, cosmosKey, cosmosDatabase, cosmosContainer } = config.azure;
    if (!cosmosEndpoint)
      throw new ConfigError('backfill --source cosmos needs COSMOS_ENDPOINT (and COSMOS_KEY or an Azure identity)');
    const { CosmosSourceReader } = await import('../stores/cosmos/CosmosSourceReader.js');
    return new CosmosSourceReader(
      { endpoint: cosmosEndpoint, key: cosmosKey, database: cosmosDatabase, container: cosmosContainer },
      { mapping: config.fieldMapping },
    );
  }
  if (source === 'dynamodb') {
    if (fromExport !== undefined) {
      if (fromExport.trim() === '') throw new UsageError('--from-export needs the export PREFIX in the store');
      return new DynamoExportReader(store, fromExport, { mapping: config.fieldMapping });
    }
    if (!config.aws.tableName)
      throw new ConfigError('backfill --source dynamodb needs DYNAMODB_TABLE_NAME (or --from-export PREFIX)');
    const { DynamoTableReader } = await import('../stores/dynamodb/DynamoTableReader.js');
    return new DynamoTableReader({
      table: config.aws.tableName,
      region: config.aws.region,
      endpoint: config.aws.dynamodbEndpoint,
      mapping: config.fieldMapping,
      maxRcu: config.aws.backfillMaxRcu,
    });
  }
  throw new UsageError(`backfill --source must be cosmos or dynamodb, got ${JSON.stringify(source ?? null)}`);
}

async function sql(args: readonly string[], config: Config, out: Out): Promise<number> {
  const { values } = parseArgs({ args: [...args], options: { target: { type: 'string' }, out: { type: 'string' } } });
  if (!(SQL_TARGETS as readonly string[]).includes(values.target ?? '')) {
    throw new UsageError(`--target must be ${SQL_TARGETS.join(' or ')}, got ${JSON.stringify(values.target ?? null)}`);
  }
  const rendered = renderSql(config, values.target as SqlTarget);
  if (values.out === undefined) {
    out.stdout(rendered.script.trimEnd());
    return 0;
  }
  for (const path of await writeSqlFiles(values.out, rendered.files)) out.stderr(`wrote ${path}`);
  return 0;
}

/** `status`: the lake check of src/app/status.ts as a table (or JSON); exit 5 when something needs attention. */
async function status(args: readonly string[], config: Config, out: Out, now: number): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      'all-tenants': { type: 'boolean' },
      days: { type: 'string' },
      json: { type: 'boolean' },
      'as-of': { type: 'string' },
    },
  });
  if (positionals.length > 2) throw new UsageError(`status takes at most DATE and TENANTS, got ${positionals.length} arguments`);
  // a lone positional is DATE when it looks like one, else TENANTS (`status acme --days 7`)
  const [dateArg, tenantsArg] =
    positionals.length === 1 && !/^\d{4}-/.test(positionals[0] as string) ? [undefined, positionals[0]] : positionals;
  const date = dateArg === undefined ? targetDate(now, config.targetDateOffset) : parseDate(dateArg, 'DATE');
  const days = values.days === undefined ? 1 : Number(values.days);
  if (!Number.isInteger(days) || days < 1 || days > 3660) {
    throw new UsageError(`--days must be an integer from 1 to 3660, got ${JSON.stringify(values.days)}`);
  }
  const tenants = selectedTenants(values['all-tenants'] === true, tenantsArg, config);
  const store = await createStore(config);
  const asOf = parseAsOf(values['as-of']);
  const result = await lakeStatus(store, { tenants, dates: statusDates(date, days), now, ...(asOf ? { asOf } : {}) });
  out.stdout(values.json ? JSON.stringify(result, null, 2) : statusTable(result));
  return result.needs_attention > 0 ? EXIT.attention : EXIT.ok;
}

function rowsTable(rows: Record<string, unknown>[]): string {
  const header = Object.keys(rows[0] ?? {});
  return table([
    header,
    ...rows.map((r) => header.map((h) => (typeof r[h] === 'number' ? (r[h] as number) : String(r[h] ?? '')))),
  ]);
}
