/**
 * `makoto-lake`: the command line. A router: the command name picks a module of compactor/commands/, which
 * parses its arguments, builds the store from config and calls src/; output, exit codes and usage live here.
 *
 *   makoto-lake compact [DATE] [TENANTS] [--all-tenants] [--late] [--allow-empty] [--json]
 *   makoto-lake compact --today [TENANTS] [--all-tenants] [--json]
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

import { type Config, type Env, loadConfig } from '../src/core/config.js';
import { ConfigError, errorMessage, UsageError } from '../src/core/errors.js';
import { EXIT, NoStoreChosenError, type Out } from './commands/args.js';
import { backfillCommand } from './commands/backfill.js';
import { compactCommand } from './commands/compact.js';
import { demoCommand } from './commands/demo.js';
import { eraseCommand, offboardCommand } from './commands/erase.js';
import { ingestCommand } from './commands/ingest.js';
import { redriveCommand } from './commands/redrive.js';
import { sqlCommand } from './commands/sql.js';
import { statusCommand } from './commands/status.js';
import { convertCommand, exportCommand, vacuumCommand } from './commands/table.js';

export { EXIT } from './commands/args.js';
export { replayText } from './commands/ingest.js';

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

/** A command: its arguments (after the command name), the config, where to print, the clock; returns the exit code. */
type Command = (args: readonly string[], config: Config, out: Out, now: () => number) => Promise<number>;

/** Every command by name, each in compactor/commands/. */
const COMMANDS: ReadonlyMap<string, Command> = new Map<string, Command>([
  ['compact', compactCommand],
  ['ingest', ingestCommand],
  ['demo', demoCommand],
  ['sql', sqlCommand],
  ['backfill', backfillCommand],
  ['redrive', redriveCommand],
  ['status', (args, config, out, now) => statusCommand(args, config, out, now())],
  ['vacuum', vacuumCommand],
  ['convert', convertCommand],
  ['export', exportCommand],
  ['erase', eraseCommand],
  ['offboard', offboardCommand],
]);

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
  const [name, ...rest] = argv;
  try {
    const command = name === undefined ? undefined : COMMANDS.get(name);
    if (command) return await command(rest, loadConfig(env), out, now);
    if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
      out.stdout(USAGE);
      return name === undefined ? 2 : 0;
    }
    throw new UsageError(`unknown command ${JSON.stringify(name)}`);
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
