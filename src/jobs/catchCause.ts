/**
 * The message in the `Cause` of a Step Functions Catch output (`{Error, Cause}`): for a Lambda error the Cause
 * is the function's error as JSON (`{"errorType", "errorMessage", "trace"}`), for a States error plain text.
 */
export function catchCauseMessage(cause: unknown): string {
  const text = typeof cause === 'string' ? cause : '';
  try {
    const parsed = JSON.parse(text) as { errorMessage?: unknown };
    if (typeof parsed?.errorMessage === 'string') return parsed.errorMessage;
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error; // a plain-text cause is the message itself
  }
  return text;
}
