import { errorMessage } from '../../core/errors.js';
import { DEFAULT_FIELD_MAPPING, type FieldMapping } from '../../core/model/fieldMapping.js';
import { normaliseChange, type SourceChange } from '../../core/model/normalise.js';
import { backfillCheckpointKey, stagingPrefix } from '../../core/staging/layout.js';
import { assertTenantId, tenantIdProblem } from '../../core/tenant.js';
import { jstDayRange, parseDate } from '../../core/time/jst.js';
import { mapSettled } from '../../core/util/concurrency.js';
import type { SourcePage, SourceReader, StreamingSourceReader } from '../../ports/SourceReader.js';
import { listAll, type ObjectStore } from '../../ports/store/ObjectStore.js';
import { readJson } from '../../ports/store/readJson.js';
import { describeFailures, ingestBatch } from '../ingest/ingestBatch.js';
import { mergeQuarantine, type QuarantineReason } from '../ingest/quarantineSummary.js';
import { type StagedDay, stagedDays } from '../ingest/stagedDays.js';
import { backfillChange } from './backfillChange.js';
import { stageBackfillMoves } from './backfillMoves.js';
import { BackfillError } from './errors.js';

export interface BackfillRequest {
  readonly store: ObjectStore;
  readonly reader: SourceReader;
  /** The JST day, YYYY-MM-DD. */
  readonly date: string;
  readonly tenants: readonly string[];
  readonly mapping?: FieldMapping;
  /** Offboarded tenants (`offboardedTenants`, read once by the caller): their records are quarantined with the reason. */
  readonly refused?: ReadonlySet<string>;
  /** The folder below which the move lookup's DuckDB downloads and spills (TEMP_DIR). Default the OS temp folder. */
  readonly workDirectory?: string;
  /** Tenants read at once. Default 4. */
  readonly concurrency?: number;
  /** Records per staging object. Default 5000. */
  readonly recordsPerObject?: number;
  /** Ignore (and replace) the checkpoint of an interrupted run instead of resuming it. */
  readonly restart?: boolean;
  readonly now?: () => number;
  readonly onResult?: (result: TenantBackfillResult) => void;
  /** After every page read: the tenant's running totals. */
  readonly onProgress?: (progress: BackfillProgress) => void;
}

export interface BackfillProgress {
  readonly tenant: string;
  readonly date: string;
  /** Items the reader returned so far. */
  readonly read: number;
  /** Of those, the items of this tenant and day (staged, or quarantined for their own fault). */
  readonly matched: number;
  /** Records written to staging so far (objects are written every `recordsPerObject` matched items). */
  readonly staged: number;
  /** Items that matched no tenant (quarantined), read in this tenant's pass. */
  readonly noTenant: number;
  readonly consumedCapacity: number;
}

export interface TenantBackfillResult {
  readonly tenant: string;
  readonly date: string;
  readonly status: 'ok' | 'failed';
  /** Items the reader returned. */
  readonly read: number;
  /** Items outside the tenant's JST day (a widened query), not staged. */
  readonly outside: number;
  /** Items of this tenant and day: read − outside − noTenant. */
  readonly matched: number;
  /**
   * Items whose tenant cannot be read (no tenant field FIELD_MAPPING names, or an invalid tenant id):
   * quarantined, and counted in `quarantined`. Only the first tenant's pass asks the reader for them.
   */
  readonly noTenant: number;
  readonly staged: number;
  readonly quarantined: number;
  /** The quarantined records per reason. */
  readonly quarantine: readonly QuarantineReason[];
  /** Staging objects written, in order. */
  readonly objects: readonly string[];
  /** The (tenant, day) partition it staged into: this tenant and the backfilled day, or none. */
  readonly days: readonly StagedDay[];
  /** Backfill objects of an earlier run of this tenant-day that this run replaced. */
  readonly removed: number;
  /** The page an interrupted run had reached, when this run resumed from its checkpoint. */
  readonly resumedAfterObject?: number;
  /** Read capacity consumed (readers that report it). */
  readonly consumedCapacity: number;
  readonly durationMs: number;
  readonly error?: string;
}

