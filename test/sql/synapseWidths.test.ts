/**
 * Nothing ingest accepts can fail a Synapse query: the view declares each text column as varchar(n) under a
 * UTF-8 collation, which counts BYTES, and a longer value makes Synapse serverless fail the whole query
 * ("String or binary data would be truncated"). The widths and the ingest check come from one place (the
 * schema's maxBytes); here the longest values ingest accepts, in multi-byte text, go through ingest and
 * compaction into Parquet and are measured against the widths the generated view declares. The view reads
 * the Delta table, whose partition columns are columns of the read: tenant_id (at most 64 ASCII characters,
 * src/core/tenant.ts) and dt (yyyy-MM-dd) are declared too.
 */
import { gunzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ingestBatch } from '../../src/capture/ingest/ingestBatch.js';
import { dynamodbEventChanges } from '../../src/capture/ingest/sources.js';
import { loadConfig } from '../../src/core/config.js';
import { MAX_ID_BYTES, MAX_ROLE_BYTES, MESSAGE_COLUMNS } from '../../src/core/schema/messageSchema.js';
import { generatedSqlFiles } from '../../src/core/sqlgen/generateSql.js';
import { tenantIdProblem } from '../../src/core/tenant.js';
import { runCompaction } from '../../src/jobs/runCompaction.js';
import { LocalStore } from '../../src/ports/store/LocalStore.js';
import { getBytes, listAll } from '../../src/ports/store/ObjectStore.js';
import { chatItem, dynamodbRecord } from '../kit/factories.js';
import { readLake } from '../kit/readParquet.js';
import { tempDir } from '../kit/tempDir.js';

/** The width the generated Synapse view declares for each column of its WITH clause, in bytes (null = MAX). */
function declaredWidths(): Record<string, number | null> {
  const view = generatedSqlFiles('synapse').find((f) => f.path.endsWith('03_create_view_messages.sql'))?.text ?? '';
  const widths: Record<string, number | null> = {};
  for (const m of view.matchAll(/^ {4}\[(\w+)\]\s+varchar\((\d+|MAX)\) COLLATE Latin1_General_100_BIN2_UTF8,?$/gm)) {
    widths[m[1] as string] = m[2] === 'MAX' ? null : Number(m[2]);
  }
  return widths;
}

const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

