import { errorMessage } from '../errors.js';
import { describeFailures, ingestBatch } from '../ingest/ingestBatch.js';
import type { FieldMapping } from '../model/fieldMapping.js';
import { normaliseChange, type SourceChange } from '../model/normalise.js';
import { stagingPrefix } from '../staging/layout.js';
import { listAll, type ObjectStore } from '../store/ObjectStore.js';
import { assertTenantId } from '../tenant.js';
import { jstDayRange, parseDate } from '../time/jst.js';
import { mapSettled } from '../util/concurrency.js';
import { backfillChange } from './backfillChange.js';
import { BackfillError } from './errors.js';
import type { SourceReader } from './SourceReader.js';

export interface BackfillRequest {
  readonly store: ObjectStore;
  readonly reader: SourceReader;
  /** The JST day, YYYY-MM-DD. */
  readonly date: string;
  readonly tenants: readonly string[];
  readonly mapping?: FieldMapping;
  /** Tenants read at once. Default 4. */
  readonly concurrency?: number;
  /** Records per staging object. Default 5000. */
  readonly recordsPerObject?: number;
  readonly now?: () => number;
  readonly onResult?: (result: TenantBackfillResult) => void;
}

export interface TenantBackfillResult {
  readonly tenant: string;
  readonly date: string;
  readonly status: 'ok' | 'failed';
  /** Items the reader returned. */
  readonly read: number;
  /** Items outside the tenant's JST day (a widened query), not staged. */
  readonly outside: number;
  readonly staged: number;
  readonly quarantined: number;
  /** Staging objects written, in order. */
  readonly objects: readonly string[];
  /** Backfill objects of an earlier run of this tenant-day that this run replaced. */
  readonly removed: number;
  readonly durationMs: number;
  readonly error?: string;
}

export interface BackfillSummary {
  readonly date: string;
  readonly source: string;
  readonly ok: boolean;
  readonly results: readonly TenantBackfillResult[];
}

/**
 * Re-reads one JST day of messages per tenant straight from the source into staging, for days whose
 * staging was lost or that capture missed; compaction then runs as usual. Shared by every source: the
 * reader yields the items, this turns them into changes at the backfill position (below every feed
 * position, see BACKFILL_POSITION), keeps exactly the tenant's day and writes staging through the same
 * ingestBatch as the change-feed handlers. Objects are named `backfill-<source>-<date>-<tenant>-p<n>`, so
 * a re-run replaces the previous run's objects (and removes its extra ones) instead of adding versions.
 * One tenant's failure is reported and never stops the others.
 *
 * @example
 * const summary = await runBackfill({ store, reader: new CosmosSourceReader(...), date: '2025-08-11', tenants: ['a'] });
 */
export async function runBackfill(request: BackfillRequest): Promise<BackfillSummary> {
  const date = parseDate(request.date, 'backfill date');
  const tenants = request.tenants.map((t) => assertTenantId(t));
  const settled = await mapSettled(tenants, request.concurrency ?? 4, async (tenant) => {
    const result = await backfillTenant(request, tenant, date);
    request.onResult?.(result);
    return result;
  });
  const results = settled.map((s, i) => {
    if (s.status === 'fulfilled') return s.value;
    // backfillTenant reports its own failures; this is only reached if onResult threw.
    return failed(tenants[i] as string, date, 0, s.reason);
  });
  return { date, source: request.reader.source, ok: results.every((r) => r.status === 'ok'), results };
}

async function backfillTenant(request: BackfillRequest, tenant: string, date: string): Promise<TenantBackfillResult> {
  const now = request.now ?? Date.now;
  const started = now();
  const { store, reader } = request;
  const perObject = request.recordsPerObject ?? 5000;
  const ingestedAt = now();
  const baseName = `backfill-${reader.source}-${date}-${tenant}`;
  let read = 0;
  let outside = 0;
  let staged = 0;
  let quarantined = 0;
  let page = 0;
  const objects: string[] = [];
  let pending: SourceChange[] = [];

  const flush = async () => {
    if (pending.length === 0) return;
    page += 1;
    const batchId = `${baseName}-p${String(page).padStart(5, '0')}`;
    const result = await ingestBatch(store, pending, {
      source: reader.source,
      batchId,
      now: ingestedAt,
      mapping: request.mapping,
    });
    if (result.failed.length > 0) {
      throw new BackfillError(`cannot write backfill staging: ${describeFailures(result)}`, {
        cause: result.failed[0]?.error,
        context: { tenant, date, batchId },
      });
    }
    staged += result.staged;
    quarantined += result.quarantined;
    objects.push(...result.written.map((w) => w.key).filter((k) => !k.startsWith('quarantine/')));
    pending = [];
  };

  try {
    const day = { date, ...jstDayRange(date) };
    for await (const items of reader.pages(tenant, day)) {
      for (const item of items) {
        read += 1;
        const change = backfillChange(reader.source, item);
        const normalised = normaliseChange(change, { source: reader.source, ingestedAt, mapping: request.mapping });
        // Rejected items go on to ingestBatch, which quarantines them with the reason.
        if (normalised.ok && (normalised.record.tenant_id !== tenant || normalised.record.dt !== date)) {
          outside += 1;
          continue;
        }
        pending.push(change);
        if (pending.length >= perObject) await flush();
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
    return {
      tenant,
      date,
      status: 'ok',
      read,
      outside,
      staged,
      quarantined,
      objects,
      removed,
      durationMs: now() - started,
    };
  } catch (error) {
    return { ...failed(tenant, date, now() - started, error), read, outside, staged, quarantined, objects };
  }
}

function failed(tenant: string, date: string, durationMs: number, error: unknown): TenantBackfillResult {
  return {
    tenant,
    date,
    status: 'failed',
    read: 0,
    outside: 0,
    staged: 0,
    quarantined: 0,
    objects: [],
    removed: 0,
    durationMs,
    error: errorMessage(error),
  };
}
