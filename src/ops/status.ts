import { gunzipSync } from 'node:zlib';
import {
  analyticsPrefix,
  COMPACTION_WORK_ROOT,
  isVisibleKey,
  lockKey,
  PENDING_DELETES_ROOT,
  QUARANTINE_ROOT,
} from '../core/staging/layout.js';
import { tenantIdProblem } from '../core/tenant.js';
import { addDays, jstDate, jstDayRange } from '../core/time/jst.js';
import { lakeTenants } from '../lake/lateData.js';
import type { PartitionManifest } from '../lake/manifest.js';
import { canTakeOver, readLease } from '../lake/partitionLease.js';
import { type PendingDeleteLine, pendingByTenant, readPending } from '../lake/pendingDeletes.js';
import { planPartition } from '../lake/planPartition.js';
import { DeltaTable, TAG_QUARANTINE, type TableSnapshot, tableKey } from '../lake/table/deltaTable.js';
import { ObjectNotFoundError } from '../ports/store/errors.js';
import { getBytes, listAll, type ObjectInfo, type ObjectStore } from '../ports/store/ObjectStore.js';
import { table } from './report.js';

/** A day's compaction is due at 02:00 JST the next day (the nightly schedule, template.yaml). */
const RUN_HOUR_JST = 2;
/**
 * How long after its scheduled run staging may stay uncovered before it needs attention: the run itself
 * (minutes) plus a retry or a manual re-run (docs/ARCHITECTURE.md, "status").
 */
export const STATUS_GRACE_MS = 2 * 60 * 60 * 1000;
const HOUR_MS = 60 * 60 * 1000;
/**
 * How much earlier than a run's start a staging object must have been written for that run to have seen it:
 * the object store's clock against the compactor's, and an upload that straddles the run's listing.
 */
export const RUN_CLOCK_TOLERANCE_MS = 5 * 60 * 1000;
/**
 * How many nightly runs a delete that names no day may wait for its message before it needs attention. A
 * message created and deleted before its day was compacted is published by the first night's run and the
 * delete placed by the second; a third night (a day's capture backlog, a redrive) is the margin. A delete
 * still waiting after that names a message the lake never got (a lost batch: backfill its day) or never will.
 */
export const PENDING_DELETE_NIGHTS = 3;

/** One tenant-day as `makoto-lake status` shows it. */
export interface PartitionStatus {
  readonly tenant_id: string;
  readonly dt: string;
  readonly staging_objects: number;
  readonly staging_bytes: number;
  /** Staging objects (key + ETag) the manifest has not folded in. */
  readonly staging_not_covered: number;
  /**
   * Of those, the ones a compaction run should have folded in: written (RUN_CLOCK_TOLERANCE_MS or more)
   * before the partition's current run started, or past their scheduled run plus STATUS_GRACE_MS.
   */
  readonly staging_overdue: number;
  /** The manifest's rows_written (null: never compacted). */
  readonly rows: number | null;
  readonly run_id: string | null;
  readonly finished_at: string | null;
  /** Files in the partition's folder that the current table version does not name (vacuum removes them). */
  readonly stale_parts: number;
  /** Files the current table version names that are gone, or whose size differs. */
  readonly missing_parts: number;
  readonly changed_parts: number;
  /** Records in the partition's compaction quarantine object (0: none). */
  readonly quarantined_records: number;
  /** Why the partition needs attention; empty when it does not. */
  readonly attention: string[];
}

/**
 * Records in the capture quarantine of one day and source (capture files them under the day they were
 * quarantined, not by tenant). status lists every day's: an unreviewed record needs attention whatever day
 * it came.
 */
export interface IngestQuarantineStatus {
  readonly dt: string;
  readonly source: string;
  readonly objects: number;
  readonly records: number;
}

/**
 * The work folder of a split compaction that no live run holds (`compaction-work/…/<split id>/`): its process
 * was killed, or it was abandoned before its work was removed. Nothing reads it; vacuum removes it after the
 * retention (with the parts its reduces placed that no version names), so it is counted, not a reason to look.
 */
export interface AbandonedSplitStatus {
  readonly tenant_id: string;
  readonly dt: string;
  readonly split_id: string;
  readonly objects: number;
  readonly bytes: number;
  /** When the newest of its objects was written. */
  readonly last_written: string;
}

