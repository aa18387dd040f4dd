import {
  type AttributeValue,
  DescribeTableCommand,
  DynamoDBClient,
  QueryCommand,
  type QueryCommandInput,
  ScanCommand,
  type TableDescription,
} from '@aws-sdk/client-dynamodb';
import { ConfigError } from '../../src/core/errors.js';
import { plainItem } from '../../src/core/model/dynamodb.js';
import { DEFAULT_FIELD_MAPPING, type FieldMapping } from '../../src/core/model/fieldMapping.js';
import { addDays } from '../../src/core/time/jst.js';
import type { DayRange, SourcePage, SourceReader } from '../../src/ports/SourceReader.js';

export interface DynamoTableReaderOptions {
  readonly table: string;
  /** An existing client; otherwise one is built from region/endpoint. */
  readonly client?: DynamoDBClient;
  readonly region?: string;
  readonly endpoint?: string;
  readonly mapping?: FieldMapping;
  /** Read capacity units per second this reader may consume, at most (on average). Default 100. */
  readonly maxRcu?: number;
  /** Parallel Scan segments when there is no tenant + created-time index. Default 4. */
  readonly segments?: number;
  /** Items per request (Limit). Default 1000. */
  readonly pageSize?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
}

/** How the table is read: a Query on the index, or a parallel Scan. */
export type TablePlan =
  | {
      readonly kind: 'query';
      readonly index: string;
      readonly tenantKey: string;
      readonly createdKey: string;
      readonly createdType: 'S' | 'N';
    }
  | { readonly kind: 'scan'; readonly segments: number };

/**
 * Reads a tenant's messages of one JST day from the messages table (DYNAMODB_TABLE_NAME):
 * - with a global secondary index whose partition key is the tenant field and whose sort key is the
 *   creation time (field names from FIELD_MAPPING, e.g. `tenantId` + `createdAt`, projection ALL): a Query
 *   per day range (ISO strings: the day widened by one day each side, as for Cosmos; numbers: the exact
 *   epoch-seconds and epoch-milliseconds ranges);
 * - otherwise a parallel Scan (Segment/TotalSegments) with a filter on tenant and creation time, which
 *   reads (and pays for) the whole table: for big tables, use an index or an export.
 * Every request asks for ConsumedCapacity and the reader waits so that it consumes at most `maxRcu`
 * units a second. Pages carry a cursor (LastEvaluatedKey per range or segment) to resume from.
 *
 * @example
 * const reader = new DynamoTableReader({ table: 'messages', region: 'ap-northeast-1', maxRcu: 50 });
 */
export class DynamoTableReader implements SourceReader {
  readonly source = 'dynamodb' as const;
  readonly location: string;
  private readonly client: DynamoDBClient;
  private readonly mapping: FieldMapping;
  private readonly maxRcu: number;
  private readonly pageSize: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;
  private plan?: Promise<TablePlan>;
  /** The table's primary key attributes (from DescribeTable), to name an item in quarantine examples. */
  private keyNames: string[] = [];
  private consumed = 0;
  private startedAt?: number;

  constructor(private readonly options: DynamoTableReaderOptions) {
    this.client = options.client ?? new DynamoDBClient({ region: options.region, endpoint: options.endpoint });
    this.mapping = options.mapping ?? DEFAULT_FIELD_MAPPING;
    this.maxRcu = options.maxRcu ?? 100;
    this.pageSize = options.pageSize ?? 1000;
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.now = options.now ?? Date.now;
    this.location = `dynamodb:///${options.table}`;
  }

  /** The plan for this table (DescribeTable once). */
  tablePlan(): Promise<TablePlan> {
    this.plan ??= this.client.send(new DescribeTableCommand({ TableName: this.options.table })).then((d) => {
      this.keyNames = (d.Table?.KeySchema ?? []).flatMap((k) => (k.AttributeName === undefined ? [] : [k.AttributeName]));
      return planFor(d.Table ?? {}, this.mapping, this.options.segments ?? 4);
    });
    return this.plan;
  }

