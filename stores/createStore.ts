import type { Config } from '../src/core/config.js';
import { LocalStore } from '../src/ports/store/LocalStore.js';
import type { ObjectStore } from '../src/ports/store/ObjectStore.js';

/**
 * The store every command uses, chosen from the config: S3 when S3_BUCKET_NAME is set, Azure Blob when
 * AZURE_STORAGE_CONNECTION_STRING (or AZURE_STORAGE_ACCOUNT_URL) is set, else the local DATA_DIR.
 * Cloud SDKs are imported only when their store is chosen.
 */
export async function createStore(config: Config): Promise<ObjectStore> {
  if (config.aws.bucket) {
    const { S3Store } = await import('./s3/S3Store.js');
    const { endpoint, forcePathStyle } = config.aws;
    // An S3-compatible endpoint ignores the region, but the SDK still wants one.
    const region = config.aws.region ?? (endpoint ? 'us-east-1' : undefined);
    return new S3Store({ bucket: config.aws.bucket, clientConfig: { region, endpoint, forcePathStyle } });
  }
  if (config.azure.connectionString || config.azure.accountUrl) {
    const { BlobStore } = await import('./blob/BlobStore.js');
    const { connectionString, accountUrl, container: containerName } = config.azure;
    if (connectionString) return new BlobStore({ connectionString, containerName });
    // Production: managed identity / workload identity / az login, no key in the settings.
    const { DefaultAzureCredential } = await import('@azure/identity');
    return new BlobStore({ accountUrl: accountUrl as string, credential: new DefaultAzureCredential(), containerName });
  }
  return new LocalStore(config.dataDir);
}
