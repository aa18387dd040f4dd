import { isValidYmd } from './jst.js';

/** Instants outside [2000-01-01, 2100-01-01) UTC are rejected as implausible for a chat message. */
export const EARLIEST_MS = Date.UTC(2000, 0, 1);
export const LATEST_MS = Date.UTC(2100, 0, 1);

/** Epoch numbers below this are seconds, at or above it milliseconds (1e11 s is the year 5138). */
const SECONDS_BELOW = 1e11;

const ISO_PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;

export type InstantResult = { ok: true; ms: number } | { ok: false; reason: string };

/**
 * Parses a timestamp as it arrives from the app: an ISO-8601 string with any offset, or epoch seconds
 * or milliseconds as a number or a string of digits. An ISO string without an offset is taken as UTC
 * (documented in docs/ARCHITECTURE.md); Date.parse is not used because it reads such strings as local time.
 */
export function parseInstant(value: unknown): InstantResult {
  let ms: number;
  if (typeof value === 'number' || typeof value === 'bigint') {
    const n = Number(value);
    if (!Number.isFinite(n)) return { ok: false, reason: `not a finite number: ${String(value)}` };
    ms = Math.abs(n) < SECONDS_BELOW ? Math.round(n * 1000) : Math.round(n);
  } else if (typeof value === 'string') {
    const text = value.trim();
    if (/^-?\d+(\.\d+)?$/.test(text)) return parseInstant(Number(text));
    const parsed = parseIso(text);
    if (typeof parsed === 'string') return { ok: false, reason: parsed };
    ms = parsed;
  } else {
    return { ok: false, reason: `expected an ISO-8601 string or epoch number, got ${value === null ? 'null' : typeof value}` };
  }
  if (ms < EARLIEST_MS || ms >= LATEST_MS) {
    return { ok: false, reason: `${new Date(ms).toISOString()} is outside 2000-01-01..2099-12-31` };
  }
  return { ok: true, ms };
}

function parseIso(text: string): number | string {
  const m = ISO_PATTERN.exec(text);
  if (!m) return `not an ISO-8601 timestamp: ${JSON.stringify(text.slice(0, 64))}`;
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  if (!isValidYmd(year, month, day)) return `invalid calendar date in ${JSON.stringify(text)}`;
  if (Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return `invalid time of day in ${JSON.stringify(text)}`;
  const millis = Number(frac.padEnd(3, '0').slice(0, 3));
  let ms = Date.UTC(year, month - 1, day, Number(h), Number(mi), Number(s), millis);
  if (zone && zone.toUpperCase() !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const offH = Number(digits.slice(0, 2));
    const offM = Number(digits.slice(2, 4) || '0');
    if (offH > 14 || offM > 59) return `invalid UTC offset in ${JSON.stringify(text)}`;
    ms -= sign * (offH * 60 + offM) * 60_000;
  }
  return ms;
}
