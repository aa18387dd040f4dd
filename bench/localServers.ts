/** s3rver and Azurite for the scenarios that measure the cloud stores (tools/servers.ts, tools/azureServers.ts). */
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import type { ObjectStore } from '../src/ports/store/ObjectStore.js';
import { startAzurite } from '../tools/azureServers.js';
import { freePort, type RunningServer, startNodeServer } from '../tools/servers.js';
import type { Context } from './context.js';

export interface Servers {
  s3: { endpoint: string; bucket: string; server: RunningServer };
  azurite: RunningServer & { connectionString: string };
  stop(): Promise<void>;
}

/** s3rver and Azurite on 127.0.0.1 (as the test suites start them), once per bench run. */
export async function servers(context: Context): Promise<Servers> {
  if (context.servers) return context.servers;
  const directory = await mkdtemp(join(context.root, 's3rver-'));
  const port = await freePort();
  const s3 = await startNodeServer(
    's3rver',
    ['--address', '127.0.0.1', '--port', String(port), '--directory', directory, '--silent'],
    port,
    { env: { NODE_OPTIONS: '--openssl-legacy-provider' } },
  );
  let azurite: Servers['azurite'];
  try {
    azurite = await startAzurite();
  } catch (error) {
    await s3.stop();
    throw error;
  }
  const endpoint = `http://127.0.0.1:${port}`;
  const s3Store = await s3StoreFor(endpoint, 'bench');
  await s3Store.client.send(new s3Store.CreateBucketCommand({ Bucket: 'bench' }));
  context.servers = {
    s3: { endpoint, bucket: 'bench', server: s3 },
    azurite,
    stop: async () => {
      await s3.stop();
      await azurite.stop();
    },
  };
  return context.servers;
}

export async function s3StoreFor(endpoint: string, bucket: string) {
  const { S3Client, CreateBucketCommand } = await import('@aws-sdk/client-s3');
  const { S3Store } = await import('../stores/s3/S3Store.js');
  const client = new S3Client({
    endpoint,
    region: 'ap-northeast-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  return { store: new S3Store({ bucket, client }), client, CreateBucketCommand };
}

export async function blobStoreFor(connectionString: string, container: string): Promise<ObjectStore> {
  const { BlobStore } = await import('../stores/blob/BlobStore.js');
  const { BlobServiceClient } = await import('@azure/storage-blob');
  // Created up front: BlobStore creates a missing container on the first write only, and parallel first
  // writes race it (reported to the lead).
  await BlobServiceClient.fromConnectionString(connectionString).getContainerClient(container).createIfNotExists();
  return new BlobStore({ connectionString, containerName: container });
}