describe('Synapse column widths and the ingest limits', () => {
  it('the view declares every text column with the width the schema (and so ingest) allows', () => {
    expect(declaredWidths()).toStrictEqual({
      tenant_id: 64,
      dt: 10,
      message_id: 1024,
      conversation_id: 1024,
      sender_id: 1024,
      role: 64,
      content: null,
      attributes: null,
      source: 16,
      source_seq: 64,
    });
    const fromSchema = Object.fromEntries(
      MESSAGE_COLUMNS.filter((c) => c.staging === 'VARCHAR').map((c) => [c.name, c.maxBytes ?? null]),
    );
    // the partition columns: a tenant id is 1-64 of [A-Za-z0-9_-] (one byte each), a day is yyyy-MM-dd
    expect(declaredWidths()).toStrictEqual({ tenant_id: 64, dt: 10, ...fromSchema });
    expect(tenantIdProblem('t'.repeat(64))).toBeUndefined();
    expect(tenantIdProblem('t'.repeat(65))).toBe('tenant id is 65 characters long (at most 64)');
    expect(tenantIdProblem('テナント')).toBe(`tenant id "テナント" may contain only letters, digits, '-' and '_'`);
  });

  describe('through ingest and compaction', () => {
    let dir: Awaited<ReturnType<typeof tempDir>>;
    let store: LocalStore;
    beforeEach(async () => {
      dir = await tempDir();
      store = new LocalStore(`${dir.path}/lake`);
    });
    afterEach(() => dir.cleanup());

    // the longest values ingest accepts, in 3- and 4-byte characters (1,024 bytes = 342 or 256 characters)
    const longestTenant = `${'t'.repeat(60)}-_9Z`;
    const longest = {
      tenantId: longestTenant,
      messageId: `${'あ'.repeat(341)}x`,
      conversationId: '😀'.repeat(MAX_ID_BYTES / 4),
      senderId: 'u'.repeat(MAX_ID_BYTES),
      role: `${'ロ'.repeat(21)}x`,
    };
    const oneTooLong = (field: string, value: string, id: string) =>
      chatItem({ ...longest, messageId: `over-${id}`, [field]: value });

    it('keeps the longest accepted values exactly, and they fit the declared widths', async () => {
      expect([
        bytes(longest.messageId),
        bytes(longest.conversationId),
        bytes(longest.senderId),
        bytes(longest.role),
        bytes(longest.tenantId),
      ]).toStrictEqual([MAX_ID_BYTES, MAX_ID_BYTES, MAX_ID_BYTES, MAX_ROLE_BYTES, 64]);
      const records = [
        dynamodbRecord({ seq: 1, item: chatItem(longest) }),
        dynamodbRecord({ seq: 2, item: oneTooLong('messageId', `${longest.messageId}x`, 'ignored') }),
        dynamodbRecord({ seq: 3, item: oneTooLong('conversationId', `${longest.conversationId}x`, 'conv') }),
        dynamodbRecord({ seq: 4, item: oneTooLong('senderId', `${longest.senderId}x`, 'sender') }),
        dynamodbRecord({ seq: 5, item: oneTooLong('role', `${longest.role}x`, 'role') }),
        // 1,024 characters, but 3,072 bytes
        dynamodbRecord({ seq: 6, item: chatItem({ messageId: 'あ'.repeat(1024) }) }),
        dynamodbRecord({ seq: 7, item: oneTooLong('tenantId', `${longestTenant}x`, 'tenant') }),
      ];
      const { changes, batchId } = dynamodbEventChanges({ Records: records });
      const ingested = await ingestBatch(store, changes, {
        source: 'dynamodb',
        batchId,
        now: Date.parse('2025-08-11T02:00:00Z'),
      });
      expect([ingested.staged, ingested.quarantined]).toStrictEqual([1, 6]);

      const quarantine = (await listAll(store, 'quarantine/ingest/')).map((o) => o.key);
      expect(quarantine).toHaveLength(1);
      const reasons = gunzipSync(await getBytes(store, quarantine[0] as string))
        .toString('utf8')
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { reason: string }).reason);
      expect(reasons).toStrictEqual([
        'message_id is 1025 UTF-8 bytes long (at most 1024, the width Synapse declares)',
        'conversation_id is 1025 UTF-8 bytes long (at most 1024, the width Synapse declares)',
        'sender_id is 1025 UTF-8 bytes long (at most 1024, the width Synapse declares)',
        'role is 65 UTF-8 bytes long (at most 64, the width Synapse declares)',
        'message_id is 3072 UTF-8 bytes long (at most 1024, the width Synapse declares)',
        'tenant id is 65 characters long (at most 64)',
      ]);

      const config = loadConfig({ DATA_DIR: `${dir.path}/lake`, TEMP_DIR: dir.path, DUCKDB_THREADS: '1' });
      const summary = await runCompaction({ store, config, date: '2025-08-11', tenants: [longestTenant] });
      expect(summary.ok).toBe(true);
      const rows = await readLake(store);
      expect(rows.map((r) => [r.tenant_id, r.dt, r.message_id, r.conversation_id, r.sender_id, r.role])).toStrictEqual([
        [longestTenant, '2025-08-11', longest.messageId, longest.conversationId, longest.senderId, longest.role],
      ]);
      const widths = declaredWidths();
      const row = rows[0] as unknown as Record<string, unknown>;
      const measured: string[] = [];
      for (const [column, width] of Object.entries(widths)) {
        const value = column === 'attributes' ? JSON.stringify(row[column]) : row[column];
        if (width !== null && typeof value === 'string') {
          expect(bytes(value), column).toBeLessThanOrEqual(width);
          measured.push(column);
        }
      }
      // every bounded column was there to measure (the partition columns come from the table, as in Synapse)
      expect(measured).toStrictEqual([
        'tenant_id',
        'dt',
        'message_id',
        'conversation_id',
        'sender_id',
        'role',
        'source',
        'source_seq',
      ]);
    });
  });
});