/**
 * One tenant's user deletes that name no day, waiting under `pending/deletes/` for the nightly planner to
 * find their message in the table (docs/ARCHITECTURE.md, "Deletes that name no day").
 */
export interface PendingDeletesStatus {
  readonly tenant_id: string;
  readonly objects: number;
  /** Deletes in the readable objects. */
  readonly deletes: number;
  /** Of those, placed in a day already and kept one more night (the message may still appear in another). */
  readonly placed: number;
  /** Of those, not placed yet: searched and not found in the table, or not searched yet. */
  readonly waiting: number;
  /** When the oldest waiting delete was captured; null when none waits. */
  readonly oldest_waiting: string | null;
  /** Why the oldest waiting delete waits (the planner's note in its line, or that no search has run yet). */
  readonly reason: string | null;
  /** Pending objects that are not gzip NDJSON of deletes: the planner leaves them for an operator. */
  readonly unreadable: readonly string[];
  /** Why the tenant's pending deletes need attention; empty when they do not. */
  readonly attention: string[];
}

export interface LakeStatus {
  readonly now: string;
  readonly partitions: PartitionStatus[];
  readonly ingest_quarantine: IngestQuarantineStatus[];
  /** Every tenant's deletes waiting under pending/deletes/; present only when there are some. */
  readonly pending_deletes?: PendingDeletesStatus[];
  /** Every day's abandoned split work, by tenant, day and split; present only when there is some. */
  readonly abandoned_splits?: AbandonedSplitStatus[];
  /** Partitions needing attention plus ingest-quarantine days (each a reason to look). */
  readonly needs_attention: number;
}

export interface StatusRequest {
  readonly tenants: readonly string[] | 'all';
  /** The JST days to check (YYYY-MM-DD). */
  readonly dates: readonly string[];
  /** Epoch milliseconds the schedule is judged against. */
  readonly now: number;
  /** Judge an older table version (`status --as-of`); default: the current one. */
  readonly asOf?: { version?: number; timestamp?: number };
}

/**
 * The state of each tenant-day, read from the store alone: staging, the table's current version (its files
 * and run manifest), the analytics folder and quarantine. A partition needs attention when
 * - staging is not covered by its manifest although a compaction run should have folded it in: the run that
 *   committed the partition's current version started after the object was written (RUN_CLOCK_TOLERANCE_MS
 *   or more), or the run scheduled for it (02:00 JST the day after the staging object was written, and never
 *   before D+1 02:00 JST for day D) is STATUS_GRACE_MS past;
 * - a file the current table version names is missing or has another size;
 * - it has quarantined records not yet reviewed. Quarantine is an inbox: a record is reviewed once an
 *   operator deleted (or moved) its object. A partition's compaction quarantine is the file of the run that
 *   committed its current version (a later run without rejected lines names none; vacuum removes the files
 *   no retained version names). Ingest (capture) quarantine is per day and source (the tenant may be
 *   unknown) and is read for every day, with one listing of `quarantine/ingest/`, whatever days are checked:
 *   capture files a record under the day it was quarantined, usually not a day anyone checks.
 * - a tenant's user deletes that name no day (`pending/deletes/`, every tenant's) cannot be read, were not
 *   searched by the nightly run due after their capture, or still wait for their message PENDING_DELETE_NIGHTS
 *   nightly runs after it (`pending_deletes`, present only when some wait).
 *
 * Also counted, every day's, without making anything need attention: the work of split compactions that no
 * live run holds (`abandoned_splits`, present only when there is some), which vacuum removes after the
 * retention.
 *
 * @example
 * const status = await lakeStatus(store, { tenants: ['acme'], dates: ['2025-08-11'], now: Date.now() });
 * status.needs_attention; // 0 when healthy
 */
export async function lakeStatus(store: ObjectStore, request: StatusRequest): Promise<LakeStatus> {
  const tenants = request.tenants === 'all' ? await lakeTenants(store) : [...new Set(request.tenants)];
  const dates = [...new Set(request.dates)].sort();
  const pairs = tenants.flatMap((tenant) => dates.map((date) => ({ tenant, date })));
  return partitionsStatus(store, pairs, request.now, request.asOf);
}

