import { gunzipSync } from 'node:zlib';
import { lakeTenants } from '../compaction/lateData.js';
import { planPartition } from '../compaction/planPartition.js';
import { errorMessage } from '../errors.js';
import { analyticsPrefix, isVisibleKey, QUARANTINE_ROOT } from '../staging/layout.js';
import { ObjectNotFoundError } from '../store/errors.js';
import { getBytes, listAll, type ObjectInfo, type ObjectStore } from '../store/ObjectStore.js';
import { DeltaTable, TAG_QUARANTINE, type TableSnapshot, tableKey } from '../table/deltaTable.js';
import { addDays, jstDate, jstDayRange } from '../time/jst.js';
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

export interface LakeStatus {
  readonly now: string;
  readonly partitions: PartitionStatus[];
  readonly ingest_quarantine: IngestQuarantineStatus[];
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
  const partitions: PartitionStatus[] = [];
  const snapshot = await new DeltaTable(store, {}).snapshot(asOf);
  for (const { tenant, date } of pairs) partitions.push(await partitionStatus(store, snapshot, tenant, date, now));
  const ingest = await ingestQuarantine(store);
  return {
    now: new Date(now).toISOString(),
    partitions,
    ingest_quarantine: ingest,
    needs_attention: partitions.filter((p) => p.attention.length > 0).length + ingest.filter((q) => q.records > 0).length,
  };
}

/**
 * The status check a compaction run ends with: partitionsStatus over the partitions it ran that did not fail
 * (the run already counts those). A check the store refuses comes back as its error, never thrown: it must
 * not fail a run whose partitions committed.
 */
export async function statusAfterRun(
  store: ObjectStore,
  results: readonly { tenant: string; date: string; status: string }[],
  at: number,
): Promise<{ checked: number; status: LakeStatus } | { checked: number; error: string }> {
  const checked = results.filter((r) => r.status !== 'failed').map(({ tenant, date }) => ({ tenant, date }));
  try {
    return { checked: checked.length, status: await partitionsStatus(store, checked, at) };
  } catch (error) {
    return { checked: checked.length, error: errorMessage(error) };
  }
}

async function partitionStatus(
  store: ObjectStore,
  snapshot: TableSnapshot,
  tenant: string,
  date: string,
  now: number,
): Promise<PartitionStatus> {
  const plan = await planPartition(store, snapshot, tenant, date);
  const manifest = plan.manifest;
  const inputs = new Map((manifest?.inputs ?? []).map((i) => [i.key, i.etag]));
  const uncovered = plan.staging.filter((o) => inputs.get(o.key) !== o.etag);
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
  if (missing + changed > 0) {
    const what = [missing > 0 ? `${missing} missing` : '', changed > 0 ? `${changed} changed` : ''].filter(Boolean).join(', ');
    attention.push(`table version ${snapshot.version} names files that are not as committed: ${what}`);
  }
  if (plan.files.length > 0 && !manifest) attention.push('run manifest unreadable');
  if (quarantined > 0) attention.push(`${quarantined} quarantined record${quarantined === 1 ? '' : 's'} not reviewed`);
  return {
    tenant_id: tenant,
    dt: date,
    staging_objects: plan.staging.length,
    staging_bytes: plan.staging.reduce((n, o) => n + o.size, 0),
    staging_not_covered: uncovered.length,
    staging_overdue: overdue,
    rows: manifest?.rows_written ?? null,
    run_id: manifest?.run_id ?? null,
    finished_at: manifest?.finished_at ?? null,
    stale_parts: visible.filter((o) => !live.has(o.key)).length,
    missing_parts: missing,
    changed_parts: changed,
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