export interface BackfillSummary {
  readonly date: string;
  readonly source: string;
  /** Every tenant completed (quarantined records are counted apart, in `quarantined`). */
  readonly ok: boolean;
  readonly quarantined: number;
  readonly quarantine: readonly QuarantineReason[];
  /** Every (tenant, day) partition the run staged into, ordered by day then tenant: the days to compact and check. */
  readonly days: readonly StagedDay[];
  readonly results: readonly TenantBackfillResult[];
}

/** What a checkpoint keeps: enough to continue after the last page whose records are safely staged. */
interface Checkpoint {
  readonly location: string;
  readonly cursor: string;
  readonly objects: readonly string[];
  readonly read: number;
  readonly outside: number;
  /** Absent in a checkpoint written before it was counted. */
  readonly noTenant?: number;
  readonly staged: number;
  readonly quarantined: number;
  readonly quarantine: readonly QuarantineReason[];
  readonly consumedCapacity: number;
}

/**
 * Re-reads one JST day of messages per tenant straight from the source into staging, for days whose
 * staging was lost or that capture missed; compaction then runs as usual. Shared by every source: the
 * reader yields the items, this turns them into changes at the backfill position timed by when their image
 * was true (`ingested_at`: the instant this tenant's read starts, or an export's time; see
 * BACKFILL_POSITION), keeps exactly the tenant's day and writes staging through the same
 * ingestBatch as the change-feed handlers. Objects are named `backfill-<source>-<date>-<tenant>-p<n>`, so
 * a re-run replaces the previous run's objects (and removes its extra ones) instead of adding versions.
 * One tenant's failure is reported and never stops the others.
 *
 * Readers that give page cursors make the run resumable: after every staging object written at a page
 * boundary, a checkpoint (`checkpoints/backfill/...`) records the cursor, the objects and the counts; a
 * later run of the same tenant-day from the same source continues from there, and deletes the checkpoint
 * when it completes.
 *
 * @example
 * const summary = await runBackfill({ store, reader: new CosmosSourceReader(...), date: '2025-08-11', tenants: ['a'] });
 */
export async function runBackfill(request: BackfillRequest): Promise<BackfillSummary> {
  const date = parseDate(request.date, 'backfill date');
  const tenants = request.tenants.map((t) => assertTenantId(t));
  // Items that match no tenant are the same for every tenant's read: only the first tenant's pass asks
  // for them (and quarantines them), so each is counted once.
  const settled = await mapSettled(tenants, request.concurrency ?? 4, async (tenant) => {
    const result = await backfillTenant(request, tenant, date, tenant === tenants[0]);
    request.onResult?.(result);
    return result;
  });
  const results = settled.map((s, i) => {
    if (s.status === 'fulfilled') return s.value;
    // backfillTenant reports its own failures; this is only reached if onResult threw.
    return failed(tenants[i] as string, date, 0, s.reason);
  });
  return {
    date,
    source: request.reader.source,
    ok: results.every((r) => r.status === 'ok'),
    quarantined: results.reduce((n, r) => n + r.quarantined, 0),
    quarantine: mergeQuarantine(results.map((r) => r.quarantine)),
    days: stagedDays(results.flatMap((r) => r.objects)),
    results,
  };
}

