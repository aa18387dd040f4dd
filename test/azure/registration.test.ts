import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { intradaySchedule } from '../../azure/settings.js';

/**
 * Loads the app the way the Functions host does (azure/package.json "main", from the azure/ folder) with
 * a stand-in for the host's `@azure/functions-core`, and checks the exact bindings the host would get.
 */
function registeredFunctions(env: Record<string, string>) {
  const main = JSON.parse(readFileSync('azure/package.json', 'utf8')).main as string;
  const run = spawnSync(process.execPath, ['--require', resolve('test/azure/hostStandIn.cjs'), main], {
    cwd: resolve('azure'),
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as { name: string; bindings: Record<string, Record<string, unknown>>; retryOptions?: unknown }[];
}

const bindingsOf = (f: { bindings: Record<string, Record<string, unknown>> }) =>
  Object.values(f.bindings).map(({ name: _name, ...rest }) => rest);

describe('Functions app registration', () => {
  it('registers the eight functions with their triggers and retry policies', () => {
    const fns = registeredFunctions({ COSMOS_START_FROM_BEGINNING: 'true', COSMOS_MAX_ITEMS_PER_INVOCATION: '50' });
    expect(fns.map((f) => [f.name, bindingsOf(f), f.retryOptions ?? null])).toStrictEqual([
      [
        'ingest_changefeed',
        [
          {
            connection: 'COSMOS_CONNECTION',
            databaseName: 'makoto',
            containerName: 'messages',
            leaseContainerName: 'leases',
            createLeaseContainerIfNotExists: true,
            startFromBeginning: true,
            maxItemsPerInvocation: 50,
            type: 'cosmosDBTrigger',
            direction: 'in',
            properties: { supportsDeferredBinding: 'false' },
          },
        ],
        {
          strategy: 'exponentialBackoff',
          maxRetryCount: 5,
          minimumInterval: { seconds: 5 },
          maximumInterval: { seconds: 300 },
          retryStrategy: 'exponentialBackoff',
        },
      ],
      [
        'daily_batch',
        [
          {
            schedule: '0 0 17 * * *',
            runOnStartup: false,
            type: 'timerTrigger',
            direction: 'in',
            properties: { supportsDeferredBinding: 'false' },
          },
        ],
        {
          strategy: 'exponentialBackoff',
          maxRetryCount: 3,
          minimumInterval: { seconds: 60 },
          maximumInterval: { seconds: 900 },
          retryStrategy: 'exponentialBackoff',
        },
      ],
      [
        'intraday_batch',
        [
          {
            schedule: '0 0 * * * *',
            runOnStartup: false,
            type: 'timerTrigger',
            direction: 'in',
            properties: { supportsDeferredBinding: 'false' },
          },
        ],
        null,
      ],
      [
        'compact_http',
        [
          {
            methods: ['POST'],
            authLevel: 'function',
            route: 'compact',
            type: 'httpTrigger',
            direction: 'in',
            properties: { supportsDeferredBinding: 'false' },
          },
          { type: 'http', direction: 'out' },
        ],
        null,
      ],
      ...[
        ['compact_job', 'makoto-compaction-jobs'],
        ['compact_job_poison', 'makoto-compaction-jobs-poison'],
        ['compact_task', 'makoto-compaction-tasks'],
        ['compact_task_poison', 'makoto-compaction-tasks-poison'],
      ].map(([name, queueName]) => [
        name,
        [
          {
            queueName,
            connection: 'AZURE_STORAGE_CONNECTION_STRING',
            type: 'queueTrigger',
            direction: 'in',
            properties: { supportsDeferredBinding: 'false' },
          },
        ],
        null,
      ]),
    ]);
  });

  it('runs intraday_batch every INTRADAY_MINUTES, registers none at 0, and refuses a period the schedule cannot keep', () => {
    const refusal = (minutes: number) => {
      try {
        return intradaySchedule(minutes);
      } catch (error) {
        return (error as Error).message;
      }
    };
    expect([5, 15, 60, 120, 1440, 45, 90].map(refusal)).toStrictEqual([
      '0 */5 * * * *',
      '0 */15 * * * *',
      '0 0 * * * *',
      '0 0 */2 * * *',
      '0 0 */24 * * *',
      'INTRADAY_MINUTES must divide an hour or be whole hours that divide a day (e.g. 15, 60, 120), got 45',
      'INTRADAY_MINUTES must divide an hour or be whole hours that divide a day (e.g. 15, 60, 120), got 90',
    ]);
    // 0 = off: the function is not registered at all (the default, 60, is in the list above)
    expect(registeredFunctions({ INTRADAY_MINUTES: '0' }).map((f) => f.name)).not.toContain('intraday_batch');
  });

  it('takes the job and task queues from app settings; host.json gives up after as many attempts as the handlers count', () => {
    const fns = registeredFunctions({
      COMPACTION_QUEUE: 'nightly-jobs',
      COMPACTION_TASK_QUEUE: 'nightly-tasks',
      COMPACTION_QUEUE_CONNECTION: 'LAKE_QUEUES',
    });
    expect(fns.slice(4).map((f) => [f.name, bindingsOf(f)[0]?.queueName, bindingsOf(f)[0]?.connection])).toStrictEqual([
      ['compact_job', 'nightly-jobs', 'LAKE_QUEUES'],
      ['compact_job_poison', 'nightly-jobs-poison', 'LAKE_QUEUES'],
      ['compact_task', 'nightly-tasks', 'LAKE_QUEUES'],
      ['compact_task_poison', 'nightly-tasks-poison', 'LAKE_QUEUES'],
    ]);
    const host = JSON.parse(readFileSync('azure/host.json', 'utf8'));
    expect(host.extensions.queues.maxDequeueCount).toBe(5); // COMPACTION_MAX_DEQUEUE_COUNT's default
    const bad = spawnSync(process.execPath, ['--require', resolve('test/azure/hostStandIn.cjs'), 'index.mjs'], {
      cwd: resolve('azure'),
      env: { PATH: process.env.PATH, COMPACTION_QUEUE: 'Jobs_Queue' },
      encoding: 'utf8',
    });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain(
      'COMPACTION_QUEUE must be a storage queue name (lowercase letters, digits, single dashes, 3 to 56 characters), got "Jobs_Queue"',
    );
    const badTasks = spawnSync(process.execPath, ['--require', resolve('test/azure/hostStandIn.cjs'), 'index.mjs'], {
      cwd: resolve('azure'),
      env: { PATH: process.env.PATH, COMPACTION_TASK_QUEUE: 'tasks--queue' },
      encoding: 'utf8',
    });
    expect(badTasks.status).not.toBe(0);
    expect(badTasks.stderr).toContain(
      'COMPACTION_TASK_QUEUE must be a storage queue name (lowercase letters, digits, single dashes, 3 to 56 characters), got "tasks--queue"',
    );
  });

  it('takes the schedule and container names from app settings, and refuses a malformed setting', () => {
    const fns = registeredFunctions({
      DAILY_BATCH_SCHEDULE: '0 0 2 * * *',
      COSMOS_DATABASE: 'chat',
      COSMOS_CONTAINER: 'msgs',
      COSMOS_LEASE_CONTAINER: 'msgs-leases',
    });
    const trigger = bindingsOf(fns[0] as (typeof fns)[number])[0];
    expect([trigger?.databaseName, trigger?.containerName, trigger?.leaseContainerName]).toStrictEqual([
      'chat',
      'msgs',
      'msgs-leases',
    ]);
    expect(bindingsOf(fns[1] as (typeof fns)[number])[0]?.schedule).toBe('0 0 2 * * *');
    const bad = spawnSync(process.execPath, ['--require', resolve('test/azure/hostStandIn.cjs'), 'index.mjs'], {
      cwd: resolve('azure'),
      env: { PATH: process.env.PATH, COSMOS_START_FROM_BEGINNING: 'yes' },
      encoding: 'utf8',
    });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('COSMOS_START_FROM_BEGINNING must be true or false, got "yes"');
  });
});
