import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { plainItem } from '../../core/model/dynamodb.js';
import { DEFAULT_FIELD_MAPPING, type FieldMapping } from '../../core/model/fieldMapping.js';
import { normaliseChange, type SourceChange } from '../../core/model/normalise.js';
import type { StagingOp } from '../../core/schema/messageSchema.js';
import { tenantIdProblem } from '../../core/tenant.js';
import type { DayRange, SourceReader } from '../../ports/SourceReader.js';
import { getBytes, listAll, type ObjectStore } from '../../ports/store/ObjectStore.js';
import { requireJson } from '../../ports/store/readJson.js';
import { BACKFILL_POSITION } from './backfillChange.js';
import { BackfillError } from './errors.js';

/** One item version from an export, already decided (upsert or delete) and timed. */
export interface ExportVersion {
  readonly change: SourceChange;
  /** Microseconds since the epoch: the write time (incremental) or the export time (full). */
  readonly at: bigint;
  /** Export order, for versions with the same time. */
  readonly order: number;
  /** Where it was read: `<data file> line <n>`, for quarantine examples. */
  readonly name?: string;
}

/** What the export's manifest-summary.json says that we use. */
interface ExportSummary {
  readonly key: string;
  readonly exportType: 'FULL_EXPORT' | 'INCREMENTAL_EXPORT';
  readonly at: bigint;
  readonly manifestFilesKey: string;
}

/**
 * Reads DynamoDB "export to S3" output (DYNAMODB_JSON) from the configured store — the path for big tables,
 * since DynamoDB itself does the reading. PREFIX holds one or more exports in the documented layout:
 *
 *   PREFIX/AWSDynamoDB/<ExportId>/manifest-summary.json   (exportType FULL_EXPORT | INCREMENTAL_EXPORT)
 *   PREFIX/AWSDynamoDB/<ExportId>/manifest-files.json     (one JSON line per data file: dataFileS3Key, itemCount, ...)
 *   PREFIX/AWSDynamoDB/<ExportId>/data/<name>.json.gz     (one JSON line per item)
 *
 * A full export's lines are `{"Item": {...}}` (the item at the export time); an incremental export's are
 * `{"Metadata": {"WriteTimestampMicros": ...}, "Keys": {...}, "NewImage"?: {...}, "OldImage"?: {...}}` — no
 * NewImage means the item was deleted. All exports under PREFIX are folded per message in time order (a
 * full export plus the incrementals after it give the latest state), and every version is staged at the
 * backfill position with its time as `ingested_at`: the export's time (full) or the item's write time
 * (incremental, `Metadata.WriteTimestampMicros`), floored to the millisecond. The merge orders it by that
 * time against captured versions (docs/ARCHITECTURE.md, "Order by time"). An incremental edit's OldImage
 * is its previous image: when it names another JST day, the edit also takes the message out of that day
 * (a move-out, as capture stages one). An export does not say who
 * deleted an item: deletes are applied as user deletes. A delete with only Keys (export view type NEW_IMAGE) can be applied
 * only when an earlier export under PREFIX holds the item; otherwise its day is unknown and it is
 * quarantined with that reason.
 *
 * @example
 * const reader = new DynamoExportReader(store, 'exports/messages');
 */
export class DynamoExportReader implements SourceReader {
  readonly source = 'dynamodb' as const;
  readonly location: string;
  /** Names its backfill objects apart from a table backfill's and another export prefix's (runExportBackfill). */
  readonly stagingName: string;
  private readonly mapping: FieldMapping;

  constructor(
    private readonly store: ObjectStore,
    private readonly prefix: string,
    options: { mapping?: FieldMapping } = {},
  ) {
    this.mapping = options.mapping ?? DEFAULT_FIELD_MAPPING;
    const trimmed = prefix.replace(/^\/+|\/+$/g, '');
    this.location = `${store.location}/${trimmed}`;
    this.stagingName = `export-${createHash('sha256').update(trimmed).digest('hex').slice(0, 8)}`;
  }

  /**
   * The tenant's versions of the day (SourceReader). Streams the whole export once per call: runBackfill
   * reads an export with one pass for every tenant-day instead (runExportBackfill over `versions()`).
   */
  async *pages(
    tenant: string,
    day: DayRange,
    _resumeFrom?: string,
    options: { readonly untenanted?: boolean } = {},
  ): AsyncIterable<readonly unknown[]> {
    let items: ExportVersion[] = [];
    for await (const version of this.versions()) {
      const result = normaliseChange(version.change, { source: 'dynamodb', ingestedAt: 0, mapping: this.mapping });
      const owner = tenantOf(version, this.mapping);
      if (
        result.ok
          ? result.record.tenant_id === tenant && result.record.dt === day.date
          : owner === tenant || (options.untenanted === true && (owner === undefined || tenantIdProblem(owner) !== undefined))
      ) {
        items.push(version);
        if (items.length >= 1000) {
          yield items;
          items = [];
        }
      }
    }
    if (items.length > 0) yield items;
  }

