import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { compactionQuarantineKey, stagingKey } from '../../src/core/staging/layout.js';
import { gzipNdjson } from '../../src/core/staging/ndjson.js';
import { compactPartition } from '../../src/engine/compactPartition.js';
import { readManifest } from '../../src/lake/manifest.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { getBytes } from '../../src/ports/store/ObjectStore.js';
import { duckDbFixture } from '../kit/duckDbFixture.js';
import { stagedRecord } from '../kit/factories.js';
import { readPartition } from '../kit/pipeline.js';

const fixture = duckDbFixture('makoto-lake-salvage-');

const D = '2025-08-11';

describe('lines DuckDB refuses although they are valid JSON to JavaScript', () => {
  it('quarantines a duplicate-key line and an escaped lone surrogate with the staging key, and compacts the rest', async () => {
    const store = new LocalStore(join(fixture.path, 'data'));
    const line = (id: string, seq: number, content = `text ${id}`) =>
      JSON.stringify(stagedRecord({ message_id: id, source_seq: String(seq), content }));
    const duplicateKey = `{"tenant_id":"acme",${line('dup', 3).slice(1)}`;
    const loneSurrogate = line('surrogate', 5, 'a\ud800b'); // JSON.stringify writes it escaped: "a\ud800b"
    expect(loneSurrogate).toContain('"a\\ud800b"');
    const badKey = stagingKey('acme', D, 'foreign');
    const lines = [line('g1', 1), line('g2', 2), duplicateKey, line('g4', 4), loneSurrogate, line('g6', 6)];
    await store.putBytes(badKey, gzipSync(`${lines.join('\n')}\n`));
    await store.putBytes(stagingKey('acme', D, 'clean'), gzipNdjson([stagedRecord({ message_id: 'clean', source_seq: '7' })]));

    const result = await compactPartition({ store, db: fixture.db, workDirectory: join(fixture.path, 'work') }, 'acme', D);
    expect([result.status, result.rowsWritten, result.rowsRejected, result.objectsRejected]).toStrictEqual([
      'compacted',
      5,
      2,
      0,
    ]);
    const rows = await readPartition(store, 'acme', D, join(fixture.path, 'read'));
    expect(rows.map((r) => r.message_id)).toStrictEqual(['clean', 'g1', 'g2', 'g4', 'g6']);

    expect((await readManifest(store, 'acme', D))?.quarantine).toBe(compactionQuarantineKey('acme', D, result.runId));
    const quarantine = gunzipSync(await getBytes(store, compactionQuarantineKey('acme', D, result.runId)))
      .toString('utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(quarantine.map((q) => [q.object_key, q.line, q.reason, q.raw])).toStrictEqual([
      [
        badKey,
        3,
        // DuckDB shortens the object in its message
        'DuckDB refused the line: Invalid Input Error: JSON transform error: Object {"tenant_id":"acme","tenant_id":"acme","dt":"2025-... has duplicate key "tenant_id"',
        duplicateKey,
      ],
      [
        badKey,
        5,
        expect.stringMatching(/^DuckDB refused the line: Invalid Input Error: Malformed JSON.*no low surrogate in string\.$/),
        loneSurrogate,
      ],
    ]);
    // nothing in the quarantine names the run's temp folder
    expect(JSON.stringify(quarantine)).not.toContain(join(fixture.path, 'work'));
  });
});
