import { spawn } from 'node:child_process';
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ingestBatch } from '../../src/capture/ingest/ingestBatch.js';
import { dynamodbEventChanges } from '../../src/capture/ingest/sources.js';
import { loadConfig } from '../../src/core/config.js';
import { analyticsPrefix, lockKey } from '../../src/core/staging/layout.js';
import { addDays } from '../../src/core/time/jst.js';
import { type CompactionPhase, compactPartition } from '../../src/engine/compactPartition.js';
import { generateChatDay, toDynamoDBRecord } from '../../src/jobs/demo/chatDay.js';
import { runCompaction } from '../../src/jobs/runCompaction.js';
import { vacuumLake } from '../../src/lake/lakeTable.js';
import { findLatePartitions } from '../../src/lake/lateData.js';
import { readManifest } from '../../src/lake/manifest.js';
import { DeltaTable, partitionFiles, tableKey } from '../../src/lake/table/deltaTable.js';
import { openDuckDb } from '../../src/ports/duckdb/openDuckDb.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { CRASH_ENV, CRASH_SETTINGS, MISSED_EXIT_CODE } from './crashChild.js';
import { duplicateIds, type LakeRow, readParquetFiles, readPartitionFolder, visibleFiles } from './readParquet.js';

/**
 * Where the compactor is killed: each phase as it starts, while DuckDB writes the Parquet, once the first of
 * the partition's several new parts is in the store (mid-upload), and once every new file including the run
 * manifest is in the store but the table commit is not (mid-commit).
 */
export const CRASH_POINTS = [
  'locked',
  'downloading',
  'compacting',
  'mid-write',
  'verifying',
  'uploading',
  'mid-upload',
  'committing',
  'mid-commit',
  'cleaning',
  'done',
] as const satisfies readonly (CompactionPhase | 'mid-write' | 'mid-upload' | 'mid-commit')[];
export type CrashPoint = (typeof CRASH_POINTS)[number];

export const CRASH_TENANT = 'crash-co';
export const CRASH_DATE = '2025-08-11';
const NOW = Date.parse('2025-08-11T17:00:00Z');
const REPO = fileURLToPath(new URL('../../', import.meta.url));

export interface CrashBase {
  /** A store with the old partition compacted and late staging (edits, a delete, new messages) not yet. */
  readonly root: string;
  /** The partition before the crashed run (what the first compaction wrote). */
  readonly oldRows: LakeRow[];
  /** The table version that holds `oldRows` (the first compaction's commit). */
  readonly version: number;
  /** The partition a complete run over the current staging writes (reference run, no crash). */
  readonly newRows: LakeRow[];
  /** What the generator says the lake must hold: message id and content. */
  readonly expected: { message_id: string; content: string }[];
  /** Part files the reference run's version names (several: CRASH_ENV makes them small). */
  readonly parts: number;
}

export interface CrashOutcome {
  readonly point: CrashPoint;
  /** The child died of SIGKILL (not an exit, not a missed point). */
  readonly killed: boolean;
  /**
   * What a reader saw right after the crash: the files of the table's current version (as Athena or Synapse
   * with FORMAT DELTA read it), compared with the old and the new partition; 'other' would be a mix.
   */
  readonly readerAfterCrash: 'old' | 'new' | 'other';
  /**
   * Right after the crash the folder held files the current version does not name (the dead run's uploads,
   * or the files its commit replaced): normal until vacuum, read by no one.
   */
  readonly strayFilesAfterCrash: boolean;
  /** The killed run left its lease (its pid now gone). */
  readonly leaseLeft: boolean;
  /** The nightly run one minute after the kill (`compact <next day> TENANT --late`): its result for the crashed day. */
  readonly nightly: { readonly status: string; readonly error?: string };
  /** After the nightly run: */
  readonly recovered: {
    /** The rows of the partition's current version equal the reference run's, exactly. */
    readonly rowsExact: boolean;
    readonly duplicates: string[];
    /**
     * The current version's files of the partition are its run manifest's outputs (keys, sizes), and each is
     * in the store as the manifest recorded it (size and ETag: never changed since it was written).
     */
    readonly versionMatchesManifest: boolean;
    /** The version before the crashed run still reads exactly the old rows (nothing it named was deleted or changed). */
    readonly previousVersionExact: boolean;
    /** Temporary files anywhere in the store (`.tmp-…` beside objects, or left in `.tmp/`). */
    readonly tempFiles: string[];
    readonly lockLeft: boolean;
    /** The planner finds nothing more to do for the day (its run manifest folded in every staging object). */
    readonly manifestCurrent: boolean;
    /**
     * After `vacuumLake` eight days later (past the 7-day retention): the folder holds exactly the current
     * version's files, and they still read exactly the reference rows.
     */
    readonly vacuumedToVersion: boolean;
  };
  /** Entries the killed process left in its local work folder (outside the store; the next run sweeps old ones). */
  readonly leftoverWorkEntries: number;
}