async function backfillTenant(
  request: BackfillRequest,
  tenant: string,
  date: string,
  untenanted: boolean,
): Promise<TenantBackfillResult> {
  const now = request.now ?? Date.now;
  const started = now();
  const { store, reader } = request;
  const perObject = request.recordsPerObject ?? 5000;
  // Taken before the first read: every item read after it shows every write captured before it (the time
  // a backfilled version is ordered by against captured ones; docs/ARCHITECTURE.md, "Order by time").
  const ingestedAt = now();
  const baseName = `backfill-${reader.source}-${date}-${tenant}`;
  const checkpointKey = backfillCheckpointKey(reader.source, tenant, date);
  const resume = request.restart ? undefined : await readCheckpoint(store, checkpointKey, reader.location);
  let read = resume?.read ?? 0;
  let outside = resume?.outside ?? 0;
  let noTenant = resume?.noTenant ?? 0;
  let staged = resume?.staged ?? 0;
  let quarantined = resume?.quarantined ?? 0;
  let quarantine: readonly QuarantineReason[] = resume?.quarantine ?? [];
  let consumedCapacity = resume?.consumedCapacity ?? 0;
  const objects: string[] = [...(resume?.objects ?? [])];
  let page = objects.length;
  let pending: SourceChange[] = [];
  const mapping = request.mapping ?? DEFAULT_FIELD_MAPPING;
  const toChange = (item: unknown): SourceChange => {
    const change = reader.change ? reader.change(item) : backfillChange(reader.source, item);
    const name = reader.describe?.(item);
    return name === undefined ? change : { ...change, name };
  };

  const flush = async () => {
    if (pending.length === 0) return;
    page += 1;
    const batchId = `${baseName}-p${String(page).padStart(5, '0')}`;
    const result = await stageBatch(
      store,
      pending,
      { source: reader.source, batchId, now: ingestedAt, mapping: request.mapping, refused: request.refused },
      { tenant, date },
    );
    staged += result.staged;
    quarantined += result.quarantined;
    quarantine = mergeQuarantine([quarantine, result.quarantine]);
    const stagingObject = result.written.map((w) => w.key).find((k) => !k.startsWith('quarantine/'));
    // A page of only quarantined records still takes its number, so names stay stable on resume.
    objects.push(stagingObject ?? '');
    pending = [];
  };

  try {
    const day = { date, ...jstDayRange(date) };
    for await (const raw of reader.pages(tenant, day, resume?.cursor, { untenanted })) {
      const { items, cursor, consumedCapacity: cost } = pageOf(raw);
      consumedCapacity += cost ?? 0;
      for (const item of items) {
        read += 1;
        const change = toChange(item);
        const normalised = normaliseChange(change, { source: reader.source, ingestedAt, mapping: request.mapping });
        // Rejected items go on to ingestBatch, which quarantines them with the reason.
        if (normalised.ok && (normalised.record.tenant_id !== tenant || normalised.record.dt !== date)) {
          outside += 1;
          continue;
        }
        if (!normalised.ok && !hasTenant(change, mapping)) noTenant += 1;
        pending.push(change);
      }
      request.onProgress?.({
        tenant,
        date,
        read,
        matched: read - outside - noTenant,
        staged,
        noTenant,
        consumedCapacity,
      });
      // Objects end at page boundaries, so a checkpoint's cursor never splits a page.
      if (pending.length >= perObject) {
        await flush();
        if (cursor !== undefined) {
          await writeCheckpoint(store, checkpointKey, {
            location: reader.location,
            cursor,
            objects,
            read,
            outside,
            noTenant,
            staged,
            quarantined,
            quarantine,
            consumedCapacity,
          });
        }
      }
    }
    await flush();
    // Only after every page is safely written: drop the extra objects of an earlier, longer run.
    const current = new Set(objects);
    let removed = 0;
    for (const old of await listAll(store, `${stagingPrefix(tenant, date)}${baseName}-p`)) {
      if (current.has(old.key)) continue;
      await store.delete(old.key);
      removed += 1;
    }
    // One message, one partition: out of the other days the table holds the backfilled messages in.
    const [moves] = await stageBackfillMoves(
      store,
      reader.source,
      [{ tenant, name: baseName, versions: objects.filter((o) => o !== '') }],
      { workDirectory: request.workDirectory },
    );
    if (moves?.error !== undefined) throw moves.error;
    const written = [...objects.filter((o) => o !== ''), ...(moves?.staged ?? [])];
    if (await store.head(checkpointKey)) await store.delete(checkpointKey);
    return {
      tenant,
      date,
      status: 'ok',
      read,
      outside,
      matched: read - outside - noTenant,
      noTenant,
      staged,
      quarantined,
      quarantine,
      objects: written,
      days: stagedDays(written),
      removed,
      ...(resume ? { resumedAfterObject: resume.objects.length } : {}),
      consumedCapacity,
      durationMs: now() - started,
    };
  } catch (error) {
    return {
      ...failed(tenant, date, now() - started, error),
      read,
      outside,
      matched: read - outside - noTenant,
      noTenant,
      staged,
      quarantined,
      quarantine,
      objects: objects.filter((o) => o !== ''),
      days: stagedDays(objects),
      consumedCapacity,
    };
  }
}

/** Whether the change's item has a valid tenant id in a field FIELD_MAPPING names (the first one present). */
function hasTenant(change: SourceChange, mapping: FieldMapping): boolean {
  const item = change.item;
  if (typeof item !== 'object' || item === null) return false;
  const name = mapping.tenant_id.find((n) => item[n] !== undefined && item[n] !== null);
  return name !== undefined && tenantIdProblem(item[name]) === undefined;
}

