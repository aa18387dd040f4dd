import { describe, expect, it } from 'vitest';
import { parseIdsFile } from '../../compactor/commands/erase.js';
import { hashId, matcherOf, recordMatches, rowMatches, textMatches } from '../../src/jobs/erase/eraseMatcher.js';
import { prunedByStats } from '../../src/jobs/erase/planErase.js';

const SALT = '00ff';
const m = () => matcherOf('acme', SALT, [hashId(SALT, 'u-1')]);

describe('what an erase matches', () => {
  it('rows by their id fields, within the tenant', () => {
    expect(rowMatches(m(), { tenant_id: 'acme', sender_id: 'u-1', message_id: 'x' })).toBe(true);
    expect(rowMatches(m(), { tenant_id: 'globex', sender_id: 'u-1' })).toBe(false);
    expect(rowMatches(m(), { sender_id: 'u-2', conversation_id: 'u-1' })).toBe(true);
    expect(rowMatches(m(), { sender_id: 'u-2', content: 'u-1' })).toBe(false);
  });

  it('raw records anywhere in them, DynamoDB images included, unless they name only another tenant', () => {
    const image = { NewImage: { tenantId: { S: 'acme' }, senderId: { S: 'u-1' }, messageId: { S: 'm9' } } };
    expect(recordMatches(m(), { reason: 'no createdAt', raw: { dynamodb: image } }, false)).toStrictEqual({
      match: true,
      messageIds: ['m9'],
    });
    const other = { NewImage: { tenantId: { S: 'globex' }, senderId: { S: 'u-1' } } };
    expect(recordMatches(m(), { raw: { dynamodb: other } }, false).match).toBe(false);
    expect(recordMatches(m(), { tenant_id: 'acme', tenantId: 'globex', senderId: 'u-1' }, false).match).toBe(true);
    // no tenant named: the tenant's own only under its prefix
    expect([
      recordMatches(m(), { senderId: 'u-1' }, true).match,
      recordMatches(m(), { senderId: 'u-1' }, false).match,
    ]).toStrictEqual([true, false]);
  });

  it('JSON held in a string, and the quoted strings of a line cut short', () => {
    expect(textMatches(m(), JSON.stringify({ raw: JSON.stringify({ sender_id: 'u-1' }) }), true).match).toBe(true);
    expect(textMatches(m(), '{"tenant_id":"acme","sender_id":"u-1","content":"cut', true).match).toBe(true);
    expect(textMatches(m(), '{"tenant_id":"acme","sender_id":"u-10","content":"cut', true).match).toBe(false);
  });

  it('offboarding: every record of the tenant', () => {
    const all = matcherOf('acme', SALT, [], true);
    expect([rowMatches(all, { tenant_id: 'acme' }), rowMatches(all, { tenant_id: 'globex' })]).toStrictEqual([true, false]);
    expect(recordMatches(all, { raw: { tenantId: 'globex' } }, false).match).toBe(false);
  });

  it('prunes a data file only when every id column is bounded and every id outside (UTF-8 byte order)', () => {
    const add = (minValues: Record<string, string>, maxValues: Record<string, string>) => ({
      path: 'p',
      partitionValues: {},
      size: 1,
      modificationTime: 0,
      dataChange: true,
      stats: JSON.stringify({ numRecords: 3, minValues, maxValues }),
    });
    const ids = { sender_id: 'a', conversation_id: 'a', message_id: 'a' };
    const upto = { sender_id: 'c', conversation_id: 'c', message_id: 'c' };
    expect(prunedByStats(add(ids, upto), ['d'])).toBe(true);
    expect(prunedByStats(add(ids, upto), ['b'])).toBe(false);
    expect(prunedByStats(add({ sender_id: 'a' }, { sender_id: 'c' }), ['d'])).toBe(false);
    // between 'a' and U+FF5E in UTF-16 order, after it in UTF-8 byte order (Parquet's): outside, pruned
    const wide = { sender_id: '～', conversation_id: '～', message_id: '～' };
    expect(prunedByStats(add(ids, wide), ['😀'])).toBe(true);
    expect(prunedByStats(add(ids, wide), ['b'])).toBe(false);
  });

  it('reads an ids file, refusing a line it does not understand', () => {
    expect(parseIdsFile('# erase request 42\nsender=u-1\n\nconversation=c 1\nmessage=m=1\n', 'f')).toStrictEqual({
      senders: ['u-1'],
      conversations: ['c 1'],
      messages: ['m=1'],
    });
    expect(() => parseIdsFile('u-1\n', 'ids.txt')).toThrow('ids.txt line 1: expected sender=ID, conversation=ID or message=ID');
  });
});