/** Builds the crash base: a day compacted once, then late staging for the same day. */
export async function prepareCrashBase(dir: string, messages = 1500): Promise<CrashBase> {
  const root = join(dir, 'base');
  const store = new LocalStore(root);
  const day = generateChatDay({
    date: CRASH_DATE,
    tenants: [CRASH_TENANT],
    messagesPerTenant: messages,
    seed: 5,
    contentBytes: [400, 1600],
  });
  const records = day.changes.map((c) => toDynamoDBRecord(c));
  const firstPass = Math.floor(records.length * 0.8);
  const ingest = async (batch: unknown[]) => {
    const { changes, batchId } = dynamodbEventChanges({ Records: batch });
    const result = await ingestBatch(store, changes, { source: 'dynamodb', batchId, now: NOW - 3_600_000 });
    if (result.failed.length > 0) throw new Error(`crash base: ingest failed for ${result.failed.map((f) => f.key).join(', ')}`);
  };
  for (let i = 0; i < firstPass; i += 500) await ingest(records.slice(i, Math.min(i + 500, firstPass)));
  const db = await openDuckDb({ memoryLimit: '1GB', threads: 2, workDirectory: join(dir, 'base-duckdb') });
  try {
    const settings = CRASH_SETTINGS;
    await compactPartition(
      { store, db, workDirectory: join(dir, 'base-work'), now: () => NOW, settings },
      CRASH_TENANT,
      CRASH_DATE,
    );
    const oldRows = await readPartitionFolder(join(root, analyticsPrefix(CRASH_TENANT, CRASH_DATE)));
    const { version } = await new DeltaTable(store, {}).snapshot();
    // the rest of the day arrives late: new messages, edits and deletes of already compacted ones
    for (let i = firstPass; i < records.length; i += 500) await ingest(records.slice(i, i + 500));
    const reference = join(dir, 'reference');
    await cp(root, reference, { recursive: true, preserveTimestamps: true });
    await compactPartition(
      { store: new LocalStore(reference), db, workDirectory: join(dir, 'reference-work'), now: () => NOW, settings },
      CRASH_TENANT,
      CRASH_DATE,
    );
    const newRows = await readPartitionFolder(join(reference, analyticsPrefix(CRASH_TENANT, CRASH_DATE)));
    const parts = partitionFiles(await new DeltaTable(new LocalStore(reference), {}).snapshot(), CRASH_TENANT, CRASH_DATE).length;
    await rm(reference, { recursive: true, force: true });
    const expected = day.expected
      .map((i) => ({ message_id: i.messageId, content: i.content }))
      .sort((a, b) => (a.message_id < b.message_id ? -1 : 1));
    return { root, oldRows, version, newRows, expected, parts };
  } finally {
    db.closeSync();
    await rm(join(dir, 'base-duckdb'), { recursive: true, force: true });
  }
}

/**
 * Copies the base, runs the compaction in a child process that SIGKILLs itself at `point`, reads the
 * table as a reader would, then runs the nightly compaction (the next day's `compact --late` for the
 * tenant, a minute later on this host) and checks what it left.
 */
export async function runCrash(base: CrashBase, point: CrashPoint, dir: string): Promise<CrashOutcome> {
  const { root, work, folder } = await crashOnce(base, point, dir);
  const seen = await readPartitionFolder(folder).catch(() => undefined);
  const readerAfterCrash = same(seen, base.oldRows) ? 'old' : same(seen, base.newRows) ? 'new' : 'other';
  const strayFilesAfterCrash = (await strayFiles(root)).length > 0;
  const leftoverWorkEntries = (await readdir(join(work, 'partitions')).catch(() => [])).length;
  const leaseLeft = (await leaseLeftBy(root)) !== undefined;
  try {
    const nightly = await nightlyRun(root, join(dir, point), NOW + 60_000);
    return {
      point,
      killed: true,
      readerAfterCrash,
      strayFilesAfterCrash,
      leaseLeft,
      nightly,
      recovered: await recoveredState(base, root, join(dir, point)),
      leftoverWorkEntries,
    };
  } finally {
    await rm(join(dir, point), { recursive: true, force: true });
  }
}