/** lakeStatus for given (tenant, date) pairs, e.g. the partitions a nightly run just compacted. */
export async function partitionsStatus(
  store: ObjectStore,
  pairs: readonly { tenant: string; date: string }[],
  now: number,
  /** An older table version (a version number or an instant) to judge instead of the current one. */
  asOf?: { version?: number; timestamp?: number },
): Promise<LakeStatus> {
  const snapshot = await new DeltaTable(store, {}).snapshot(asOf);
  const partitions: PartitionStatus[] = [];
  for (const { tenant, date } of pairs) partitions.push(await partitionStatus(store, snapshot, tenant, date, now));
  return lakeWide(store, partitions, now);
}

/** The lake-wide parts of a status (capture quarantine, pending deletes, abandoned splits) around `partitions`. */
export async function lakeWide(store: ObjectStore, partitions: PartitionStatus[], now: number): Promise<LakeStatus> {
  const ingest = await ingestQuarantine(store);
  const pending = await pendingDeletes(store, now);
  const abandoned = await abandonedSplits(store, now);
  return {
    now: new Date(now).toISOString(),
    partitions,
    ingest_quarantine: ingest,
    ...(pending.length > 0 ? { pending_deletes: pending } : {}),
    ...(abandoned.length > 0 ? { abandoned_splits: abandoned } : {}),
    needs_attention:
      partitions.filter((p) => p.attention.length > 0).length +
      ingest.filter((q) => q.records > 0).length +
      pending.filter((p) => p.attention.length > 0).length,
  };
}

/** One partition's status judged from the table (`snapshot`), as lakeStatus judges every partition. */
export async function partitionStatus(
  store: ObjectStore,
  snapshot: TableSnapshot,
  tenant: string,
  date: string,
  now: number,
): Promise<PartitionStatus> {
  const plan = await planPartition(store, snapshot, tenant, date);
  const visible = (await listAll(store, analyticsPrefix(tenant, date))).filter((o) => isVisibleKey(o.key));
  const listed = new Map(visible.map((o) => [o.key, o]));
  const named = plan.files.map((a) => ({ key: tableKey(a.path), size: a.size }));
  const live = new Set(named.map((o) => o.key));
  const missing = named.filter((o) => !listed.has(o.key)).length;
  const changed = named.filter((o) => {
    const l = listed.get(o.key);
    return l !== undefined && l.size !== o.size;
  }).length;
  // the quarantine of the run that committed the current version, until an operator removes it (reviewed)
  const quarantineKey = plan.files[0]?.tags?.[TAG_QUARANTINE];
  const quarantined = quarantineKey ? await countRecords(store, [await store.head(quarantineKey)]) : 0;
  return judged({
    tenant,
    date,
    now,
    staging: plan.staging,
    manifest: plan.manifest,
    version: snapshot.version,
    parts: { stale: visible.filter((o) => !live.has(o.key)).length, missing, changed, named: plan.files.length },
    quarantined,
  });
}

/** What a partition's status is judged on, however it was read. */
export interface PartitionFacts {
  readonly tenant: string;
  readonly date: string;
  readonly now: number;
  readonly staging: readonly ObjectInfo[];
  readonly manifest: PartitionManifest | undefined;
  /** The table version its files were read at (undefined: from the run's own result). */
  readonly version: number | undefined;
  readonly parts: { readonly stale: number; readonly missing: number; readonly changed: number; readonly named: number };
  readonly quarantined: number;
}