  /**
   * The tenant's items of the day. A Scan also returns the tenant's items that have no creation-time field
   * FIELD_MAPPING names and, with `untenanted`, the items that have no tenant field it names (any day), so
   * that the backfill quarantines them instead of never seeing them; a Query reads an index, which holds
   * neither.
   */
  async *pages(
    tenant: string,
    day: DayRange,
    resumeFrom?: string,
    options: { readonly untenanted?: boolean } = {},
  ): AsyncIterable<SourcePage> {
    const plan = await this.tablePlan();
    if (plan.kind === 'query') yield* this.query(plan, tenant, day, resumeFrom);
    else yield* this.scan(plan, tenant, day, resumeFrom, options.untenanted === true);
  }

  /** `key {"tenantId":"t1","messageId":"m1"}`: the item's primary key, for quarantine examples. */
  describe(item: unknown): string | undefined {
    if (this.keyNames.length === 0 || typeof item !== 'object' || item === null) return undefined;
    const record = item as Record<string, unknown>;
    return `key ${JSON.stringify(Object.fromEntries(this.keyNames.map((k) => [k, record[k] ?? null])))}`;
  }

  private async *query(
    plan: Extract<TablePlan, { kind: 'query' }>,
    tenant: string,
    day: DayRange,
    resumeFrom?: string,
  ): AsyncIterable<SourcePage> {
    const ranges: [AttributeValue, AttributeValue][] =
      plan.createdType === 'S'
        ? [[{ S: addDays(day.date, -1) }, { S: addDays(day.date, 2) }]]
        : [
            [{ N: String(day.startMs / 1000) }, { N: String(day.endMs / 1000 - 1e-3) }],
            [{ N: String(day.startMs) }, { N: String(day.endMs - 1) }],
          ];
    const state = resumeFrom ? (JSON.parse(resumeFrom) as { range: number; key?: Record<string, AttributeValue> }) : { range: 0 };
    for (let range = state.range; range < ranges.length; range++) {
      let key = range === state.range ? state.key : undefined;
      const [from, to] = ranges[range] as [AttributeValue, AttributeValue];
      do {
        const input: QueryCommandInput = {
          TableName: this.options.table,
          IndexName: plan.index,
          KeyConditionExpression: '#t = :t AND #c BETWEEN :from AND :to',
          ExpressionAttributeNames: { '#t': plan.tenantKey, '#c': plan.createdKey },
          ExpressionAttributeValues: { ':t': { S: tenant }, ':from': from, ':to': to },
          ExclusiveStartKey: key,
          Limit: this.pageSize,
          ReturnConsumedCapacity: 'TOTAL',
        };
        const page = await this.client.send(new QueryCommand(input));
        const cost = await this.pace(page.ConsumedCapacity?.CapacityUnits ?? 0);
        key = page.LastEvaluatedKey;
        const next = key ? { range, key } : { range: range + 1 };
        yield { items: (page.Items ?? []).map((i) => plainItem(i)), cursor: JSON.stringify(next), consumedCapacity: cost };
      } while (key);
    }
  }

  private async *scan(
    plan: Extract<TablePlan, { kind: 'scan' }>,
    tenant: string,
    day: DayRange,
    resumeFrom: string | undefined,
    untenanted: boolean,
  ): AsyncIterable<SourcePage> {
    const filter = scanFilter(this.mapping, tenant, day, untenanted);
    type Segment = { done: boolean; key?: Record<string, AttributeValue> };
    let segments: Segment[] = resumeFrom
      ? (JSON.parse(resumeFrom) as { segments: Segment[] }).segments
      : Array.from({ length: plan.segments }, () => ({ done: false }));
    while (segments.some((s) => !s.done)) {
      // One page from every unfinished segment at once; the cursor is every segment's position after it.
      const pages = await Promise.all(
        segments.map(async (segment, index) => {
          if (segment.done) return { segment, items: [] as Record<string, AttributeValue>[], cost: 0 };
          const page = await this.client.send(
            new ScanCommand({
              TableName: this.options.table,
              Segment: index,
              TotalSegments: segments.length,
              ExclusiveStartKey: segment.key,
              Limit: this.pageSize,
              ReturnConsumedCapacity: 'TOTAL',
              ...filter,
            }),
          );
          const next: Segment = page.LastEvaluatedKey ? { done: false, key: page.LastEvaluatedKey } : { done: true };
          return { segment: next, items: page.Items ?? [], cost: page.ConsumedCapacity?.CapacityUnits ?? 0 };
        }),
      );
      segments = pages.map((p) => p.segment);
      const cost = await this.pace(pages.reduce((n, p) => n + p.cost, 0));
      yield {
        items: pages.flatMap((p) => p.items.map((i) => plainItem(i))),
        cursor: JSON.stringify({ segments }),
        consumedCapacity: cost,
      };
    }
  }

