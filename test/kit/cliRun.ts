import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ingestBatch } from '../../src/capture/ingest/ingestBatch.js';
import { dynamodbEventChanges } from '../../src/capture/ingest/sources.js';
import { generateChatDay, toDynamoDBRecord } from '../../src/jobs/demo/chatDay.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

/** Stages a generated day for each tenant (messages per tenant as given) and returns the expected message ids per tenant. */
export async function stageDay(
  root: string,
  date: string,
  tenants: Readonly<Record<string, number>>,
): Promise<Record<string, string[]>> {
  const store = new LocalStore(root);
  const expected: Record<string, string[]> = {};
  for (const [tenant, messages] of Object.entries(tenants)) {
    const day = generateChatDay({ date, tenants: [tenant], messagesPerTenant: messages, seed: 11 });
    const records = day.changes.map((c) => toDynamoDBRecord(c));
    for (let i = 0; i < records.length; i += 2000) {
      const { changes, batchId } = dynamodbEventChanges({ Records: records.slice(i, i + 2000) });
      const result = await ingestBatch(store, changes, { source: 'dynamodb', batchId, now: Date.parse(`${date}T12:00:00Z`) });
      if (result.failed.length > 0) throw new Error(`stageDay: ingest failed for ${tenant}`);
    }
    expected[tenant] = day.expected.map((m) => m.messageId).sort();
  }
  return expected;
}

export interface CliRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `bash -c SCRIPT` where `$CLI` is the real `makoto-lake` command, with `env` added; `onStderr` sees
 * the stderr text so far and may act on the process (send a signal).
 */
export function runCli(
  script: string,
  env: Record<string, string>,
  onStderr?: (text: string, child: import('node:child_process').ChildProcess) => void,
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], {
      cwd: REPO,
      env: { ...process.env, ...env, CLI: `${process.execPath} ${join(REPO, 'bin/makoto-lake.cjs')}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
      onStderr?.(stderr, child);
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Every file below `root` whose path contains one of the parts (e.g. '.tmp', 'locks/'), relative to root. */
export async function filesUnder(root: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else found.push(relative(root, path).split(sep).join('/'));
    }
  };
  await walk(root);
  return found.sort();
}