/** A partition's status and why it needs attention (lakeStatus's rules, see there). */
export function judged({ tenant, date, now, staging, manifest, version, parts, quarantined }: PartitionFacts): PartitionStatus {
  const inputs = new Map((manifest?.inputs ?? []).map((i) => [i.key, i.etag]));
  const uncovered = staging.filter((o) => inputs.get(o.key) !== o.etag);
  const attention: string[] = [];
  // the partition's current run listed its staging after it started: an object written before then was there
  const runStarted = manifest ? Date.parse(manifest.started_at) : Number.NaN;
  const missed = uncovered.filter((o) => o.lastModified.getTime() + RUN_CLOCK_TOLERANCE_MS <= runStarted);
  const late = uncovered.filter((o) => !missed.includes(o) && now >= dueAt(date, o) + STATUS_GRACE_MS);
  const overdue = missed.length + late.length;
  if (missed.length > 0 && manifest) {
    const n = missed.length;
    attention.push(
      `${n} staging object${n === 1 ? '' : 's'} written before run ${manifest.run_id} started (${manifest.started_at}) and not folded in by it`,
    );
  }
  if (late.length > 0) {
    attention.push(
      `${late.length} staging object${late.length === 1 ? '' : 's'} not compacted ${manifest ? `since run ${manifest.run_id}` : 'ever'} (due ${dueText(date, late)})`,
    );
  }
  if (parts.missing + parts.changed > 0) {
    const what = [parts.missing > 0 ? `${parts.missing} missing` : '', parts.changed > 0 ? `${parts.changed} changed` : '']
      .filter(Boolean)
      .join(', ');
    attention.push(`table version ${version} names files that are not as committed: ${what}`);
  }
  if (parts.named > 0 && !manifest) attention.push('run manifest unreadable');
  if (quarantined > 0) attention.push(`${quarantined} quarantined record${quarantined === 1 ? '' : 's'} not reviewed`);
  return {
    tenant_id: tenant,
    dt: date,
    staging_objects: staging.length,
    staging_bytes: staging.reduce((n, o) => n + o.size, 0),
    staging_not_covered: uncovered.length,
    staging_overdue: overdue,
    rows: manifest?.rows_written ?? null,
    run_id: manifest?.run_id ?? null,
    finished_at: manifest?.finished_at ?? null,
    stale_parts: parts.stale,
    missing_parts: parts.missing,
    changed_parts: parts.changed,
    quarantined_records: quarantined,
    attention,
  };
}

/**
 * When the run that should fold `object` in is scheduled: the first 02:00 JST at or after the later of its
 * write and the end of its day (an object written late for an old day waits for the next nightly run).
 */
function dueAt(date: string, object: ObjectInfo): number {
  const from = Math.max(object.lastModified.getTime(), jstDayRange(date).endMs);
  const run = jstDayRange(jstDate(from)).startMs + RUN_HOUR_JST * HOUR_MS;
  return run >= from ? run : run + 24 * HOUR_MS;
}

/** "2025-08-12 02:00 JST": the earliest due run of the uncovered objects. */
function dueText(date: string, uncovered: readonly ObjectInfo[]): string {
  const at = Math.min(...uncovered.map((o) => dueAt(date, o)));
  return `${jstDate(at)} 0${RUN_HOUR_JST}:00 JST`;
}

/**
 * Capture quarantine objects and records per day and source, every day's, from one listing of
 * `quarantine/ingest/` (keys `quarantine/ingest/source=S/dt=D/name`), by day then source.
 */
async function ingestQuarantine(store: ObjectStore): Promise<IngestQuarantineStatus[]> {
  const root = `${QUARANTINE_ROOT}ingest/`;
  const groups = new Map<string, { dt: string; source: string; objects: ObjectInfo[] }>();
  for (const object of await listAll(store, root)) {
    const match = /^source=([^/]+)\/dt=(\d{4}-\d{2}-\d{2})\/[^/]+$/.exec(object.key.slice(root.length));
    if (!match) continue;
    const [, source = '', dt = ''] = match;
    const id = `${dt}/${source}`;
    const group = groups.get(id) ?? { dt, source, objects: [] };
    group.objects.push(object);
    groups.set(id, group);
  }
  const found: IngestQuarantineStatus[] = [];
  for (const id of [...groups.keys()].sort()) {
    const { dt, source, objects } = groups.get(id) as { dt: string; source: string; objects: ObjectInfo[] };
    found.push({ dt, source, objects: objects.length, records: await countRecords(store, objects) });
  }
  return found;
}

/**
 * Every tenant's pending deletes (one listing of `pending/deletes/messages/`, one GET per object). They need
 * attention when an object cannot be read (the planner leaves it), when a delete was not searched by the
 * nightly run after its capture (plus the grace: the planner is not running), or when one still waits for
 * its message PENDING_DELETE_NIGHTS nightly runs (plus the grace) after its capture.
 */
