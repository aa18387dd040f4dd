import type { StagedRecord } from '../core/schema/messageSchema.js';

/**
 * Where capture stages records (STAGING_TRANSPORT). Each call stages one staging object of the layout: the
 * records of one tenant-day of one batch, named `key` (`stagingKey(tenant, day, name)`, a name that comes
 * from the batch's feed positions, so a re-delivered batch names the same object). The object-store sink
 * (src/capture/ingest/ObjectStoreStagingSink.ts) writes them as the gzip NDJSON object at `key`; the Firehose sink
 * (stream-ingest/firehose.ts) sends one record per line, and the delivery stream writes them under the same
 * tenant-day prefix with object names of its own. Either way the compactor reads the same lines.
 *
 * Quarantine and pending deletes are not staging: they go to the object store whatever the transport.
 */
export interface StagingSink {
  /** Where it stages, for logs (never credentials). */
  readonly location: string;
  /** Stages `records`, all of the tenant-day `key` names. Throws (a StoreError) unless every record is stored. */
  put(key: string, records: readonly StagedRecord[]): Promise<void>;
}
