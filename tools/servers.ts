/**
 * Local servers (s3rver, Azurite, Cosmos stand-in, DynamoDB Local) as child processes on 127.0.0.1: shared by
 * the test suites and the bench, so it lives in tools/, which both may import.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, Socket } from 'node:net';
import { resolve } from 'node:path';

/** A local server a suite started; `stop()` ends it (and waits) – call it in afterAll. */
export interface RunningServer {
  readonly port: number;
  readonly process: ChildProcess;
  /** What the server printed, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * Starts `node node_modules/.bin/<bin> ...args` (node itself, not npx, so the PID we stop is the
 * server's) and waits until 127.0.0.1:port accepts connections.
 */
export async function startNodeServer(
  bin: string,
  args: readonly string[],
  port: number,
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {},
): Promise<RunningServer> {
  const child = spawn(process.execPath, [resolve('node_modules/.bin', bin), ...args], {
    env: { ...process.env, ...options.env },
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return track(child, port, options.timeoutMs);
}

/** Wraps an already spawned server process the same way (e.g. java for DynamoDB Local). */
export async function track(child: ChildProcess, port: number, timeoutMs = 60_000): Promise<RunningServer> {
  let text = '';
  child.stdout?.on('data', (d) => {
    text += d;
  });
  child.stderr?.on('data', (d) => {
    text += d;
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const server: RunningServer = {
    port,
    process: child,
    output: () => text,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
  const deadline = Date.now() + timeoutMs;
  while (!(await canConnect(port))) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode} before listening:\n${text}`);
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`server did not listen on 127.0.0.1:${port} within ${timeoutMs} ms:\n${text}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return server;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((r) => {
    const socket = new Socket();
    socket.once('connect', () => {
      socket.destroy();
      r(true);
    });
    socket.once('error', () => r(false));
    socket.connect(port, '127.0.0.1');
  });
}