async function pendingDeletes(store: ObjectStore, now: number): Promise<PendingDeletesStatus[]> {
  const found: PendingDeletesStatus[] = [];
  const byTenant = pendingByTenant(await listAll(store, PENDING_DELETES_ROOT));
  for (const [tenant, objects] of [...byTenant].sort(([a], [b]) => a.localeCompare(b))) {
    const lines: PendingDeleteLine[] = [];
    const unreadable: string[] = [];
    for (const object of objects) {
      let read: PendingDeleteLine[] | undefined;
      try {
        read = await readPending(store, object.key);
      } catch (error) {
        if (!(error instanceof ObjectNotFoundError)) throw error;
        continue; // placed and removed since the listing
      }
      if (read) lines.push(...read);
      else unreadable.push(object.key);
    }
    const waiting = lines.filter((l) => (l.placed_in ?? []).length === 0).sort((a, b) => a.ingested_at - b.ingested_at);
    const oldest = waiting[0];
    const attention: string[] = [];
    if (unreadable.length > 0) {
      const n = unreadable.length;
      attention.push(
        `${n} pending-deletes object${n === 1 ? '' : 's'} cannot be read (the nightly run leaves ${n === 1 ? 'it' : 'them'}): ${unreadable[0]}`,
      );
    }
    const unsearched = waiting.filter((l) => l.checked_at === undefined && now >= nightlyRun(l.ingested_at, 1) + STATUS_GRACE_MS);
    if (unsearched.length > 0) {
      const n = unsearched.length;
      attention.push(
        `${n} delete${n === 1 ? '' : 's'} not searched by the nightly run due ${jstRunText(nightlyRun((unsearched[0] as PendingDeleteLine).ingested_at, 1))}`,
      );
    }
    const stuck = waiting.filter(
      (l) => l.checked_at !== undefined && now >= nightlyRun(l.ingested_at, PENDING_DELETE_NIGHTS) + STATUS_GRACE_MS,
    );
    if (stuck.length > 0) {
      const n = stuck.length;
      attention.push(
        `${n} delete${n === 1 ? '' : 's'} still waiting after ${PENDING_DELETE_NIGHTS} nightly runs for a message no day of the table holds (oldest captured ${new Date((stuck[0] as PendingDeleteLine).ingested_at).toISOString()}): backfill its day, or remove the delete`,
      );
    }
    found.push({
      tenant_id: tenant,
      objects: objects.length,
      deletes: lines.length,
      placed: lines.length - waiting.length,
      waiting: waiting.length,
      oldest_waiting: oldest ? new Date(oldest.ingested_at).toISOString() : null,
      reason: oldest ? (oldest.waiting ?? 'not searched yet: the nightly run searches the table for its message') : null,
      unreadable,
      attention,
    });
  }
  return found;
}

/** The `n`th nightly run (02:00 JST) at or after `ms`: n = 1 is the first. */
function nightlyRun(ms: number, n: number): number {
  const run = jstDayRange(jstDate(ms)).startMs + RUN_HOUR_JST * HOUR_MS;
  return (run >= ms ? run : run + 24 * HOUR_MS) + (n - 1) * 24 * HOUR_MS;
}

/** "2025-08-12 02:00 JST". */
function jstRunText(ms: number): string {
  return `${jstDate(ms)} 0${RUN_HOUR_JST}:00 JST`;
}

/**
 * Split work folders (one listing of `compaction-work/messages/`, every day's) whose split holds no live
 * lease: the partition's lease names another run or none, or it could be taken over (lapsed, or its holder a
 * process of this host that is gone). A split under way keeps its lease, so its work is not counted.
 */
async function abandonedSplits(store: ObjectStore, now: number): Promise<AbandonedSplitStatus[]> {
  const groups = new Map<string, { tenant: string; dt: string; split: string; objects: ObjectInfo[] }>();
  for (const object of await listAll(store, COMPACTION_WORK_ROOT)) {
    const match = /^tenant_id=([^/]+)\/dt=(\d{4}-\d{2}-\d{2})\/([^/]+)\//.exec(object.key.slice(COMPACTION_WORK_ROOT.length));
    if (!match) continue;
    const [, tenant = '', dt = '', split = ''] = match;
    if (tenantIdProblem(tenant) !== undefined) continue;
    const id = `${tenant}/${dt}/${split}`;
    const group = groups.get(id) ?? { tenant, dt, split, objects: [] };
    group.objects.push(object);
    groups.set(id, group);
  }
  const found: AbandonedSplitStatus[] = [];
  for (const { tenant, dt, split, objects } of groups.values()) {
    const lease = await readLease(store, lockKey(tenant, dt));
    if (lease && lease.body.run_id === split && !canTakeOver(lease.body, now)) continue;
    found.push({
      tenant_id: tenant,
      dt,
      split_id: split,
      objects: objects.length,
      bytes: objects.reduce((n, o) => n + o.size, 0),
      last_written: new Date(Math.max(...objects.map((o) => o.lastModified.getTime()))).toISOString(),
    });
  }
  return found;
}

