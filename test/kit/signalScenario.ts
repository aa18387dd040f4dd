import type { ChildProcess } from 'node:child_process';
import { cp, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { analyticsPrefix } from '../../src/core/staging/layout.js';
import { filesUnder, runCli, stageDay } from './cliRun.js';
import { readPartitionFolder } from './readParquet.js';

export const SIGNAL_DATE = '2025-08-11';

export interface SignalBase {
  readonly dir: string;
  /** Message ids per tenant the lake must hold once each is compacted. */
  readonly expected: Record<string, string[]>;
}

/** Staging for tenants a, b and c; b is large so that it is still running when a signal arrives. */
export async function prepareSignalBase(dir: string): Promise<SignalBase> {
  const expected = await stageDay(join(dir, 'base'), SIGNAL_DATE, { a: 300, b: 30_000, c: 300 });
  return { dir, expected };
}

export interface SignalOutcome {
  /** Exit status of makoto-lake (through the pipe: bash's PIPESTATUS). */
  readonly code: number | null;
  /** stderr lines that start with `makoto-lake:` (what the CLI says happened). */
  readonly messages: string[];
  /** Per-tenant progress lines, shortened to `✓ a` / `✗ b failed: <first words>`. */
  readonly progress: string[];
  /** Tenants whose partition holds exactly the expected ids; tenants whose partition is empty. */
  readonly exact: string[];
  readonly empty: string[];
  /** What a run must never leave: leases, temporary files in the store, work folders in TEMP_DIR. */
  readonly leftovers: { readonly leases: string[]; readonly storeTemp: string[]; readonly workFolders: string[] };
}

let n = 0;

/** `compact D a,c,a | true`: the reader of stdout is gone before the summary is written. */
export function runClosedStdout(base: SignalBase): Promise<SignalOutcome> {
  return run(base, `$CLI compact ${SIGNAL_DATE} a,c,a | true; echo "exit=\${PIPESTATUS[0]}" >&2`);
}

/**
 * `compact D a,c,a 2>&1 | head -1`: stdout and stderr share one pipe whose reader leaves after the first
 * line, so every later write to either fails with EPIPE.
 */
export function runClosedBoth(base: SignalBase): Promise<SignalOutcome> {
  return run(base, `$CLI compact ${SIGNAL_DATE} a,c,a 2>&1 | head -1 >/dev/null; echo "exit=\${PIPESTATUS[0]}" >&2`);
}

/**
 * `compact D a,c,a --json` with its stderr into a pipe whose reader (`true`) is gone at once and its stdout
 * as usual: the outcome and what stdout received.
 */
export async function runClosedStderr(base: SignalBase): Promise<{ outcome: SignalOutcome; stdout: string }> {
  return runWithOutput(
    base,
    `{ $CLI compact ${SIGNAL_DATE} a,c,a --json 2>&1 1>&3 | true; echo "exit=\${PIPESTATUS[0]}" >&2; } 3>&1`,
  );
}

/** `compact D a,c,a --json 2>/dev/full`: every write to stderr fails with ENOSPC (not EPIPE). */
export async function runFullStderr(base: SignalBase): Promise<{ outcome: SignalOutcome; stdout: string }> {
  return runWithOutput(base, `$CLI compact ${SIGNAL_DATE} a,c,a --json 2>/dev/full; echo "exit=$?" >&2`);
}

/**
 * `compact D a,b,c` (one at a time), `signal` sent while b merges: as soon as b's work folder exists (it is
 * made after b's lease and plan, before DuckDB starts), so the signal always lands before b's commit.
 */
export function runStopped(base: SignalBase, signal: 'SIGTERM' | 'SIGINT'): Promise<SignalOutcome> {
  let watching = false;
  return run(base, `exec $CLI compact ${SIGNAL_DATE} a,b,c`, (text, child, temp) => {
    if (watching || !/^✓ a /m.test(text)) return;
    watching = true;
    const poll = async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (await hasFolder(temp, `b-${SIGNAL_DATE}-`)) child.kill(signal);
      else setTimeout(poll, 2);
    };
    void poll();
  });
}

/** Whether a folder whose name starts with `prefix` exists anywhere below `root`. */
async function hasFolder(root: string, prefix: string): Promise<boolean> {
  const entries = await readdir(root, { withFileTypes: true, recursive: true }).catch(() => []);
  return entries.some((e) => e.isDirectory() && e.name.startsWith(prefix));
}

type OnStderr = (text: string, child: ChildProcess, temp: string) => void;

async function run(base: SignalBase, script: string, onStderr?: OnStderr): Promise<SignalOutcome> {
  return (await runWithOutput(base, script, onStderr)).outcome;
}

async function runWithOutput(
  base: SignalBase,
  script: string,
  onStderr?: OnStderr,
): Promise<{ outcome: SignalOutcome; stdout: string }> {
  const root = join(base.dir, `data-${++n}`);
  const temp = join(base.dir, `tmp-${n}`);
  await cp(join(base.dir, 'base'), root, { recursive: true });
  await mkdir(temp);
  const result = await runCli(
    script,
    { DATA_DIR: root, TEMP_DIR: temp, COMPACT_CONCURRENCY: '1', DUCKDB_THREADS: '1' },
    onStderr && ((text, child) => onStderr(text, child, temp)),
  );
  const lines = result.stderr.trim().split('\n');
  const piped = /^exit=(\d+)$/.exec(lines.at(-1) ?? '');
  const exact: string[] = [];
  const empty: string[] = [];
  for (const [tenant, ids] of Object.entries(base.expected)) {
    const rows = await readPartitionFolder(join(root, analyticsPrefix(tenant, SIGNAL_DATE))).catch(() => []);
    const got = rows.map((r) => r.message_id).sort();
    if (got.length === 0) empty.push(tenant);
    else if (JSON.stringify(got) === JSON.stringify(ids)) exact.push(tenant);
  }
  const files = await filesUnder(root);
  const outcome: SignalOutcome = {
    code: piped ? Number(piped[1]) : result.code,
    messages: lines.filter((l) => l.startsWith('makoto-lake:')),
    progress: lines
      .filter((l) => /^[✓✗] /.test(l))
      .map((l) => (l.startsWith('✓') ? l.slice(0, 3) : l.replace(/^(✗ \w+) \S+ (\w+: .{0,60}).*$/, '$1 $2'))),
    exact,
    empty,
    leftovers: {
      leases: files.filter((f) => f.startsWith('locks/')),
      storeTemp: files.filter((f) => (f.startsWith('.tmp/') && !f.startsWith('.tmp/locks/')) || f.includes('/.tmp-')),
      workFolders: await readdir(temp),
    },
  };
  return { outcome, stdout: result.stdout };
}
