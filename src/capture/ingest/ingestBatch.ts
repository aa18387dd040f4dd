import { errorMessage } from '../../core/errors.js';
import type { FieldMapping } from '../../core/model/fieldMapping.js';
import { normaliseChange, type SourceChange, type UnplacedDelete } from '../../core/model/normalise.js';
import type { StagedRecord } from '../../core/schema/messageSchema.js';
import { ingestQuarantineKey, PENDING_DELETES_ROOT, pendingDeleteKey, stagingKey } from '../../core/staging/layout.js';
import { jstDate } from '../../core/time/jst.js';
import { mapSettled } from '../../core/util/concurrency.js';
import { offboardedReason } from '../../lake/offboarded.js';
import type { StagingSink } from '../../ports/StagingSink.js';
import { type ObjectStore, putNdjson } from '../../ports/store/ObjectStore.js';
import { ObjectStoreStagingSink } from './ObjectStoreStagingSink.js';
import { type QuarantineReason, tallyQuarantine } from './quarantineSummary.js';

export interface IngestOptions {
  readonly source: 'dynamodb' | 'cosmos';
  /** Stable id of where the batch comes from (shard id, lease token); part of every object name. */
  readonly batchId: string;
  readonly now?: number;
  readonly mapping?: FieldMapping;
  readonly concurrency?: number;
  /** Offboarded tenants (`offboardedTenants`, read by the entry point): their records are quarantined with the reason. */
  readonly refused?: ReadonlySet<string>;
  /**
   * Where the tenant-day groups are staged (STAGING_TRANSPORT); default: gzip NDJSON objects in the store.
   * Quarantine and pending deletes are written to the store whatever the sink.
   */
  readonly sink?: StagingSink;
}

const NO_TENANTS: ReadonlySet<string> = new Set();

/** One record rejected for good, as written to quarantine. */
export interface QuarantineEntry {
  readonly reason: string;
  readonly source: string;
  readonly position: string;
  readonly batch_id: string;
  readonly quarantined_at: string;
  readonly raw: unknown;
}

export interface WrittenGroup {
  readonly key: string;
  readonly records: number;
  /** Index in the batch of the group's first change. */
  readonly firstIndex: number;
}

export interface FailedGroup {
  readonly key: string;
  readonly firstIndex: number;
  readonly records: number;
  readonly error: unknown;
}

export interface IngestResult {
  readonly received: number;
  readonly staged: number;
  readonly quarantined: number;
  /**
   * Of `staged`, the user deletes that name no day (a Cosmos metadata-only delete): written under
   * `pending/deletes/`, where the nightly planner places them in the day the table holds the message in.
   * Absent when there are none.
   */
  readonly waiting?: number;
  /** The quarantined records per reason (empty when nothing was quarantined, or its write failed). */
  readonly quarantine: QuarantineReason[];
  readonly written: WrittenGroup[];
  readonly failed: FailedGroup[];
  /** Index of the first change that is not safely stored (the retry point), or undefined when all are. */
  readonly firstFailedIndex: number | undefined;
}

interface Group {
  key: string;
  firstIndex: number;
  lines: readonly unknown[];
  /** Writes the group: a tenant-day's records to the sink, quarantine and pending deletes to the store. */
  put: () => Promise<unknown>;
}

/**
 * The capture path every source shares (Lambda, Azure Function, CLI): normalise each change, quarantine
 * the ones that can never be accepted (with the reason), group the rest by (tenant, JST day) and stage one
 * object per group through the sink (default: gzip NDJSON in `store`). Object names come from the group's
 * first and last feed positions, so a re-delivered batch rewrites the same objects instead of adding
 * duplicates.
 * Groups are written independently: a failed write is reported (with the batch index of its first change)
 * and never stops the other groups.
 */