function pageOf(raw: readonly unknown[] | SourcePage): SourcePage {
  return Array.isArray(raw) ? { items: raw } : (raw as SourcePage);
}

async function readCheckpoint(store: ObjectStore, key: string, location: string): Promise<Checkpoint | undefined> {
  const checkpoint = await readJson<Checkpoint>(store, key, 'backfill checkpoint');
  // A checkpoint of another table or export is not a place to resume from.
  return checkpoint?.location === location ? checkpoint : undefined;
}

async function writeCheckpoint(store: ObjectStore, key: string, checkpoint: Checkpoint): Promise<void> {
  await store.putBytes(key, JSON.stringify(checkpoint), { contentType: 'application/json' });
}

function failed(tenant: string, date: string, durationMs: number, error: unknown): TenantBackfillResult {
  return {
    tenant,
    date,
    status: 'failed',
    read: 0,
    outside: 0,
    matched: 0,
    noTenant: 0,
    staged: 0,
    quarantined: 0,
    quarantine: [],
    objects: [],
    days: [],
    removed: 0,
    consumedCapacity: 0,
    durationMs,
    error: errorMessage(error),
  };
}

export interface ExportBackfillRequest extends Omit<BackfillRequest, 'date' | 'reader' | 'restart' | 'tenants'> {
  readonly reader: StreamingSourceReader;
  /** The tenants to stage, or 'all' (`TENANT_ID=*`): every tenant the source holds. */
  readonly tenants: readonly string[] | 'all';
  /** The JST day, YYYY-MM-DD; absent: every day the source holds. */
  readonly date?: string;
  /**
   * Records held for staging across all tenant-days at once; past it the fullest tenant-day is written
   * early (in a smaller object). Default 2 × recordsPerObject.
   */
  readonly maxPending?: number;
}

/** The summary's `date` of a backfill of every day. */
export const ALL_DAYS = 'all';

/** One tenant-day of a one-pass backfill: its running counts and the records waiting to be staged. */
interface Bucket {
  readonly tenant: string;
  readonly date: string;
  read: number;
  noTenant: number;
  staged: number;
  quarantined: number;
  quarantine: readonly QuarantineReason[];
  readonly objects: string[];
  pending: SourceChange[];
  error?: unknown;
  durationMs: number;
}

/**
 * A backfill from a source read in one pass (a DynamoDB export): every version is read once, routed to its
 * tenant-day and staged as it goes, in objects of `recordsPerObject` records per tenant-day (fewer when
 * more than `maxPending` records wait across tenant-days), so memory holds one data file's working set
 * and the pending records, never the source. With `date`, only that JST day is staged (and every tenant
 * gets a result, as runBackfill gives); without it, every day of the asked tenants the source holds.
 * `tenants: 'all'` stages every tenant found (a result per tenant-day found). Items whose version fails to
 * normalise are quarantined through their tenant's object of `date` (or of their own day when it can be
 * read, else the `undated` object); items with no valid tenant go with the first tenant's (with 'all':
 * under NO_TENANT), each once. Objects are named and replaced as runBackfill names them, with the reader's
 * `stagingName` after the source (`backfill-dynamodb-export-<hash of PREFIX>-…`). Not resumable: a
 * re-run reads the source again and replaces the objects.
 *
 * @example
 * const summary = await runExportBackfill({ store, reader: new DynamoExportReader(store, 'exports/t'), tenants: ['a'] });
 */
