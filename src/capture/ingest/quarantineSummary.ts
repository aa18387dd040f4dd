/** How many records were quarantined for one reason, with one example to look at. */
export interface QuarantineReason {
  readonly reason: string;
  readonly count: number;
  /** One record's feed position (or its index in the batch when it had none). */
  readonly example: string;
  /** The quarantine object that holds that example. */
  readonly object: string;
}

/** Counts per reason, most frequent first (ties in first-seen order). */
export function tallyQuarantine(entries: readonly { reason: string; example: string; object: string }[]): QuarantineReason[] {
  const byReason = new Map<string, { reason: string; count: number; example: string; object: string }>();
  for (const e of entries) {
    const found = byReason.get(e.reason);
    if (found) found.count += 1;
    else byReason.set(e.reason, { reason: e.reason, count: 1, example: e.example, object: e.object });
  }
  return [...byReason.values()].sort((a, b) => b.count - a.count);
}

/** Several tallies as one (e.g. the batches of a redrive, the tenants of a backfill). */
export function mergeQuarantine(tallies: readonly (readonly QuarantineReason[])[]): QuarantineReason[] {
  const merged = new Map<string, QuarantineReason>();
  for (const tally of tallies) {
    for (const r of tally) {
      const found = merged.get(r.reason);
      merged.set(r.reason, found ? { ...found, count: found.count + r.count } : r);
    }
  }
  return [...merged.values()].sort((a, b) => b.count - a.count);
}

/**
 * The lines a command prints on stderr when records were quarantined: the total, then the top reasons
 * with their counts and one example each. Empty when nothing was quarantined.
 */
export function quarantineLines(tally: readonly QuarantineReason[], top = 5): string[] {
  const total = tally.reduce((n, r) => n + r.count, 0);
  if (total === 0) return [];
  const lines = [
    `quarantined ${total} record${total === 1 ? '' : 's'} (${tally.length} reason${tally.length === 1 ? '' : 's'}):`,
  ];
  for (const r of tally.slice(0, top)) lines.push(`  ${r.count} × ${r.reason} (e.g. ${r.example} in ${r.object})`);
  if (tally.length > top) lines.push(`  … ${tally.length - top} more reasons`);
  return lines;
}
