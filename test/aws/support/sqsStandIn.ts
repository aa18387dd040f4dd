import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { freePort } from '../../../tools/servers.js';

/**
 * The smallest SQS stand-in the CLI's real SQS client can talk to: the AWS JSON 1.0 protocol
 * (`X-Amz-Target: AmazonSQS.ReceiveMessage` / `AmazonSQS.DeleteMessage`) over HTTP on 127.0.0.1, one
 * in-memory queue. A received message stays invisible until deleted (this run never re-receives it).
 * No local SQS server is available as an npm package here; this covers what `redrive` uses, nothing more.
 */
export async function startSqsStandIn(bodies: readonly string[]): Promise<{
  endpoint: string;
  queueUrl: string;
  /** Messages not deleted yet, by id. */
  remaining(): string[];
  requests: string[];
  stop(): Promise<void>;
}> {
  const messages = bodies.map((body, i) => ({ id: `msg-${i + 1}`, receipt: `receipt-${i + 1}`, body, received: false }));
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk) => {
      text += chunk;
    });
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '').replace('AmazonSQS.', '');
      const input = JSON.parse(text || '{}') as Record<string, unknown>;
      requests.push(target);
      res.setHeader('content-type', 'application/x-amz-json-1.0');
      if (target === 'ReceiveMessage') {
        const max = Number(input.MaxNumberOfMessages ?? 1);
        const batch = messages.filter((m) => !m.received).slice(0, max);
        for (const m of batch) m.received = true;
        res.end(
          JSON.stringify({
            Messages: batch.map((m) => ({
              MessageId: m.id,
              ReceiptHandle: m.receipt,
              Body: m.body,
              // the SDK checks every body against it
              MD5OfBody: createHash('md5').update(m.body).digest('hex'),
            })),
          }),
        );
        return;
      }
      if (target === 'DeleteMessage') {
        const index = messages.findIndex((m) => m.receipt === input.ReceiptHandle);
        if (index >= 0) messages.splice(index, 1);
        res.end('{}');
        return;
      }
      res.statusCode = 400;
      res.end(JSON.stringify({ __type: 'com.amazonaws.sqs#InvalidAction', message: `not in the stand-in: ${target}` }));
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    queueUrl: `${endpoint}/000000000000/makoto-stream-ingest-failures`,
    remaining: () => messages.map((m) => m.id),
    requests,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}
