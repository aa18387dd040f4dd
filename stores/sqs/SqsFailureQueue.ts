import { DeleteMessageCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { RedriveError } from '../../src/ports/errors.js';
import type { FailureMessage, FailureMessageSource } from '../../src/ports/FailureMessageSource.js';

export interface SqsFailureQueueOptions {
  /** Seconds a received message stays invisible to other consumers while it is redriven. Default 300. */
  readonly visibilityTimeout?: number;
  /** Long-poll seconds per ReceiveMessage. Default 1 (a redrive drains a queue, it does not wait on it). */
  readonly waitTimeSeconds?: number;
}

/**
 * The stream ingest's on-failure SQS queue as a source of failure messages: ReceiveMessage up to 10 at a
 * time; DeleteMessage only when the redrive acknowledges a message (its records are staged).
 * Only `send` is used, so the smallest stand-in client is an object with a `send` method.
 */
export class SqsFailureQueue implements FailureMessageSource {
  readonly location: string;
  private readonly receipts = new Map<string, string>();

  constructor(
    private readonly client: Pick<SQSClient, 'send'>,
    private readonly queueUrl: string,
    private readonly options: SqsFailureQueueOptions = {},
  ) {
    this.location = queueUrl;
  }

  async receive(): Promise<readonly FailureMessage[]> {
    const answer = await this.client.send(
      new ReceiveMessageCommand({
        QueueUrl: this.queueUrl,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: this.options.visibilityTimeout ?? 300,
        WaitTimeSeconds: this.options.waitTimeSeconds ?? 1,
      }),
    );
    const messages: FailureMessage[] = [];
    for (const m of answer.Messages ?? []) {
      if (!m.MessageId || !m.ReceiptHandle) continue;
      this.receipts.set(m.MessageId, m.ReceiptHandle);
      messages.push({ id: m.MessageId, body: m.Body ?? '' });
    }
    return messages;
  }

  async acknowledge(message: FailureMessage): Promise<void> {
    const receipt = this.receipts.get(message.id);
    if (receipt === undefined) throw new RedriveError(`message ${message.id} was not received from ${this.queueUrl}`);
    await this.client.send(new DeleteMessageCommand({ QueueUrl: this.queueUrl, ReceiptHandle: receipt }));
    this.receipts.delete(message.id);
  }
}
