import { UsageError } from '../../core/errors.js';
import type { FailureMessage } from '../../ports/FailureMessageSource.js';

/**
 * On-failure message bodies from a file's text, in any of the shapes an operator has at hand:
 * one message object, a JSON array of them, NDJSON (one per line), or what `aws sqs receive-message`
 * prints (`{"Messages":[{"MessageId","Body"}]}`).
 */
export function failureMessagesFromText(text: string, file: string): FailureMessage[] {
  const trimmed = text.trim();
  if (trimmed === '') throw new UsageError(`${file} holds no on-failure messages`);
  let values: unknown[];
  try {
    const parsed: unknown = JSON.parse(trimmed);
    values = Array.isArray(parsed) ? parsed : [parsed];
  } catch {
    try {
      values = trimmed
        .split(/\r?\n/)
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as unknown);
    } catch (error) {
      throw new UsageError(`cannot read ${file} as JSON or NDJSON on-failure messages: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  const messages: FailureMessage[] = [];
  values.forEach((value, index) => {
    const sqs = (value as { Messages?: unknown } | null)?.Messages;
    if (Array.isArray(sqs)) {
      for (const m of sqs as { MessageId?: string; Body?: unknown }[]) {
        messages.push({ id: m.MessageId ?? `${file}#${messages.length + 1}`, body: m.Body });
      }
    } else messages.push({ id: `${file}#${index + 1}`, body: value });
  });
  return messages;
}