export async function runExportBackfill(request: ExportBackfillRequest): Promise<BackfillSummary> {
  const date = request.date === undefined ? undefined : parseDate(request.date, 'backfill date');
  const all = request.tenants === 'all';
  const tenants = all ? [] : (request.tenants as readonly string[]).map((t) => assertTenantId(t));
  const asked = new Set(tenants);
  const isAsked = (tenant: string) => all || asked.has(tenant);
  const untenantedOwner = all ? NO_TENANT : (tenants[0] as string);
  const { store, reader } = request;
  const now = request.now ?? Date.now;
  const ingestedAt = now();
  const perObject = request.recordsPerObject ?? 5000;
  const maxPending = Math.max(perObject, request.maxPending ?? 2 * perObject);
  const mapping = request.mapping ?? DEFAULT_FIELD_MAPPING;
  const buckets = new Map<string, Bucket>();
  /** Per tenant-day: its move-out objects in other days (from previous images, then from the table lookup). */
  const movedOut = new Map<Bucket, string[]>();
  let pendingTotal = 0;
  const bucket = (tenant: string, day: string): Bucket => {
    const key = `${day}\u0000${tenant}`;
    let found = buckets.get(key);
    if (!found) {
      found = {
        tenant,
        date: day,
        read: 0,
        noTenant: 0,
        staged: 0,
        quarantined: 0,
        quarantine: [],
        objects: [],
        pending: [],
        durationMs: 0,
      };
      buckets.set(key, found);
    }
    return found;
  };
  if (date !== undefined) for (const tenant of tenants) bucket(tenant, date);
  const sourceName = reader.stagingName === undefined ? reader.source : `${reader.source}-${reader.stagingName}`;
  const baseName = (b: Bucket) => `backfill-${sourceName}-${b.date}-${b.tenant === NO_TENANT ? 'no-tenant' : b.tenant}`;
  const progress = (b: Bucket) =>
    request.onProgress?.({
      tenant: b.tenant,
      date: b.date,
      read: b.read,
      matched: b.read - b.noTenant,
      staged: b.staged,
      noTenant: b.noTenant,
      consumedCapacity: 0,
    });

  const flush = async (b: Bucket) => {
    if (b.pending.length === 0) return;
    const records = b.pending;
    pendingTotal -= records.length;
    b.pending = [];
    if (b.error !== undefined) return;
    const started = now();
    const batchId = `${baseName(b)}-p${String(b.objects.length + 1).padStart(5, '0')}`;
    try {
      const result = await stageBatch(
        store,
        records,
        { source: reader.source, batchId, now: ingestedAt, mapping: request.mapping, refused: request.refused },
        { tenant: b.tenant, date: b.date },
      );
      b.staged += result.staged;
      b.quarantined += result.quarantined;
      b.quarantine = mergeQuarantine([b.quarantine, result.quarantine]);
      // A page of only quarantined records still takes its number, so names stay stable. Keys after the
      // first are move-outs from previous images (an incremental export's OldImage), in other days.
      const keys = result.written.map((w) => w.key).filter((k) => !k.startsWith('quarantine/'));
      b.objects.push(keys[0] ?? '');
      movedOut.set(b, [...(movedOut.get(b) ?? []), ...keys.slice(1)]);
    } catch (error) {
      b.error = error;
    }
    b.durationMs += now() - started;
    progress(b);
  };

  let failure: unknown;
  try {
    for await (const item of reader.versions()) {
      const change = toChange(reader, item);
      const normalised = normaliseChange(change, { source: reader.source, ingestedAt, mapping: request.mapping });
      let target: Bucket | undefined;
      let untenanted = false;
      if (normalised.ok) {
        const { tenant_id: tenant, dt } = normalised.record;
        if (isAsked(tenant) && (date === undefined || dt === date)) target = bucket(tenant, dt);
      } else if (hasTenant(change, mapping)) {
        const owner = ownerOf(change, mapping);
        if (owner !== undefined && isAsked(owner)) target = bucket(owner, date ?? UNDATED);
      } else {
        untenanted = true;
        target = bucket(untenantedOwner, date ?? UNDATED);
      }
      if (!target) continue;
      target.read += 1;
      if (untenanted) target.noTenant += 1;
      target.pending.push(change);
      pendingTotal += 1;
      if (target.pending.length >= perObject) await flush(target);
      else if (pendingTotal >= maxPending) {
        let fullest = target;
        for (const b of buckets.values()) if (b.pending.length > fullest.pending.length) fullest = b;
        await flush(fullest);
      }
    }
    for (const b of buckets.values()) await flush(b);
    // One message, one partition: out of the other days the table holds the backfilled messages in.
    const staged = [...buckets.values()].filter((b) => b.tenant !== NO_TENANT && b.date !== UNDATED && b.error === undefined);
    const moves = await stageBackfillMoves(
      store,
      reader.source,
      staged.map((b) => ({
        tenant: b.tenant,
        name: baseName(b),
        versions: b.objects.filter((o) => o !== ''),
        moveOuts: movedOut.get(b) ?? [],
      })),
      { workDirectory: request.workDirectory },
    );
    staged.forEach((b, i) => {
      const m = moves[i];
      if (m?.error !== undefined) b.error = m.error;
      else movedOut.set(b, [...(movedOut.get(b) ?? []), ...(m?.staged ?? [])]);
    });
  } catch (error) {
    failure = error;
  }

  const results: TenantBackfillResult[] = [];
  // Asked tenants in the order asked; with 'all', by name (NO_TENANT, '*', sorts first).
  const order = (b: Bucket) => (all ? 0 : tenants.indexOf(b.tenant));
  const sorted = [...buckets.values()].sort(
    (a, b) => a.date.localeCompare(b.date) || order(a) - order(b) || a.tenant.localeCompare(b.tenant),
  );
  if (sorted.length === 0 && failure !== undefined) {
    for (const tenant of all ? [NO_TENANT] : tenants) results.push(failed(tenant, date ?? ALL_DAYS, now() - ingestedAt, failure));
  }
  for (const b of sorted) {
    const error = failure ?? b.error;
    let removed = 0;
    if (error === undefined) {
      // Only after every object is safely written: drop the extra objects of an earlier, longer run.
      try {
        const current = new Set(b.objects);
        if (b.date !== UNDATED && b.tenant !== NO_TENANT) {
          for (const old of await listAll(store, `${stagingPrefix(b.tenant, b.date)}${baseName(b)}-p`)) {
            if (current.has(old.key)) continue;
            await store.delete(old.key);
            removed += 1;
          }
        }
      } catch (cleanup) {
        b.error = cleanup;
      }
    }
    const objects = [...b.objects.filter((o) => o !== ''), ...(movedOut.get(b) ?? [])];
    const counts = {
      read: b.read,
      outside: 0,
      matched: b.read - b.noTenant,
      noTenant: b.noTenant,
      staged: b.staged,
      quarantined: b.quarantined,
      quarantine: b.quarantine,
      objects,
      days: stagedDays(objects),
      consumedCapacity: 0,
    };
    const result: TenantBackfillResult =
      (failure ?? b.error) === undefined
        ? { tenant: b.tenant, date: b.date, status: 'ok', ...counts, removed, durationMs: b.durationMs }
        : { ...failed(b.tenant, b.date, b.durationMs, failure ?? b.error), ...counts };
    results.push(result);
    request.onResult?.(result);
  }
  if (sorted.length === 0) for (const r of results) request.onResult?.(r);
  return {
    date: date ?? ALL_DAYS,
    source: reader.source,
    ok: results.every((r) => r.status === 'ok'),
    quarantined: results.reduce((n, r) => n + r.quarantined, 0),
    quarantine: mergeQuarantine(results.map((r) => r.quarantine)),
    days: stagedDays(results.flatMap((r) => r.objects)),
    results,
  };
}

