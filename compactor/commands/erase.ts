/**
 * `erase` and `offboard` (docs/PRIVACY.md). Thin: parse the arguments, open the store and a DuckDB instance,
 * call src/jobs/erase/, print the counts and what was left.
 *
 *   makoto-lake erase --tenant T (--sender ID | --conversation ID | --message ID)… [--ids-file FILE] [--dry-run] [--json]
 *   makoto-lake erase --verify RECEIPT [--json]
 *   makoto-lake offboard --tenant T [--dry-run] [--json]
 *   makoto-lake offboard --tenant T --reenable
 *
 * Exit codes: 0 done and verified (or a dry run), 1 something could not be removed (named on stderr),
 * 2 a bad request.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { Config } from '../../src/core/config.js';
import { UsageError } from '../../src/core/errors.js';
import { assertTenantId } from '../../src/core/tenant.js';
import type { EraseSelector } from '../../src/jobs/erase/eraseMatcher.js';
import { type EraseOutcome, eraseTenant, verifyReceipt } from '../../src/jobs/erase/eraseTenant.js';
import { offboardTenant, reenableTenant } from '../../src/jobs/erase/offboard.js';
import type { EraseDeps } from '../../src/jobs/erase/planErase.js';
import type { EraseReceipt } from '../../src/jobs/erase/receipt.js';
import { withCompactionDeps } from '../../src/jobs/workspace.js';
import { createStore } from '../../stores/createStore.js';
import type { Out } from './args.js';

/** The store, a DuckDB instance and a work folder under TEMP_DIR, released after (the compaction's own). */
async function withEraseDeps<T>(config: Config, work: (deps: EraseDeps) => Promise<T>): Promise<T> {
  return withCompactionDeps(config, await createStore(config), Date.now, work);
}

/** `--ids-file`: one `sender=ID`, `conversation=ID` or `message=ID` a line; `#` starts a comment line. */
export function parseIdsFile(text: string, name: string): EraseSelector {
  const selector = { senders: [] as string[], conversations: [] as string[], messages: [] as string[] };
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const m = /^(sender|conversation|message)=(.+)$/.exec(line);
    if (!m) throw new UsageError(`${name} line ${i + 1}: expected sender=ID, conversation=ID or message=ID`);
    const list = m[1] === 'sender' ? selector.senders : m[1] === 'conversation' ? selector.conversations : selector.messages;
    list.push(m[2] as string);
  }
  return selector;
}

export async function eraseCommand(args: readonly string[], config: Config, out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      tenant: { type: 'string' },
      sender: { type: 'string', multiple: true },
      conversation: { type: 'string', multiple: true },
      message: { type: 'string', multiple: true },
      'ids-file': { type: 'string' },
      'dry-run': { type: 'boolean' },
      verify: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (positionals.length > 0) throw new UsageError(`erase takes no positional arguments, got ${JSON.stringify(positionals[0])}`);
  if (values.verify !== undefined) {
    if (values.tenant !== undefined || values.sender || values.conversation || values.message || values['ids-file'])
      throw new UsageError('--verify RECEIPT takes no other selection');
    const receipt = await withEraseDeps(config, (deps) => verifyReceipt(deps, values.verify as string));
    return report(out, receipt, values.json === true, values.verify);
  }
  if (values.tenant === undefined) throw new UsageError('erase needs --tenant T');
  const tenant = assertTenantId(values.tenant);
  const selector = {
    senders: [...(values.sender ?? [])],
    conversations: [...(values.conversation ?? [])],
    messages: [...(values.message ?? [])],
  };
  if (values['ids-file'] !== undefined) {
    let text: string;
    try {
      text = await readFile(values['ids-file'], 'utf8');
    } catch (error) {
      throw new UsageError(`cannot read --ids-file ${values['ids-file']}: ${(error as Error).message}`, { cause: error });
    }
    const fromFile = parseIdsFile(text, values['ids-file']);
    selector.senders.push(...fromFile.senders);
    selector.conversations.push(...fromFile.conversations);
    selector.messages.push(...fromFile.messages);
  }
  if (selector.senders.length + selector.conversations.length + selector.messages.length === 0)
    throw new UsageError('erase needs --sender, --conversation, --message or --ids-file');
  const outcome = await withEraseDeps(config, (deps) =>
    eraseTenant(deps, { tenant, selector, dryRun: values['dry-run'] === true }),
  );
  return printOutcome(out, outcome, values.json === true);
}

export async function offboardCommand(args: readonly string[], config: Config, out: Out): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      tenant: { type: 'string' },
      'dry-run': { type: 'boolean' },
      reenable: { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  if (positionals.length > 0)
    throw new UsageError(`offboard takes no positional arguments, got ${JSON.stringify(positionals[0])}`);
  if (values.tenant === undefined) throw new UsageError('offboard needs --tenant T');
  const tenant = assertTenantId(values.tenant);
  if (values.reenable) {
    if (values['dry-run']) throw new UsageError('--reenable takes no --dry-run');
    const was = await reenableTenant(await createStore(config), tenant);
    out.stderr(was ? `tenant ${tenant} accepted again by capture and compaction` : `tenant ${tenant} was not offboarded`);
    return 0;
  }
  const outcome = await withEraseDeps(config, (deps) => offboardTenant(deps, tenant, { dryRun: values['dry-run'] === true }));
  return printOutcome(out, outcome, values.json === true);
}

function printOutcome(out: Out, outcome: EraseOutcome, json: boolean): number {
  if (outcome.dryRun) {
    if (json) out.stdout(JSON.stringify({ dry_run: true, counts: outcome.counts }, null, 2));
    else for (const [k, v] of Object.entries(outcome.counts)) out.stdout(`${k.padEnd(32)} ${v}`);
    out.stderr('dry run: nothing was changed');
    return 0;
  }
  return report(out, outcome.receipt as EraseReceipt, json, outcome.receiptKey as string);
}

function report(out: Out, receipt: EraseReceipt, json: boolean, key: string | undefined): number {
  if (json) out.stdout(JSON.stringify({ receipt: key, ...receipt }, null, 2));
  else {
    for (const [k, v] of Object.entries(receipt.counts)) out.stdout(`${k.padEnd(32)} ${v}`);
    out.stdout(`table versions                   ${receipt.table_versions.join(', ') || '-'}`);
    out.stdout(`receipt                          ${key}`);
  }
  const verification = receipt.verification;
  if (verification?.ok) {
    out.stderr(`verified: ${verification.objects_scanned} objects scanned, no matching record left`);
    return 0;
  }
  for (const left of verification?.remaining ?? [])
    out.stderr(`not removed: ${left.key} (${left.records} records)${left.reason ? `: ${left.reason}` : ''}`);
  return 1;
}
