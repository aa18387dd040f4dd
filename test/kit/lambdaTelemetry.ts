import type { Context } from 'aws-lambda';

/** A Lambda invocation context as the Node.js runtime passes it (only what the Logger reads is filled in). */
export function lambdaContext(requestId: string, functionName = 'makoto-daily-batch-processor'): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:ap-northeast-1:123456789012:function:${functionName}`,
    memoryLimitInMB: '3008',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: '2025/08/12/[$LATEST]0123456789abcdef',
    getRemainingTimeInMillis: () => 900_000,
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

/**
 * Runs `action` with process.stdout and process.stderr captured (where the Powertools Logger and Metrics
 * write in Lambda), and returns every line written, parsed as JSON, in order.
 */
export async function captureJsonLines<T>(
  action: () => Promise<T>,
): Promise<{ result: T | undefined; error: unknown; lines: unknown[] }> {
  const chunks: string[] = [];
  const stdout = process.stdout.write;
  const stderr = process.stderr.write;
  const capture = (chunk: unknown) => {
    chunks.push(String(chunk));
    return true;
  };
  process.stdout.write = capture as typeof process.stdout.write;
  process.stderr.write = capture as typeof process.stderr.write;
  let result: T | undefined;
  let error: unknown;
  try {
    result = await action();
  } catch (e) {
    error = e;
  } finally {
    process.stdout.write = stdout;
    process.stderr.write = stderr;
  }
  const lines = chunks
    .join('')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as unknown);
  return { result, error, lines };
}