/** A crash at `point` in a copy of the base; rejects unless the child died of SIGKILL. */
async function crashOnce(base: CrashBase, point: CrashPoint, dir: string) {
  const root = join(dir, point, 'data');
  const work = join(dir, point, 'work');
  await cp(base.root, root, { recursive: true, preserveTimestamps: true });
  await mkdir(work, { recursive: true });
  const exit = await runChild([root, work, CRASH_TENANT, CRASH_DATE, point, String(NOW)]);
  if (exit.signal !== 'SIGKILL') throw new Error(`crash child at ${point} was not killed (exit ${exit.code}):\n${exit.output}`);
  return { root, work, folder: join(root, analyticsPrefix(CRASH_TENANT, CRASH_DATE)) };
}

/** The nightly run as the CLI and the scheduled jobs run it: `compact <CRASH_DATE + 1> TENANT --late`. */
export async function nightlyRun(root: string, dir: string, now: number): Promise<{ status: string; error?: string }> {
  const tempDir = join(dir, 'nightly-tmp');
  await mkdir(tempDir, { recursive: true });
  const config = loadConfig({ ...CRASH_ENV, DATA_DIR: root, TEMP_DIR: tempDir });
  const summary = await runCompaction({
    store: new LocalStore(root),
    config,
    date: addDays(CRASH_DATE, 1),
    tenants: [CRASH_TENANT],
    late: true,
    now: () => now,
    settings: CRASH_SETTINGS,
  });
  const day = summary.results.find((r) => r.date === CRASH_DATE);
  if (!day) return { status: 'not planned' };
  return day.error === undefined ? { status: day.status } : { status: day.status, error: day.error };
}

/**
 * What the table, manifest, lease and temp area hold after the recovery; then a vacuum eight days later and
 * what the folder holds after it. `scratch` is a folder outside the store for the vacuum's DuckDB.
 */
async function recoveredState(base: CrashBase, root: string, scratch: string): Promise<CrashOutcome['recovered']> {
  const store = new LocalStore(root);
  const folder = join(root, analyticsPrefix(CRASH_TENANT, CRASH_DATE));
  const rows = await readPartitionFolder(folder);
  const manifest = await readManifest(store, CRASH_TENANT, CRASH_DATE);
  const current = await versionFiles(root);
  const heads = await Promise.all(current.map((f) => store.head(f.key)));
  // in key order on both sides (part numbers may pass 9: part-10 sorts before part-6)
  const byKey = <T extends { key: string }>(list: readonly T[]) => [...list].sort((a, b) => (a.key < b.key ? -1 : 1));
  const described = (list: readonly ({ key: string; size: number; etag: string } | undefined)[]) =>
    JSON.stringify(byKey(list.map((h) => ({ key: h?.key ?? '', size: h?.size ?? -1, etag: h?.etag ?? '' }))));
  const versionMatchesManifest =
    manifest !== undefined &&
    current.length > 0 &&
    JSON.stringify(byKey(current)) === JSON.stringify(byKey(manifest.outputs.map((o) => ({ key: o.key, size: o.size })))) &&
    described(heads) === described(manifest.outputs);
  const late = await findLatePartitions(store, [CRASH_TENANT], addDays(CRASH_DATE, 1), 0);
  const recovered = {
    rowsExact: same(rows, base.newRows),
    duplicates: duplicateIds(rows),
    versionMatchesManifest,
    previousVersionExact: same(await rowsAt(root, base.version), base.oldRows),
    tempFiles: await tempFiles(root),
    lockLeft: (await store.head(lockKey(CRASH_TENANT, CRASH_DATE))) !== undefined,
    manifestCurrent: late.length === 0 && manifest !== undefined,
  };
  // the nightly vacuum's retention is 7 days: eight days later the replaced and stray files are gone
  const work = join(scratch, 'vacuum');
  await mkdir(work, { recursive: true });
  const db = await openDuckDb({ memoryLimit: '256MB', threads: 1, workDirectory: join(work, 'duckdb') });
  try {
    await vacuumLake({ store, db, workDirectory: work }, { now: Date.now() + 8 * 24 * 3_600_000 });
  } finally {
    db.closeSync();
  }
  const left = (await visibleFiles(folder)).map((name) => `${analyticsPrefix(CRASH_TENANT, CRASH_DATE)}${name}`);
  const vacuumedToVersion =
    JSON.stringify(left.sort()) === JSON.stringify(current.map((f) => f.key).sort()) &&
    same(await readPartitionFolder(folder), base.newRows);
  return { ...recovered, vacuumedToVersion };
}

/** The crash partition's files in the table's current version: store keys and recorded sizes. */
async function versionFiles(root: string): Promise<{ key: string; size: number }[]> {
  const snapshot = await new DeltaTable(new LocalStore(root), {}).snapshot();
  return partitionFiles(snapshot, CRASH_TENANT, CRASH_DATE).map((a) => ({ key: tableKey(a.path), size: a.size }));
}