export async function ingestBatch(
  store: ObjectStore,
  changes: readonly SourceChange[],
  options: IngestOptions,
): Promise<IngestResult> {
  const now = options.now ?? Date.now();
  const sink = options.sink ?? new ObjectStoreStagingSink(store);
  const groups = new Map<string, { firstIndex: number; records: StagedRecord[] }>();
  const rejected: { index: number; entry: QuarantineEntry }[] = [];

  const refused = options.refused ?? NO_TENANTS;
  const waiting = new Map<string, { firstIndex: number; records: UnplacedDelete[] }>();
  changes.forEach((change, index) => {
    const result = normaliseChange(change, { source: options.source, ingestedAt: now, mapping: options.mapping });
    if (!result.ok && result.unplaced) {
      // a delete whose day is unknown waits for the planner to find the message in the table
      const tenant = result.unplaced.tenant_id;
      const group = waiting.get(tenant) ?? { firstIndex: index, records: [] };
      group.records.push(result.unplaced);
      waiting.set(tenant, group);
      return;
    }
    if (!result.ok || refused.has(result.record.tenant_id)) {
      rejected.push({
        index,
        entry: {
          reason: result.ok ? offboardedReason(result.record.tenant_id) : result.reason,
          source: options.source,
          position: change.sourceSeq,
          batch_id: options.batchId,
          quarantined_at: new Date(now).toISOString(),
          raw: change.raw,
        },
      });
      return;
    }
    // an edit that moved the message also removes it from where it was (docs/ARCHITECTURE.md, "One message, one partition")
    for (const record of result.moveOut ? [result.record, result.moveOut] : [result.record]) {
      const id = `${record.tenant_id}/${record.dt}`;
      const group = groups.get(id) ?? { firstIndex: index, records: [] };
      group.records.push(record);
      groups.set(id, group);
    }
  });

  const toWrite: Group[] = [...groups.values()].map((g) => {
    const first = g.records[0] as StagedRecord;
    const last = g.records[g.records.length - 1] as StagedRecord;
    const name = `${options.batchId}_${first.source_seq}_${last.source_seq}`;
    const key = stagingKey(first.tenant_id, first.dt, name);
    return { key, firstIndex: g.firstIndex, lines: g.records, put: () => sink.put(key, g.records) };
  });
  for (const [tenant, g] of waiting) {
    const name = `${options.batchId}_${g.records[0]?.source_seq}_${g.records[g.records.length - 1]?.source_seq}`;
    const key = pendingDeleteKey(tenant, name);
    toWrite.push({ key, firstIndex: g.firstIndex, lines: g.records, put: () => putNdjson(store, key, g.records) });
  }
  if (rejected.length > 0) {
    const first = rejected[0] as (typeof rejected)[number];
    const last = rejected[rejected.length - 1] as (typeof rejected)[number];
    const name = `${options.batchId}_${first.entry.position || first.index}_${last.entry.position || last.index}`;
    const key = ingestQuarantineKey(options.source, jstDate(now), name);
    const lines = rejected.map((r) => r.entry);
    toWrite.push({ key, firstIndex: first.index, lines, put: () => putNdjson(store, key, lines) });
  }

  const settled = await mapSettled(toWrite, options.concurrency ?? 8, (group) => group.put());
  const written: WrittenGroup[] = [];
  const failed: FailedGroup[] = [];
  settled.forEach((outcome, i) => {
    const group = toWrite[i] as Group;
    if (outcome.status === 'fulfilled')
      written.push({ key: group.key, records: group.lines.length, firstIndex: group.firstIndex });
    else failed.push({ key: group.key, firstIndex: group.firstIndex, records: group.lines.length, error: outcome.reason });
  });
  const quarantineKey = written.find((w) => w.key.startsWith('quarantine/'))?.key;
  const quarantineKeyWritten = quarantineKey !== undefined;
  return {
    received: changes.length,
    staged: written.filter((w) => !w.key.startsWith('quarantine/')).reduce((n, w) => n + w.records, 0),
    ...waitingCount(written),
    quarantined: quarantineKeyWritten ? rejected.length : 0,
    quarantine: quarantineKeyWritten
      ? tallyQuarantine(
          rejected.map((r) => ({
            reason: r.entry.reason,
            example: changes[r.index]?.name ?? (r.entry.position === '' ? `record #${r.index}` : `position ${r.entry.position}`),
            object: quarantineKey,
          })),
        )
      : [],
    written,
    failed,
    firstFailedIndex: failed.length === 0 ? undefined : Math.min(...failed.map((f) => f.firstIndex)),
  };
}

/** `{waiting: n}` for the records written under pending/deletes/, or nothing when there are none. */
function waitingCount(written: readonly WrittenGroup[]): { waiting?: number } {
  const waiting = written.filter((w) => w.key.startsWith(PENDING_DELETES_ROOT)).reduce((n, w) => n + w.records, 0);
  return waiting > 0 ? { waiting } : {};
}

/** One line per failed group, for logs and error messages. */
export function describeFailures(result: IngestResult): string {
  return result.failed.map((f) => `${f.key} (${f.records} records): ${errorMessage(f.error)}`).join('; ');
}
