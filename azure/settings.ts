/**
 * The settings the Functions host needs while the functions are *registered* (trigger bindings are fixed
 * at startup), parsed from the app settings with the same readers as src/core/config.ts (a malformed setting,
 * there or here, stops startup). Everything the handlers use at run time comes from loadConfig.
 * Names are listed in azure/local.settings.example.json and docs/AZURE.md.
 */
import { type Env, envReader, loadConfig } from '../src/core/config.js';
import { ConfigError } from '../src/core/errors.js';

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
  /**
   * INTRADAY_MINUTES as the `intraday_batch` timer's NCRONTAB (intradaySchedule), or undefined when it is 0:
   * then the function is not registered at all.
   */
  readonly intradaySchedule: string | undefined;
  /** COMPACTION_QUEUE: the Storage queue of nightly jobs (daily_batch → compact_job). Default `makoto-compaction-jobs`. */
  readonly compactionQueue: string;
  /**
   * COMPACTION_TASK_QUEUE: the Storage queue of split jobs' tasks (compact_job / compact_task → compact_task),
   * on the same connection. Default `makoto-compaction-tasks`.
   */
  readonly compactionTaskQueue: string;
  /**
   * COMPACTION_TASK_CONCURRENCY: tasks of one split stage queued or running at once (the next is enqueued as
   * one finishes). Default 4; the tasks renew the split's one partition lease side by side (docs/AZURE.md).
   */
  readonly compactionTaskConcurrency: number;
  /**
   * COMPACTION_QUEUE_CONNECTION: the app setting (by name) the queue triggers connect with. Default
   * `AZURE_STORAGE_CONNECTION_STRING`: the lake's account; with a managed identity name a prefix whose
   * `<prefix>__queueServiceUri` setting holds the account's queue URL.
   */
  readonly compactionQueueConnection: string;
  /** COMPACTION_MAX_DEQUEUE_COUNT: attempts of a job (or a split task) before the host moves it to `<queue>-poison`; host.json's maxDequeueCount. Default 5. */
  readonly compactionMaxDequeueCount: number;
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
    intradaySchedule: intradaySchedule(loadConfig(env).compaction.intradayMinutes),
    compactionQueue: queueName('COMPACTION_QUEUE', read('COMPACTION_QUEUE') ?? 'makoto-compaction-jobs'),
    compactionTaskQueue: queueName('COMPACTION_TASK_QUEUE', read('COMPACTION_TASK_QUEUE') ?? 'makoto-compaction-tasks'),
    compactionTaskConcurrency: int('COMPACTION_TASK_CONCURRENCY', 4, 1, 256),
    compactionQueueConnection: read('COMPACTION_QUEUE_CONNECTION') ?? 'AZURE_STORAGE_CONNECTION_STRING',
    compactionMaxDequeueCount: int('COMPACTION_MAX_DEQUEUE_COUNT', 5, 1, 100),
  };
}

/**
 * The NCRONTAB of a run every `minutes` minutes (0: none): a step in the minutes field below an hour (15 →
 * every quarter hour), in the hours field for whole hours (120 → every second hour). NCRONTAB steps restart every hour (every day), so `minutes` must divide an hour (a day):
 * anything else is refused rather than run at uneven gaps.
 */
export function intradaySchedule(minutes: number): string | undefined {
  if (minutes === 0) return undefined;
  if (minutes < 60 && 60 % minutes === 0) return minutes === 1 ? '0 * * * * *' : `0 */${minutes} * * * *`;
  if (minutes % 60 === 0 && 24 % (minutes / 60) === 0) return minutes === 60 ? '0 0 * * * *' : `0 0 */${minutes / 60} * * *`;
  throw new ConfigError(
    `INTRADAY_MINUTES must divide an hour or be whole hours that divide a day (e.g. 15, 60, 120), got ${minutes}`,
  );
}

/** Storage queue names: 3 to 63 lowercase letters, digits and single dashes; `-poison` must still fit. */
function queueName(setting: string, name: string): string {
  if (!/^[a-z0-9](?:[a-z0-9]|-(?!-)){1,55}[a-z0-9]$/.test(name)) {
    throw new ConfigError(
      `${setting} must be a storage queue name (lowercase letters, digits, single dashes, 3 to 56 characters), got ${JSON.stringify(name)}`,
    );
  }
  return name;
}