  /** The version as a change at the backfill position, timed (floored to the millisecond) by when it was true. */
  change(item: unknown): SourceChange {
    const version = item as ExportVersion;
    return { ...version.change, versionAt: Number(version.at / 1000n) };
  }

  describe(item: unknown): string | undefined {
    return (item as ExportVersion).name;
  }

  /**
   * Every version of every export under the prefix, streamed in time order of the exports (then file and
   * line order), one gzip data file at a time, line by line: memory holds one line (and the keys of the
   * incremental exports' keys-only deletes), never the export. Every version is yielded, not only each
   * message's latest: the merge orders a message's versions by their time (`ingested_at`), so the newest
   * wins there. A keys-only delete (export view type NEW_IMAGE) takes the image of the message's latest
   * earlier version under the prefix, so it still names its day; without one it keeps its problem.
   */
  async *versions(): AsyncIterable<ExportVersion> {
    const summaries = await this.summaries();
    const keysOnly = await this.keysOnlyDeletes(summaries);
    // The latest image of a message that a keys-only delete names (only those messages are remembered).
    const images = new Map<string, ExportVersion>();
    let order = 0;
    for (const summary of summaries) {
      for (const dataKey of await this.dataFiles(summary)) {
        for await (const { line, index } of this.lines(dataKey)) {
          order += 1;
          const version: ExportVersion = {
            ...this.version(JSON.parse(line) as Record<string, unknown>, summary, order, dataKey),
            name: `${dataKey} line ${index}`,
          };
          const id = keysOnly.size === 0 ? undefined : messageKey(version.change.item, this.mapping);
          if (id === undefined || !keysOnly.has(id)) {
            yield version;
            continue;
          }
          const earlier = images.get(id);
          if (version.change.op === 'delete' && version.change.problem && earlier) {
            // A keys-only delete takes the last known image, so it still names its day.
            const { previousItem: _previous, ...image } = earlier.change;
            const resolved = { ...version, change: { ...image, op: 'delete' as const, raw: version.change.raw } };
            if (earlier.at <= version.at) images.set(id, resolved);
            yield resolved;
            continue;
          }
          if (version.change.problem === undefined && (!earlier || earlier.at <= version.at)) images.set(id, version);
          yield version;
        }
      }
    }
  }

