import { InvocationContext } from '@azure/functions';
import { QueueClient } from '@azure/storage-queue';

/** What a drained message went through: the attempts the handler saw, and where the message ended. */
export interface Attempt {
  readonly dequeueCount: number;
  readonly outcome: 'ok' | 'threw';
  readonly error?: string;
}

export interface Delivery {
  readonly body: unknown;
  readonly attempts: Attempt[];
  readonly poisoned: boolean;
}

/**
 * Stands in for the Functions host's queue trigger against Azurite's real queues, with host.json's
 * semantics: receive with a visibility timeout, decode base64 JSON, call the handler with the message's
 * dequeueCount, delete on success; on a throw make the message visible again (host.json visibilityTimeout,
 * here 0), and once dequeueCount reached maxDequeueCount move it to `<queue>-poison`. A message whose
 * dequeueCount already exceeds it (its last attempt died) goes to the poison queue without a call.
 */
export async function drainQueue(
  connectionString: string,
  queueName: string,
  handler: (message: unknown, context: InvocationContext) => Promise<unknown>,
  options: { maxDequeueCount: number; functionName: string; logs?: string[] },
): Promise<Delivery[]> {
  const queue = new QueueClient(connectionString, queueName);
  const poison = new QueueClient(connectionString, `${queueName}-poison`);
  const deliveries = new Map<string, Delivery>();
  for (;;) {
    const { receivedMessageItems: items } = await queue.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 60 });
    if (items.length === 0) {
      const { approximateMessagesCount } = await queue.getProperties();
      if (!approximateMessagesCount) break;
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    for (const item of items) {
      const body = JSON.parse(Buffer.from(item.messageText, 'base64').toString('utf8'));
      const delivery: Delivery = deliveries.get(item.messageId) ?? { body, attempts: [], poisoned: false };
      deliveries.set(item.messageId, delivery);
      const toPoison = async () => {
        await poison.createIfNotExists();
        await poison.sendMessage(item.messageText);
        await queue.deleteMessage(item.messageId, item.popReceipt);
        deliveries.set(item.messageId, { ...delivery, poisoned: true });
      };
      if (item.dequeueCount > options.maxDequeueCount) {
        await toPoison();
        continue;
      }
      const context = new InvocationContext({
        functionName: options.functionName,
        invocationId: `${options.functionName}-${item.messageId}-${item.dequeueCount}`,
        triggerMetadata: { id: item.messageId, dequeueCount: item.dequeueCount, insertionTime: item.insertedOn },
        logHandler: (level, ...args) => options.logs?.push(`${level}: ${args.join(' ')}`),
      });
      try {
        await handler(body, context);
        delivery.attempts.push({ dequeueCount: item.dequeueCount, outcome: 'ok' });
        await queue.deleteMessage(item.messageId, item.popReceipt);
      } catch (error) {
        delivery.attempts.push({ dequeueCount: item.dequeueCount, outcome: 'threw', error: (error as Error).name });
        if (item.dequeueCount >= options.maxDequeueCount) await toPoison();
        else await queue.updateMessage(item.messageId, item.popReceipt, undefined, 0);
      }
    }
  }
  return [...deliveries.values()];
}

/** Every message of a queue, decoded (peeked, not removed). */
export async function peekAll(queue: QueueClient): Promise<unknown[]> {
  if (!(await queue.exists())) return [];
  const { peekedMessageItems } = await queue.peekMessages({ numberOfMessages: 32 });
  return peekedMessageItems.map((m) => JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')));
}