  /** Waits until the capacity consumed so far fits `maxRcu` per second; returns `units`. */
  private async pace(units: number): Promise<number> {
    this.startedAt ??= this.now();
    this.consumed += units;
    const due = this.startedAt + (this.consumed / this.maxRcu) * 1000;
    const wait = due - this.now();
    if (wait > 0) await this.sleep(wait);
    return units;
  }
}

/** A Query plan when the table has a tenant + created-time index with every attribute, else a Scan. */
export function planFor(table: TableDescription, mapping: FieldMapping, segments: number): TablePlan {
  const types = new Map((table.AttributeDefinitions ?? []).map((a) => [a.AttributeName, a.AttributeType]));
  for (const index of table.GlobalSecondaryIndexes ?? []) {
    const hash = index.KeySchema?.find((k) => k.KeyType === 'HASH')?.AttributeName;
    const range = index.KeySchema?.find((k) => k.KeyType === 'RANGE')?.AttributeName;
    const createdType = range === undefined ? undefined : types.get(range);
    if (
      hash !== undefined &&
      range !== undefined &&
      mapping.tenant_id.includes(hash) &&
      mapping.created_at.includes(range) &&
      index.Projection?.ProjectionType === 'ALL' &&
      (createdType === 'S' || createdType === 'N')
    ) {
      return { kind: 'query', index: index.IndexName as string, tenantKey: hash, createdKey: range, createdType };
    }
  }
  return { kind: 'scan', segments };
}

const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The Scan filter: any mapped tenant field equals the tenant, and any mapped created field is in the day or
 * none exists; with `untenanted`, also every item that has no mapped tenant field.
 */
function scanFilter(mapping: FieldMapping, tenant: string, day: DayRange, untenanted: boolean) {
  const names: Record<string, string> = {};
  const name = (field: string, prefix: string, i: number) => {
    if (!FIELD_NAME.test(field)) throw new ConfigError(`FIELD_MAPPING: ${JSON.stringify(field)} cannot be used in a Scan filter`);
    names[`#${prefix}${i}`] = field;
    return `#${prefix}${i}`;
  };
  const tenantNames = mapping.tenant_id.map((f, i) => name(f, 't', i));
  const createdNames = mapping.created_at.map((f, i) => name(f, 'c', i));
  const tenants = tenantNames.map((n) => `${n} = :t`).join(' OR ');
  const created = createdNames
    .map((n) => `${n} BETWEEN :isoFrom AND :isoTo OR ${n} BETWEEN :secFrom AND :secTo OR ${n} BETWEEN :msFrom AND :msTo`)
    .join(' OR ');
  const noCreated = createdNames.map((n) => `attribute_not_exists(${n})`).join(' AND ');
  const noTenant = tenantNames.map((n) => `attribute_not_exists(${n})`).join(' AND ');
  const mine = `(${tenants}) AND (${created} OR (${noCreated}))`;
  return {
    FilterExpression: untenanted ? `(${mine}) OR (${noTenant})` : mine,
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: {
      ':t': { S: tenant },
      ':isoFrom': { S: addDays(day.date, -1) },
      ':isoTo': { S: addDays(day.date, 2) },
      ':secFrom': { N: String(day.startMs / 1000) },
      ':secTo': { N: String(day.endMs / 1000 - 1e-3) },
      ':msFrom': { N: String(day.startMs) },
      ':msTo': { N: String(day.endMs - 1) },
    } satisfies Record<string, AttributeValue>,
  };
}
