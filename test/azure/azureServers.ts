import { freePort, type RunningServer, startNodeServer } from '../kit/servers.js';

/** Azurite's well-known development account (public, documented by Microsoft; not a secret). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export const azuriteConnectionString = (port: number) =>
  `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:${port}/${AZURITE_ACCOUNT};`;

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

/** The Cosmos DB emulator's well-known key (public; the stand-in accepts any key). */
export const COSMOS_KEY = 'C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==';

/** @vercel/cosmosdb-server over plain HTTP on a free 127.0.0.1 port. */
export async function startCosmos(): Promise<RunningServer & { endpoint: string }> {
  const port = await freePort();
  const server = await startNodeServer('cosmosdb-server', ['--no-ssl', '--host', '127.0.0.1', '--port', String(port)], port);
  return Object.assign(server, { endpoint: `http://127.0.0.1:${port}` });
}
