import type { StagedRecord } from '../../core/schema/messageSchema.js';
import type { StagingSink } from '../../ports/StagingSink.js';
import { type ObjectStore, putNdjson } from '../../ports/store/ObjectStore.js';

/**
 * Staging as objects of the lake's store (STAGING_TRANSPORT=s3, and every Azure and local run): each staging
 * object is written whole, gzip NDJSON, at its layout key; a re-delivered batch replaces the same object.
 *
 * @example
 * await new ObjectStoreStagingSink(store).put(stagingKey('acme', '2025-08-11', 'ddb-1a2b_101_105'), records);
 */
export class ObjectStoreStagingSink implements StagingSink {
  readonly location: string;

  constructor(private readonly store: ObjectStore) {
    this.location = store.location;
  }

  async put(key: string, records: readonly StagedRecord[]): Promise<void> {
    await putNdjson(this.store, key, records);
  }
}
