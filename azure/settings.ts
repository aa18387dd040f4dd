/**
 * The settings the Functions host needs while the functions are *registered* (trigger bindings are fixed
 * at startup), parsed from the app settings with the same readers as src/config.ts (a malformed setting,
 * there or here, stops startup). Everything the handlers use at run time comes from loadConfig.
 * Names are listed in azure/local.settings.example.json and docs/AZURE.md.
 */
import { type Env, envReader, loadConfig } from '../src/config.js';

/** The app setting holding the Cosmos DB connection (by name: the host resolves it, we never read it). */
export const COSMOS_CONNECTION_SETTING = 'COSMOS_CONNECTION';

export interface TriggerSettings {
  /** COSMOS_DATABASE / COSMOS_CONTAINER: the monitored messages container (defaults as in config). */
  readonly database: string;
  readonly container: string;
  /** COSMOS_LEASE_CONTAINER: the leases container, created if missing. Default `leases`. */
  readonly leaseContainer: string;
  /** COSMOS_START_FROM_BEGINNING=true: a new lease starts at the container's first change. Default false. */
  readonly startFromBeginning: boolean;
  /** COSMOS_MAX_ITEMS_PER_INVOCATION: documents per batch. Default 500. */
  readonly maxItemsPerInvocation: number;
  /** CHANGEFEED_MAX_RETRIES: retries of a failed batch before it goes to the poison location. Default 5. */
  readonly changeFeedMaxRetries: number;
  /** DAILY_BATCH_SCHEDULE: NCRONTAB. Default `0 0 17 * * *` = 02:00 JST when the host runs in UTC. */
  readonly dailyBatchSchedule: string;
}

export function triggerSettings(env: Env): TriggerSettings {
  const { read, int, bool } = envReader(env);
  const { cosmosDatabase, cosmosContainer } = loadConfig(env).azure;
  return {
    database: cosmosDatabase,
    container: cosmosContainer,
    leaseContainer: read('COSMOS_LEASE_CONTAINER') ?? 'leases',
    startFromBeginning: bool('COSMOS_START_FROM_BEGINNING'),
    maxItemsPerInvocation: int('COSMOS_MAX_ITEMS_PER_INVOCATION', 500, 1, 10_000),
    changeFeedMaxRetries: int('CHANGEFEED_MAX_RETRIES', 5, 0, 100),
    dailyBatchSchedule: read('DAILY_BATCH_SCHEDULE') ?? '0 0 17 * * *',
  };
}
