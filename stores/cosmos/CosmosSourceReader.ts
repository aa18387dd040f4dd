import { type Container, CosmosClient, type SqlQuerySpec } from '@azure/cosmos';
import { DefaultAzureCredential } from '@azure/identity';
import { ConfigError } from '../../src/core/errors.js';
import { DEFAULT_FIELD_MAPPING, type FieldMapping } from '../../src/core/model/fieldMapping.js';
import { addDays } from '../../src/core/time/jst.js';
import type { DayRange, SourceReader } from '../../src/ports/SourceReader.js';

/** Where the messages container is: an existing container or client, or what to build a client from. */
export type CosmosTarget =
  | { readonly container: Container }
  | { readonly client: CosmosClient; readonly database: string; readonly container: string }
  | {
      readonly endpoint: string;
      /** The account key; without one the client signs in with DefaultAzureCredential (managed identity). */
      readonly key?: string;
      readonly database: string;
      readonly container: string;
    };

export interface CosmosSourceReaderOptions {
  /** Items per query page (maxItemCount). Default 1000. */
  readonly pageSize?: number;
  /** Which document fields hold the tenant and the creation time (the config's FIELD_MAPPING). */
  readonly mapping?: FieldMapping;
}

const FIELD_NAME = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/**
 * Reads a tenant's messages of one JST day from the Cosmos DB container with a parameterised query,
 * page by page, following the continuation token. The backfill's source for Azure.
 *
 * @example
 * const reader = new CosmosSourceReader({ endpoint, key, database: 'makoto', container: 'messages' });
 * for await (const page of reader.pages('tenant-a', { date: '2025-08-11', ...jstDayRange('2025-08-11') })) ...
 */
export class CosmosSourceReader implements SourceReader {
  readonly source = 'cosmos' as const;
  readonly location: string;
  private readonly container: Container;
  private readonly pageSize: number;
  private readonly mapping: FieldMapping;

  constructor(target: CosmosTarget, options: CosmosSourceReaderOptions = {}) {
    this.container = containerOf(target);
    this.pageSize = options.pageSize ?? 1000;
    this.mapping = options.mapping ?? DEFAULT_FIELD_MAPPING;
    // The endpoint and the names only: the key never reaches a log line.
    this.location = `${endpointOf(target)}dbs/${this.container.database.id}/colls/${this.container.id}`;
  }

  async *pages(tenant: string, day: DayRange): AsyncIterable<readonly unknown[]> {
    const query = backfillQuery(tenant, day, this.mapping);
    let continuationToken: string | undefined;
    do {
      // A fresh iterator per page from the token: the loop could stop and resume at any page.
      const page = await this.container.items
        .query<Record<string, unknown>>(query, { maxItemCount: this.pageSize, continuationToken })
        .fetchNext();
      if (page.resources.length > 0) yield page.resources;
      continuationToken = page.continuationToken;
    } while (continuationToken);
  }
}

/**
 * The query for one tenant-day. Tenant and creation time may sit under any of the mapped field names.
 * Creation times stored as epoch numbers (seconds or milliseconds) are compared exactly; ISO-8601 strings
 * compare as text, so a string with any UTC offset (or a space instead of 'T') is caught by widening the
 * range to whole days around the JST day: the backfill then keeps exactly the day after parsing.
 */
export function backfillQuery(tenant: string, day: DayRange, mapping: FieldMapping): SqlQuerySpec {
  const field = (name: string) => {
    if (!FIELD_NAME.test(name)) throw new ConfigError(`FIELD_MAPPING: ${JSON.stringify(name)} cannot be used in a Cosmos query`);
    return `c.${name}`;
  };
  const tenantFields = mapping.tenant_id.map((n) => `${field(n)} = @tenant`).join(' OR ');
  const createdFields = mapping.created_at
    .map((n) => {
      const f = field(n);
      return `(IS_STRING(${f}) AND ${f} >= @isoFrom AND ${f} < @isoTo) OR (IS_NUMBER(${f}) AND ((${f} >= @secFrom AND ${f} < @secTo) OR (${f} >= @msFrom AND ${f} < @msTo)))`;
    })
    .join(' OR ');
  return {
    query: `SELECT * FROM c WHERE (${tenantFields}) AND (${createdFields})`,
    parameters: [
      { name: '@tenant', value: tenant },
      { name: '@isoFrom', value: addDays(day.date, -1) },
      { name: '@isoTo', value: addDays(day.date, 2) },
      { name: '@secFrom', value: day.startMs / 1000 },
      { name: '@secTo', value: day.endMs / 1000 },
      { name: '@msFrom', value: day.startMs },
      { name: '@msTo', value: day.endMs },
    ],
  };
}

function containerOf(target: CosmosTarget): Container {
  if ('endpoint' in target) {
    // A plain-HTTP endpoint is a local emulator: it advertises regional endpoints it does not serve,
    // so endpoint discovery stays off there (and on for real accounts, which may be multi-region).
    const connectionPolicy = { enableEndpointDiscovery: !target.endpoint.startsWith('http:') };
    const client = target.key
      ? new CosmosClient({ endpoint: target.endpoint, key: target.key, connectionPolicy })
      : new CosmosClient({ endpoint: target.endpoint, aadCredentials: new DefaultAzureCredential(), connectionPolicy });
    return client.database(target.database).container(target.container);
  }
  if ('client' in target) return target.client.database(target.database).container(target.container as string);
  return target.container;
}

function endpointOf(target: CosmosTarget): string {
  return 'endpoint' in target ? `${new URL(target.endpoint).origin}/` : 'cosmos:///';
}
