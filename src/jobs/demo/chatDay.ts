import { marshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBStreamRecordLike } from '../../core/model/dynamodb.js';
import { jstDayRange } from '../../core/time/jst.js';

/** A seeded PRNG (mulberry32): the same seed gives the same day, so demos and benchmarks repeat. */
export function randomSource(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const USER_LINES = [
  'こんにちは！今日の会議の資料を要約してもらえますか？',
  '明日の天気はどうですか☀️',
  'この文章を英語に翻訳してください。「新しいプロジェクトが始まります」',
  'ありがとう！とても助かりました🙏',
  '売上レポートのグラフを作りたいです📈',
  '東京から大阪まで新幹線で何分かかりますか？',
  'コードのバグを見つけてください🐛',
  'もう少し短くまとめてもらえますか？',
];
const ASSISTANT_LINES = [
  'もちろんです。資料の要点は次の三つです：①予算の見直し ②スケジュールの前倒し ③担当者の追加。',
  '明日は晴れのち曇り、最高気温は28℃の予報です🌤️',
  '"A new project is starting." が自然な訳です。',
  'どういたしまして😊 ほかにお手伝いできることはありますか？',
  '月別の売上を棒グラフにするのがおすすめです。データを貼り付けてください📊',
  '東海道新幹線「のぞみ」で約2時間30分です🚄',
  '12行目で変数が未定義のまま使われています。初期化を追加しましょう。',
  '了解しました。要約：予算・日程・人員の三点を調整します。',
];

/** One message as the app stores it (camelCase, as the MAKOTO app writes items). */
export interface ChatItem {
  tenantId: string;
  messageId: string;
  conversationId: string;
  senderId: string;
  role: 'user' | 'assistant';
  content: string;
  createdAt: string;
  updatedAt: string;
  model?: string;
  tokens?: number;
  ttl?: number;
}

/** One change of the app's table, in feed order per tenant. */
export interface ChatChange {
  readonly kind: 'put' | 'delete' | 'expire';
  readonly item: ChatItem;
  /** Feed position, increasing across the whole day. */
  readonly seq: bigint;
}

export interface ChatDayOptions {
  readonly date: string;
  readonly tenants: readonly string[];
  readonly messagesPerTenant: number;
  readonly seed?: number;
  /** Share of messages edited once (default 0.05), deleted by the user (0.01), expired by TTL (0.005). */
  readonly editRate?: number;
  readonly deleteRate?: number;
  readonly expireRate?: number;
  /** Extra content bytes: content is padded with Japanese text to this many UTF-8 bytes at most (0 = off). */
  readonly contentBytes?: readonly [number, number];
}

export interface ChatDay {
  readonly changes: ChatChange[];
  /** What the lake must hold after compaction: the latest version of every message not deleted by a user. */
  readonly expected: ChatItem[];
}

const PAD = '吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。';

/**
 * A realistic JST day of chat for some tenants: conversations of user and assistant turns spread over the
 * day (including the first and last second), some edits, user deletes and TTL expiries. Feed positions
 * start at 1e20 so they need numeric comparison (they grow a digit never, but exceed 2^64).
 */
export function generateChatDay(options: ChatDayOptions): ChatDay {
  const random = randomSource(options.seed ?? 1);
  const { startMs, endMs } = jstDayRange(options.date);
  const changes: ChatChange[] = [];
  const latest = new Map<string, ChatItem | undefined>();
  let seq = 100_000_000_000_000_000_000n;
  const next = () => {
    seq += BigInt(1 + Math.floor(random() * 1000));
    return seq;
  };
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
  const content = (base: string): string => {
    if (!options.contentBytes) return base;
    const [min, max] = options.contentBytes;
    const target = min + Math.floor(random() * (max - min + 1));
    let text = base;
    while (Buffer.byteLength(text) + Buffer.byteLength(PAD) <= target) text += PAD;
    return text;
  };

  for (const tenant of options.tenants) {
    const n = options.messagesPerTenant;
    for (let i = 0; i < n; i++) {
      const conversation = Math.floor(i / 6);
      const role = i % 2 === 0 ? 'user' : 'assistant';
      // first and last message of each tenant sit on the JST day's edges
      const createdMs = i === 0 ? startMs : i === n - 1 ? endMs - 1 : startMs + Math.floor(random() * (endMs - startMs));
      const created = new Date(createdMs).toISOString();
      const item: ChatItem = {
        tenantId: tenant,
        messageId: `${tenant}-m${String(i).padStart(7, '0')}`,
        conversationId: `${tenant}-c${String(conversation).padStart(6, '0')}`,
        senderId: role === 'user' ? `user-${(conversation % 17) + 1}` : 'makoto-ai',
        role,
        content: content(role === 'user' ? pick(USER_LINES) : pick(ASSISTANT_LINES)),
        createdAt: created,
        updatedAt: created,
        ...(role === 'assistant' ? { model: 'makoto-large', tokens: 20 + Math.floor(random() * 400) } : {}),
      };
      changes.push({ kind: 'put', item, seq: next() });
      latest.set(item.messageId, item);
      const r = random();
      const edit = options.editRate ?? 0.05;
      const del = options.deleteRate ?? 0.01;
      const expire = options.expireRate ?? 0.005;
      if (r < edit) {
        const edited = {
          ...item,
          content: `${item.content}（編集済み✏️）`,
          updatedAt: new Date(createdMs + 60_000).toISOString(),
        };
        changes.push({ kind: 'put', item: edited, seq: next() });
        latest.set(item.messageId, edited);
      } else if (r < edit + del) {
        changes.push({ kind: 'delete', item, seq: next() });
        latest.set(item.messageId, undefined);
      } else if (r < edit + del + expire) {
        const withTtl = { ...item, ttl: Math.floor(createdMs / 1000) + 3600 };
        changes.push({ kind: 'put', item: withTtl, seq: next() });
        changes.push({ kind: 'expire', item: withTtl, seq: next() });
        latest.set(item.messageId, withTtl);
      }
    }
  }
  const expected = [...latest.values()].filter((i): i is ChatItem => i !== undefined);
  return { changes, expected };
}

/** A change as DynamoDB Streams delivers it to Lambda (NEW_AND_OLD_IMAGES). */
export function toDynamoDBRecord(change: ChatChange, shardId = 'shardId-00000001-demo'): DynamoDBStreamRecordLike {
  const image = marshall(change.item, { removeUndefinedValues: true }) as Record<string, unknown>;
  const keys = marshall({ tenantId: change.item.tenantId, messageId: change.item.messageId }) as Record<string, unknown>;
  const record: DynamoDBStreamRecordLike = {
    eventID: `${shardId}-${change.seq}`,
    eventName: change.kind === 'put' ? 'MODIFY' : 'REMOVE',
    eventSourceARN: 'arn:aws:dynamodb:ap-northeast-1:000000000000:table/makoto-messages/stream/demo',
    dynamodb: {
      Keys: keys,
      SequenceNumber: change.seq.toString(),
      ...(change.kind === 'put' ? { NewImage: image } : { OldImage: image }),
    },
  };
  if (change.kind === 'expire') record.userIdentity = { type: 'Service', principalId: 'dynamodb.amazonaws.com' };
  return record;
}

/**
 * A change as the Cosmos DB change feed delivers it (latest-version mode; deletes are soft deletes).
 * Cosmos removes TTL-expired items without a feed entry: callers skip `expire` changes for Cosmos.
 */
export function toCosmosDocument(change: ChatChange): Record<string, unknown> {
  const { messageId, ...rest } = change.item;
  return {
    id: messageId,
    ...rest,
    ...(change.kind === 'delete' ? { isDeleted: true } : {}),
    _rid: 'demoRid==',
    _etag: `"${change.seq.toString(16)}"`,
    _ts: Math.floor(Date.parse(change.item.updatedAt) / 1000),
    _lsn: Number(change.seq % 1_000_000_000_000n),
  };
}
