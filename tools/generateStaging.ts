import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { StagedRecord } from '../src/core/schema/messageSchema.js';
import { stagingKey } from '../src/core/staging/layout.js';
import { jstDayRange } from '../src/core/time/jst.js';
import { randomSource } from '../src/jobs/demo/chatDay.js';

export interface StagingSpec {
  readonly root: string;
  readonly tenant: string;
  readonly date: string;
  readonly messages: number;
  readonly seed?: number;
  /** Records per staging object: uniform in [min, max] (Lambda batches: 100 to 10,000). */
  readonly batch?: readonly [number, number];
  /** UTF-8 bytes of content: uniform in [min, max]. */
  readonly contentBytes?: readonly [number, number];
  /** Texts to draw content from (textPool); built from the seed when absent. Share one across many tenants. */
  readonly pool?: readonly string[];
}

export interface StagingStats {
  readonly objects: number;
  readonly records: number;
  readonly bytes: number;
  /** Messages that must be in the lake after compaction. */
  readonly expectedRows: number;
}

const WORDS = [
  'お世話になっております',
  '会議',
  '資料',
  '確認',
  '売上',
  '推移',
  '来期',
  '予算案',
  'プロジェクト',
  '進め方',
  '意見',
  'AIアシスタント',
  '要約',
  '以下の通りです',
  'ありがとうございます',
  '東京',
  '大阪',
  '新幹線',
  '天気',
  '明日',
  '翻訳',
  '英語',
  'コード',
  'バグ',
  '修正',
  'グラフ',
  'データ',
  '分析',
  '顧客',
  '契約',
  '見積もり',
  '請求書',
  '納期',
  '担当者',
  '。',
  '、',
  '！',
  '？',
  '🙏',
  '📊',
  '😊',
  '🚄',
  '✏️',
  'ですが',
  'について',
  'をお願いします',
  'でしょうか',
  'です。',
  'ます。',
  'the',
  'report',
  'Q3',
  '2025年',
  '第1四半期',
  '部長',
  '課長',
  'チーム',
  'メール',
  '返信',
  '至急',
];

/** A pool of distinct texts, so gzip sees text about as repetitive as real chat (not one phrase repeated). */
export function textPool(random: () => number, minBytes = 100, maxBytes = 2_000): string[] {
  return Array.from({ length: 4096 }, () => {
    const target = minBytes + Math.floor(random() * (maxBytes - minBytes + 1));
    let text = '';
    while (Buffer.byteLength(text) < target) text += WORDS[Math.floor(random() * WORDS.length)];
    return text;
  });
}

/**
 * Writes a realistic tenant-day straight into staging (the shape the capture path writes): ~5% of the
 * messages edited, ~1% deleted by the user, ~2% of the records delivered twice (retries), batches of
 * realistic sizes, Japanese content of 100 to 2,000 bytes. Streams: never more than one batch in memory.
 */
export async function generateStaging(spec: StagingSpec): Promise<StagingStats> {
  const random = randomSource(spec.seed ?? 42);
  const [minBatch, maxBatch] = spec.batch ?? [100, 10_000];
  const [minBytes, maxBytes] = spec.contentBytes ?? [100, 2_000];
  const { startMs, endMs } = jstDayRange(spec.date);
  const pool = spec.pool ?? textPool(random, minBytes, maxBytes);
  let seq = 49_000_000_000_000_000_000n;
  let objects = 0;
  let records = 0;
  let bytes = 0;
  let deleted = 0;
  let batch: StagedRecord[] = [];
  let batchSize = minBatch + Math.floor(random() * (maxBatch - minBatch + 1));
  const ingestedAt = endMs + 3_600_000;
  const nextSeq = (): string => {
    seq += 17n;
    return seq.toString();
  };

  const flush = async () => {
    if (batch.length === 0) return;
    const first = batch[0] as StagedRecord;
    const last = batch[batch.length - 1] as StagedRecord;
    const key = stagingKey(spec.tenant, spec.date, `bench_${first.source_seq}_${last.source_seq}_${objects}`);
    const body = gzipSync(
      batch
        .map((r) => JSON.stringify(r))
        .join('\n')
        .concat('\n'),
      { level: 6 },
    );
    await mkdir(dirname(join(spec.root, key)), { recursive: true });
    await writeFile(join(spec.root, key), body);
    objects++;
    bytes += body.length;
    records += batch.length;
    batch = [];
    batchSize = minBatch + Math.floor(random() * (maxBatch - minBatch + 1));
  };
  const push = async (record: StagedRecord) => {
    batch.push(record);
    if (random() < 0.02) batch.push(record); // a duplicate delivery of the same version
    if (batch.length >= batchSize) await flush();
  };
  const content = (): string => `${pool[Math.floor(random() * pool.length)]}${Math.floor(random() * 1e9).toString(36)}`;

  for (let i = 0; i < spec.messages; i++) {
    const created = startMs + Math.floor(random() * (endMs - startMs));
    const conversation = Math.floor(i / 8);
    const base: StagedRecord = {
      tenant_id: spec.tenant,
      dt: spec.date,
      message_id: `msg-${spec.tenant}-${i.toString(36).padStart(8, '0')}`,
      conversation_id: `conv-${conversation.toString(36)}`,
      sender_id: i % 2 === 0 ? `user-${conversation % 5000}` : 'makoto-ai',
      role: i % 2 === 0 ? 'user' : 'assistant',
      content: content(),
      created_at: created,
      updated_at: created,
      attributes: i % 2 === 0 ? '{"client":"web"}' : `{"model":"makoto-large","tokens":${Math.floor(random() * 900)}}`,
      source: 'dynamodb',
      source_seq: nextSeq(),
      ingested_at: ingestedAt,
      op: 'upsert',
    };
    await push(base);
    const r = random();
    if (r < 0.05) {
      await push({
        ...base,
        content: `${base.content}（編集済み）`,
        updated_at: created + 60_000,
        source_seq: nextSeq(),
      });
    } else if (r < 0.06) {
      await push({ ...base, op: 'delete', source_seq: nextSeq() });
      deleted++;
    }
  }
  await flush();
  return { objects, records, bytes, expectedRows: spec.messages - deleted };
}