  /** The exports under the prefix, oldest first. */
  private async summaries(): Promise<ExportSummary[]> {
    const base = this.prefix.replace(/^\/+/, '').replace(/\/*$/, '/');
    const summaries = await Promise.all(
      (await listAll(this.store, base)).filter((o) => o.key.endsWith('/manifest-summary.json')).map((o) => this.summary(o.key)),
    );
    if (summaries.length === 0) {
      throw new BackfillError(`no DynamoDB export under ${base} (looked for AWSDynamoDB/<ExportId>/manifest-summary.json)`);
    }
    return summaries.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  }

  /** The message keys of the incremental exports' keys-only deletes (a first, streamed pass over them only). */
  private async keysOnlyDeletes(summaries: readonly ExportSummary[]): Promise<Set<string>> {
    const keys = new Set<string>();
    for (const summary of summaries) {
      if (summary.exportType !== 'INCREMENTAL_EXPORT') continue;
      for (const dataKey of await this.dataFiles(summary)) {
        for await (const { line } of this.lines(dataKey)) {
          const json = JSON.parse(line) as Record<string, unknown>;
          if (json.NewImage !== undefined || json.OldImage !== undefined || !json.Keys) continue;
          const id = messageKey(plainItem(json.Keys as Record<string, unknown>), this.mapping);
          if (id !== undefined) keys.add(id);
        }
      }
    }
    return keys;
  }

  /** The non-empty lines of a gzip data file, streamed, with their 1-based line numbers. */
  private async *lines(dataKey: string): AsyncIterable<{ line: string; index: number }> {
    const body = await this.store.getStream(dataKey);
    const gunzip = createGunzip();
    body.on('error', (error) => gunzip.destroy(error));
    const reader = createInterface({ input: body.pipe(gunzip), crlfDelay: Number.POSITIVE_INFINITY });
    let index = 0;
    try {
      for await (const line of reader) {
        index += 1;
        if (line.trim() === '') continue;
        yield { line, index };
      }
    } finally {
      reader.close();
      body.destroy();
    }
  }

  private async summary(key: string): Promise<ExportSummary> {
    const json = await requireJson<Record<string, unknown>>(this.store, key, 'export summary');
    if (json.outputFormat !== undefined && json.outputFormat !== 'DYNAMODB_JSON') {
      throw new BackfillError(`${key}: outputFormat must be DYNAMODB_JSON, got ${JSON.stringify(json.outputFormat)}`);
    }
    const exportType = json.exportType ?? 'FULL_EXPORT';
    if (exportType !== 'FULL_EXPORT' && exportType !== 'INCREMENTAL_EXPORT') {
      throw new BackfillError(`${key}: exportType must be FULL_EXPORT or INCREMENTAL_EXPORT, got ${JSON.stringify(exportType)}`);
    }
    const time = Date.parse(String(json.exportToTime ?? json.exportTime ?? json.endTime ?? ''));
    if (Number.isNaN(time)) throw new BackfillError(`${key}: no exportTime`);
    return {
      key,
      exportType,
      at: BigInt(time) * 1000n,
      manifestFilesKey: key.replace(/manifest-summary\.json$/, 'manifest-files.json'),
    };
  }

  private async dataFiles(summary: ExportSummary): Promise<string[]> {
    const text = (await getBytes(this.store, summary.manifestFilesKey)).toString('utf8');
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => {
        const key = (JSON.parse(l) as { dataFileS3Key?: unknown }).dataFileS3Key;
        if (typeof key !== 'string') throw new BackfillError(`${summary.manifestFilesKey}: a line without dataFileS3Key`);
        return key;
      });
  }

  private version(line: Record<string, unknown>, summary: ExportSummary, order: number, file: string): ExportVersion {
    const base = { sourceSeq: BACKFILL_POSITION, raw: line };
    if (summary.exportType === 'FULL_EXPORT') {
      const item = line.Item as Record<string, unknown> | undefined;
      if (!item) {
        return {
          at: summary.at,
          order,
          change: { ...base, item: undefined, op: 'upsert', problem: `${file}: a full-export line without Item` },
        };
      }
      return { at: summary.at, order, change: { ...base, item: plainItem(item), op: 'upsert' } };
    }
    const at = writeMicros(line.Metadata) ?? summary.at;
    const newImage = line.NewImage as Record<string, unknown> | undefined;
    const oldImage = line.OldImage as Record<string, unknown> | undefined;
    if (newImage) {
      // an edit's OldImage (view type NEW_AND_OLD_IMAGES) is the message before it: when it names another
      // day, normaliseChange adds a move-out there, as capture does (docs/ARCHITECTURE.md, "One message, one partition")
      const previous = oldImage ? { previousItem: plainItem(oldImage) } : {};
      return { at, order, change: { ...base, item: plainItem(newImage), op: 'upsert', ...previous } };
    }
    const op: StagingOp = 'delete';
    if (oldImage) return { at, order, change: { ...base, item: plainItem(oldImage), op } };
    const keys = line.Keys as Record<string, unknown> | undefined;
    return {
      at,
      order,
      change: {
        ...base,
        item: keys ? plainItem(keys) : undefined,
        op,
        problem:
          'an incremental-export delete with only Keys (export view type NEW_IMAGE) and no earlier version under the prefix: its day is unknown',
      },
    };
  }
}

/** `Metadata.WriteTimestampMicros`, as DynamoDB JSON (`{"N": "..."}`) or plain text/number. */
function writeMicros(metadata: unknown): bigint | undefined {
  const value = (metadata as { WriteTimestampMicros?: unknown } | undefined)?.WriteTimestampMicros;
  const text = typeof value === 'object' && value !== null ? (value as { N?: unknown }).N : value;
  return typeof text === 'string' || typeof text === 'number' ? BigInt(text) : undefined;
}

function pick(item: Record<string, unknown> | undefined, names: readonly string[]): unknown {
  if (!item) return undefined;
  for (const n of names) if (item[n] !== undefined && item[n] !== null) return item[n];
  return undefined;
}

function messageKey(item: Record<string, unknown> | undefined, mapping: FieldMapping): string | undefined {
  const tenant = pick(item, mapping.tenant_id);
  const message = pick(item, mapping.message_id);
  return tenant === undefined || message === undefined ? undefined : JSON.stringify([tenant, message]);
}

function tenantOf(version: ExportVersion, mapping: FieldMapping): unknown {
  return pick(version.change.item, mapping.tenant_id);
}