/** The day of a one-pass backfill's tenant-day holding records that name no day (quarantined). */
const UNDATED = 'undated';

/**
 * The tenant of a one-pass backfill of every tenant ('all') under which items with no valid tenant are
 * quarantined (with an asked-for list they go with its first tenant); it never names a staging partition.
 */
export const NO_TENANT = '*';

function toChange(reader: SourceReader, item: unknown): SourceChange {
  const change = reader.change ? reader.change(item) : backfillChange(reader.source, item);
  const name = reader.describe?.(item);
  return name === undefined ? change : { ...change, name };
}

/** The tenant id of a change whose item has a valid one (see hasTenant). */
function ownerOf(change: SourceChange, mapping: FieldMapping): string | undefined {
  const item = change.item;
  if (typeof item !== 'object' || item === null) return undefined;
  const name = mapping.tenant_id.find((n) => item[n] !== undefined && item[n] !== null);
  return name === undefined ? undefined : String(item[name]);
}

/** Stages one page of backfilled changes; a group that could not be written fails the tenant-day (BackfillError). */
async function stageBatch(
  store: ObjectStore,
  changes: SourceChange[],
  options: Parameters<typeof ingestBatch>[2],
  context: { tenant: string; date: string },
): Promise<Awaited<ReturnType<typeof ingestBatch>>> {
  const result = await ingestBatch(store, changes, options);
  if (result.failed.length > 0) {
    throw new BackfillError(`cannot write backfill staging: ${describeFailures(result)}`, {
      cause: result.failed[0]?.error,
      context: { ...context, batchId: options.batchId },
    });
  }
  return result;
}
