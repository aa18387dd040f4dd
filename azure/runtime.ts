import { type Config, loadConfig } from '../src/core/config.js';
import { ConfigError } from '../src/core/errors.js';
import type { ObjectStore } from '../src/ports/store/ObjectStore.js';
import { createStore } from '../stores/createStore.js';

export interface AzureRuntime {
  readonly config: Config;
  readonly store: ObjectStore;
}

let runtime: Promise<AzureRuntime> | undefined;

/**
 * Config and store for every invocation of this worker, built once from the app settings (the edge reads
 * process.env here and nowhere else). A failed build is not cached, so a fixed setting takes effect on the
 * next invocation.
 */
export function azureRuntime(): Promise<AzureRuntime> {
  if (!runtime) {
    runtime = (async () => {
      const config = loadConfig(process.env);
      // A Function must never fall back to DATA_DIR: the app's file system is not storage.
      if (!config.azure.connectionString && !config.azure.accountUrl) {
        throw new ConfigError('the Functions app needs AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_URL');
      }
      return { config, store: await createStore(config) };
    })();
    runtime.catch(() => {
      runtime = undefined;
    });
  }
  return runtime;
}

/** Forgets the cached runtime (tests change the settings between suites). */
export function resetAzureRuntime(): void {
  runtime = undefined;
}