/** Lines in gzip NDJSON quarantine objects (a missing one, deleted since the listing, counts 0). */
async function countRecords(store: ObjectStore, objects: readonly (ObjectInfo | undefined)[]): Promise<number> {
  let records = 0;
  for (const o of objects) {
    if (!o) continue;
    try {
      const text = gunzipSync(await getBytes(store, o.key)).toString('utf8');
      records += text.split('\n').filter((line) => line.trim() !== '').length;
    } catch (error) {
      if (!(error instanceof ObjectNotFoundError)) throw error;
    }
  }
  return records;
}

/** The days `days` long ending at `date` (oldest first). */
export function statusDates(date: string, days: number): string[] {
  return Array.from({ length: days }, (_, i) => addDays(date, i - days + 1));
}

/**
 * The human table: one line per tenant-day, then the ingest quarantine per day and source (if any), then
 * what needs attention.
 */
export function statusTable(status: LakeStatus): string {
  const rows = status.partitions.map((p) => [
    p.tenant_id,
    p.dt,
    p.staging_objects,
    p.staging_bytes,
    p.staging_objects === 0 ? '-' : p.staging_not_covered === 0 ? 'yes' : `no (${p.staging_not_covered} new)`,
    p.rows ?? '-',
    p.run_id ?? '-',
    p.finished_at ?? '-',
    partsText(p),
    p.quarantined_records,
    p.attention.length > 0 ? p.attention.join('; ') : '-',
  ]);
  const lines = [
    table([
      ['tenant', 'dt', 'staging', 'bytes', 'covered', 'rows', 'last run', 'finished', 'parts', 'quarantined', 'needs attention'],
      ...rows,
    ]),
  ];
  if (status.ingest_quarantine.length > 0) {
    lines.push(
      '',
      table([
        ['ingest quarantine dt', 'source', 'objects', 'records', 'needs attention'],
        ...status.ingest_quarantine.map((q) => [
          q.dt,
          q.source,
          q.objects,
          q.records,
          q.records > 0 ? `${q.records} quarantined record${q.records === 1 ? '' : 's'} not reviewed` : '-',
        ]),
      ]),
    );
  }
  if (status.pending_deletes) {
    lines.push(
      '',
      table([
        ['pending deletes tenant', 'objects', 'deletes', 'placed', 'waiting', 'oldest waiting', 'why', 'needs attention'],
        ...status.pending_deletes.map((p) => [
          p.tenant_id,
          p.objects,
          p.deletes,
          p.placed,
          p.waiting,
          p.oldest_waiting ?? '-',
          p.reason ?? '-',
          p.attention.length > 0 ? p.attention.join('; ') : '-',
        ]),
      ]),
    );
  }
  if (status.abandoned_splits) {
    lines.push(
      '',
      table([
        ['abandoned split tenant', 'dt', 'split', 'objects', 'bytes', 'last written'],
        ...status.abandoned_splits.map((a) => [a.tenant_id, a.dt, a.split_id, a.objects, a.bytes, a.last_written]),
      ]),
      '(split work no live run holds: vacuum removes it after the retention)',
    );
  }
  lines.push(
    '',
    status.needs_attention === 0
      ? 'nothing needs attention'
      : `${status.needs_attention} need${status.needs_attention === 1 ? 's' : ''} attention`,
  );
  return lines.join('\n');
}

/** "ok", "1 stale, 1 missing", or "-" for a partition with neither manifest nor parts. */
function partsText(p: PartitionStatus): string {
  const counted = [
    ...(p.stale_parts > 0 ? [`${p.stale_parts} stale`] : []),
    ...(p.missing_parts > 0 ? [`${p.missing_parts} missing`] : []),
    ...(p.changed_parts > 0 ? [`${p.changed_parts} changed`] : []),
  ];
  if (counted.length > 0) return counted.join(', ');
  return p.run_id === null ? '-' : 'ok';
}
