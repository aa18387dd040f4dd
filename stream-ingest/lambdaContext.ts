import type { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';

type Decorated = Parameters<ReturnType<Logger['injectLambdaContext']>>;

/**
 * `handler` as Powertools' `injectLambdaContext` runs it: every line `logger` writes meanwhile carries the
 * invocation's context (function name and ARN, memory, request id, cold start), and the keys appended during
 * it (`run_id`) are removed when it returns or throws; the event itself is never logged. It is the Logger's
 * class-method decorator applied as the function it is, since decorator syntax needs TypeScript's legacy
 * `experimentalDecorators` (and the middleware form needs middy).
 *
 * @example
 * const answer = await withLambdaContext(logger, (event: DynamoDBStreamEvent) => ingest(event))(event, context);
 */
export function withLambdaContext<E, R>(
  logger: Logger,
  handler: (event: E, context: Context) => Promise<R>,
): (event: E, context: Context) => Promise<R> {
  const descriptor = { value: handler };
  // logEvent off whatever POWERTOOLS_LOGGER_LOG_EVENT says: an event holds message content, never logged
  logger.injectLambdaContext({ resetKeys: true, logEvent: false })(
    { handler } as unknown as Decorated[0],
    'handler',
    descriptor as unknown as Decorated[2],
  );
  return descriptor.value;
}
