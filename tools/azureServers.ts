/** Azurite and the Cosmos DB stand-in, in memory on free 127.0.0.1 ports: for the test suites and the bench. */
import { freePort, type RunningServer, startNodeServer } from './servers.js';

/** Azurite's well-known development account (public, documented by Microsoft; not a secret). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export const azuriteConnectionString = (port: number, queuePort?: number) =>
  `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:${port}/${AZURITE_ACCOUNT};${
    queuePort === undefined ? '' : `QueueEndpoint=http://127.0.0.1:${queuePort}/${AZURITE_ACCOUNT};`
  }`;

/** Azurite's Blob service in memory on a free 127.0.0.1 port. */
export async function startAzurite(): Promise<RunningServer & { connectionString: string }> {
  const port = await freePort();
  const server = await startNodeServer(
    'azurite-blob',
    [
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      String(port),
      '--inMemoryPersistence',
      '--skipApiVersionCheck',
      '--disableTelemetry',
      '--silent',
    ],
    port,
  );
  return Object.assign(server, { connectionString: azuriteConnectionString(port) });
}

/**
 * Azurite's Blob and Queue services in memory, each on a free 127.0.0.1 port (Azurite serves queues from a
 * process of its own); one connection string names both.
 */
export async function startAzuriteWithQueues(): Promise<{
  connectionString: string;
  blob: RunningServer;
  queue: RunningServer;
  stop(): Promise<void>;
}> {
  const [blob, queuePort] = await Promise.all([startAzurite(), freePort()]);
  const queue = await startNodeServer(
    'azurite-queue',
    [
      '--queueHost',
      '127.0.0.1',
      '--queuePort',
      String(queuePort),
      '--inMemoryPersistence',
      '--skipApiVersionCheck',
      '--disableTelemetry',
      '--silent',
    ],
    queuePort,
  ).catch(async (error: unknown) => {
    await blob.stop();
    throw error;
  });
  return {
    connectionString: azuriteConnectionString(blob.port, queuePort),
    blob,
    queue,
    stop: async () => {
      await Promise.all([blob.stop(), queue.stop()]);
    },
  };
}

/** The Cosmos DB emulator's well-known key (public; the stand-in accepts any key). */
export const COSMOS_KEY = 'C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==';

/** @vercel/cosmosdb-server over plain HTTP on a free 127.0.0.1 port. */
export async function startCosmos(): Promise<RunningServer & { endpoint: string }> {
  const port = await freePort();
  const server = await startNodeServer('cosmosdb-server', ['--no-ssl', '--host', '127.0.0.1', '--port', String(port)], port);
  return Object.assign(server, { endpoint: `http://127.0.0.1:${port}` });
}
