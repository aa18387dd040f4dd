import { UsageError } from '../errors.js';

/** JST is UTC+9 all year (Japan has no daylight saving time). */
const JST_OFFSET_MS = 9 * 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;
const DATE_PATTERN = /^(\d{4})-(\d{2})-(\d{2})$/;

/** The Asia/Tokyo calendar date (YYYY-MM-DD) of a UTC instant in epoch milliseconds. */
export function jstDate(epochMs: number): string {
  return new Date(epochMs + JST_OFFSET_MS).toISOString().slice(0, 10);
}

/** Validates a YYYY-MM-DD calendar date (2025-02-30 is rejected). */
export function parseDate(value: string, what = 'date'): string {
  const m = DATE_PATTERN.exec(value);
  if (!m || !isValidYmd(Number(m[1]), Number(m[2]), Number(m[3]))) {
    throw new UsageError(`${what} must be a calendar date YYYY-MM-DD, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** The date `days` days after `date` (both YYYY-MM-DD). */
export function addDays(date: string, days: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * DAY_MS).toISOString().slice(0, 10);
}

/** Today in JST plus `offsetDays` (the seed's TARGET_DATE_OFFSET, -1 = yesterday). */
export function targetDate(nowMs: number, offsetDays: number): string {
  return addDays(jstDate(nowMs), offsetDays);
}

/** The UTC instants [start, end) that make up one JST day. */
export function jstDayRange(date: string): { startMs: number; endMs: number } {
  const startMs = Date.parse(`${parseDate(date)}T00:00:00Z`) - JST_OFFSET_MS;
  return { startMs, endMs: startMs + DAY_MS };
}

export function isValidYmd(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0;
  return day <= days;
}
