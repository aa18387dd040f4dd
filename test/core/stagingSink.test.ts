import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ObjectStoreStagingSink } from '../../src/capture/ingest/ObjectStoreStagingSink.js';
import { stagingKey } from '../../src/core/staging/layout.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { getBytes, listAll } from '../../src/ports/store/ObjectStore.js';
import { stagedRecord } from '../kit/factories.js';
import { tempDir } from '../kit/tempDir.js';

describe('ObjectStoreStagingSink', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    await dir.cleanup();
  });

  it('writes one gzip NDJSON object at the layout key, one line per record; the same key again replaces it', async () => {
    const store = new LocalStore(join(dir.path, 'lake'));
    const sink = new ObjectStoreStagingSink(store);
    const key = stagingKey('acme', '2025-08-11', 'ddb-9eb1d3542306_101_102');
    const first = [
      stagedRecord({ message_id: 'm1', source_seq: '101', content: 'two\nlines, "quoted", 秘密' }),
      stagedRecord({ message_id: 'm2', source_seq: '102', content: null, op: 'delete' }),
    ];

    await sink.put(key, first);
    await sink.put(key, [stagedRecord({ message_id: 'm1', source_seq: '101', content: 're-delivered' })]);

    expect(sink.location).toBe(store.location);
    expect((await listAll(store, '')).map((o) => o.key)).toStrictEqual([
      'staging/messages/tenant_id=acme/dt=2025-08-11/ddb-9eb1d3542306_101_102.ndjson.gz',
    ]);
    expect(gunzipSync(await getBytes(store, key)).toString('utf8')).toBe(
      '{"tenant_id":"acme","dt":"2025-08-11","message_id":"m1","conversation_id":"c1","sender_id":"u1","role":"user",' +
        '"content":"re-delivered","created_at":1754874000000,"updated_at":null,"attributes":"{}","source":"dynamodb",' +
        '"source_seq":"101","ingested_at":1754874005000,"op":"upsert"}\n',
    );
  });

  it('writes every record of the call, in order, each on its own line', async () => {
    const store = new LocalStore(join(dir.path, 'lake'));
    const key = stagingKey('acme', '2025-08-11', 'b_1_3');
    const records = [1, 2, 3].map((i) =>
      stagedRecord({ message_id: `m${i}`, source_seq: String(i), content: i === 2 ? 'a\nb' : `c${i}` }),
    );

    await new ObjectStoreStagingSink(store).put(key, records);

    const lines = gunzipSync(await getBytes(store, key))
      .toString('utf8')
      .split('\n');
    expect(lines.map((l) => (l === '' ? '' : JSON.parse(l)))).toStrictEqual([...records, '']);
  });
});
