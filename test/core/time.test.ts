import { describe, expect, it } from 'vitest';
import { addDays, jstDate, jstDayRange, parseDate, targetDate } from '../../src/core/time/jst.js';
import { parseInstant } from '../../src/core/time/parseInstant.js';

describe('jstDate', () => {
  it('puts 15:00Z on the next JST day and 14:59:59.999Z on the same one', () => {
    expect(jstDate(Date.parse('2025-08-10T15:00:00Z'))).toBe('2025-08-11');
    expect(jstDate(Date.parse('2025-08-10T14:59:59.999Z'))).toBe('2025-08-10');
  });

  it('gives the UTC range of a JST day', () => {
    expect(jstDayRange('2025-08-11')).toStrictEqual({
      startMs: Date.parse('2025-08-10T15:00:00Z'),
      endMs: Date.parse('2025-08-11T15:00:00Z'),
    });
  });

  it('computes the target date from today in JST and the offset', () => {
    // 2025-08-11 16:30 UTC is already 2025-08-12 01:30 JST
    expect(targetDate(Date.parse('2025-08-11T16:30:00Z'), -1)).toBe('2025-08-11');
    expect(targetDate(Date.parse('2025-08-11T14:30:00Z'), -1)).toBe('2025-08-10');
    expect(addDays('2024-02-28', 1)).toBe('2024-02-29');
  });

  it('rejects dates that are not on the calendar', () => {
    expect(parseDate('2024-02-29')).toBe('2024-02-29');
    expect(() => parseDate('2025-02-30')).toThrow('date must be a calendar date YYYY-MM-DD, got "2025-02-30"');
    expect(() => parseDate('2025-8-1')).toThrow('got "2025-8-1"');
  });
});

describe('parseInstant', () => {
  const ms = (iso: string) => ({ ok: true, ms: Date.parse(iso) });

  it('reads ISO-8601 with any offset, and without one as UTC', () => {
    expect(parseInstant('2025-08-11T09:00:00+09:00')).toStrictEqual(ms('2025-08-11T00:00:00Z'));
    expect(parseInstant('2025-08-11T00:00:00.123456Z')).toStrictEqual(ms('2025-08-11T00:00:00.123Z'));
    expect(parseInstant('2025-08-11 00:00:00')).toStrictEqual(ms('2025-08-11T00:00:00Z'));
    expect(parseInstant('2025-08-10T20:00:00-0400')).toStrictEqual(ms('2025-08-11T00:00:00Z'));
  });

  it('reads epoch seconds and milliseconds, as numbers or digit strings', () => {
    expect(parseInstant(1754870400)).toStrictEqual(ms('2025-08-11T00:00:00Z'));
    expect(parseInstant(1754870400123)).toStrictEqual(ms('2025-08-11T00:00:00.123Z'));
    expect(parseInstant('1754870400')).toStrictEqual(ms('2025-08-11T00:00:00Z'));
    expect(parseInstant(1754870400.5)).toStrictEqual(ms('2025-08-11T00:00:00.500Z'));
  });

  it('says why a value is not a timestamp', () => {
    expect(parseInstant('2025-02-30T00:00:00Z')).toStrictEqual({
      ok: false,
      reason: 'invalid calendar date in "2025-02-30T00:00:00Z"',
    });
    expect(parseInstant('yesterday')).toStrictEqual({ ok: false, reason: 'not an ISO-8601 timestamp: "yesterday"' });
    expect(parseInstant('1899-01-01T00:00:00Z')).toStrictEqual({
      ok: false,
      reason: '1899-01-01T00:00:00.000Z is outside 2000-01-01..2099-12-31',
    });
    expect(parseInstant(true)).toStrictEqual({ ok: false, reason: 'expected an ISO-8601 string or epoch number, got boolean' });
    expect(parseInstant('2025-08-11T24:00:00Z')).toStrictEqual({
      ok: false,
      reason: 'invalid time of day in "2025-08-11T24:00:00Z"',
    });
  });
});
