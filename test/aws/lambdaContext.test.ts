import { Logger } from '@aws-lambda-powertools/logger';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { METRIC_SERVICE } from '../../src/ops/metrics.js';
import { withLambdaContext } from '../../stream-ingest/lambdaContext.js';
import { captureJsonLines, lambdaContext } from '../kit/lambdaTelemetry.js';

describe('withLambdaContext (Powertools injectLambdaContext)', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.useRealTimers();
  });

  it("puts the invocation's context on every line, drops the keys appended during it even when it throws, never logs the event", async () => {
    vi.stubEnv('POWERTOOLS_LOGGER_LOG_EVENT', 'true');
    vi.useFakeTimers({ toFake: ['Date'], now: Date.parse('2025-08-11T03:00:00Z') });
    const logger = new Logger({ serviceName: METRIC_SERVICE });
    const failing = withLambdaContext(logger, async (event: { secret: string }) => {
      logger.appendKeys({ run_id: 'r1' });
      logger.info('inside', { seen: event.secret.length });
      throw new Error('boom');
    });

    const { error, lines } = await captureJsonLines(async () => {
      await failing({ secret: 'message content' }, lambdaContext('req-7', 'makoto-stream-ingest')).catch((e: unknown) => {
        logger.info('after', { error: (e as Error).message });
      });
    });

    expect(error).toBeUndefined();
    const context = {
      timestamp: '2025-08-11T03:00:00.000Z',
      service: 'makoto-lake',
      cold_start: false,
      function_arn: 'arn:aws:lambda:ap-northeast-1:123456789012:function:makoto-stream-ingest',
      function_memory_size: '3008',
      function_name: 'makoto-stream-ingest',
      function_request_id: 'req-7',
      sampling_rate: 0,
    };
    expect(lines).toStrictEqual([
      { level: 'INFO', message: 'inside', ...context, run_id: 'r1', seen: 15 },
      { level: 'INFO', message: 'after', ...context, error: 'boom' },
    ]);
  });
});