/** Files in the crash partition's folder that the current version does not name. */
async function strayFiles(root: string): Promise<string[]> {
  const named = new Set((await versionFiles(root)).map((f) => f.key));
  const prefix = analyticsPrefix(CRASH_TENANT, CRASH_DATE);
  return (await visibleFiles(join(root, prefix))).map((name) => `${prefix}${name}`).filter((key) => !named.has(key));
}

/** The crash partition as an older table version names it (time travel). */
async function rowsAt(root: string, version: number): Promise<LakeRow[]> {
  const snapshot = await new DeltaTable(new LocalStore(root), {}).snapshot({ version });
  return readParquetFiles(partitionFiles(snapshot, CRASH_TENANT, CRASH_DATE).map((a) => join(root, tableKey(a.path))));
}

/**
 * A run on another host killed while holding the lease (simulated: the dead run's lease body names another
 * host): the nightly run a minute later is locked out; once the lease lapses the next one takes it over.
 */
export async function runForeignHostCrash(
  base: CrashBase,
  dir: string,
): Promise<{
  beforeLapse: { status: string; error?: string };
  afterLapse: { status: string } & CrashOutcome['recovered'];
  lease: Record<string, string>;
}> {
  const { root } = await crashOnce(base, 'uploading', dir);
  const lease = (await leaseLeftBy(root)) as Record<string, string>;
  const foreign = { ...lease, host: 'other-host', holder: `other-host:${lease.pid}` };
  await writeFile(join(root, lockKey(CRASH_TENANT, CRASH_DATE)), `${JSON.stringify(foreign)}\n`);
  try {
    const beforeLapse = await nightlyRun(root, join(dir, 'uploading'), NOW + 60_000);
    const afterLapse = await nightlyRun(root, join(dir, 'uploading'), Date.parse(String(lease.expires_at)) + 1000);
    const recovered = await recoveredState(base, root, join(dir, 'uploading'));
    return { beforeLapse, afterLapse: { ...afterLapse, ...recovered }, lease: foreign };
  } finally {
    await rm(join(dir, 'uploading'), { recursive: true, force: true });
  }
}

/** The lease body the dead run left (run id, holder, host, pid, expiry), if any. */
export async function leaseLeftBy(root: string): Promise<Record<string, string> | undefined> {
  try {
    return JSON.parse(await readFile(join(root, lockKey(CRASH_TENANT, CRASH_DATE)), 'utf8'));
  } catch {
    return undefined;
  }
}

/** Every crash point in turn, on one base. */
export async function runCrashScenario(dir: string): Promise<{ base: CrashBase; outcomes: CrashOutcome[] }> {
  const base = await prepareCrashBase(dir);
  const outcomes: CrashOutcome[] = [];
  for (const point of CRASH_POINTS) outcomes.push(await runCrash(base, point, join(dir, 'crashes')));
  return { base, outcomes };
}

/**
 * A crash is survived when the reader saw exactly the old or the new partition (never a mix), the nightly
 * run left exactly the reference rows in a version that is its manifest's, the previous version still reads
 * exactly, nothing is left behind, and the vacuum leaves the folder equal to the version.
 */
export function survived(outcome: CrashOutcome): boolean {
  const r = outcome.recovered;
  return (
    outcome.killed &&
    outcome.readerAfterCrash !== 'other' &&
    outcome.nightly.status !== 'locked' &&
    outcome.nightly.status !== 'failed' &&
    r.rowsExact &&
    r.duplicates.length === 0 &&
    r.versionMatchesManifest &&
    r.previousVersionExact &&
    r.tempFiles.length === 0 &&
    !r.lockLeft &&
    r.manifestCurrent &&
    r.vacuumedToVersion
  );
}

function same(a: readonly LakeRow[] | undefined, b: readonly LakeRow[]): boolean {
  return a !== undefined && JSON.stringify(a) === JSON.stringify(b);
}

function runChild(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO, 'bin/run-ts.mjs'), join(REPO, 'test/kit/crashChild.ts'), ...args], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => {
      output += d;
    });
    child.stderr.on('data', (d) => {
      output += d;
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code === MISSED_EXIT_CODE) reject(new Error(`crash child never reached ${args[4]}:\n${output}`));
      else resolve({ code, signal, output });
    });
  });
}

async function tempFiles(root: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      const inTemp = relative(root, path).startsWith('.tmp');
      if (entry.isDirectory()) await walk(path);
      else if (entry.name.startsWith('.tmp-') || inTemp) found.push(relative(root, path).split(sep).join('/'));
    }
  };
  await walk(root);
  return found.sort();
}
