import type { PartitionResult } from '../engine/compactPartition.js';
import type { RunSummary } from '../engine/compactTenants.js';
import { resultFailed } from '../engine/resultFailed.js';
import { partitionJson } from './partitionView.js';
import type { PrivacyOutcome } from './privacyOutcome.js';

/**
 * The machine-readable summary every entry point returns (CLI --json, Lambda result, HTTP body), with the
 * night's privacy step (`privacy`: what it erased, or its failure) when the run had one.
 */
export function summaryJson(summary: RunSummary & { readonly privacy?: PrivacyOutcome }) {
  return {
    target_date: summary.date,
    ok: summary.ok,
    totals: {
      tenants: summary.totals.tenants,
      failed: summary.totals.failed,
      rows_read: summary.totals.rowsRead,
      rows_written: summary.totals.rowsWritten,
      rows_rejected: summary.totals.rowsRejected,
    },
    tenants: summary.results.map(partitionJson),
    ...(summary.privacy === undefined ? {} : { privacy: summary.privacy }),
  };
}

/** One progress line per tenant (stderr). */
export function progressLine(r: PartitionResult): string {
  if (resultFailed(r)) return `✗ ${r.tenant} ${r.date} ${r.status}: ${r.error ?? ''}`;
  if (r.status === 'no-input') return `· ${r.tenant} ${r.date} no staging objects, partition left as it was`;
  const late = r.reason ? ` (late data: ${r.reason})` : '';
  return `✓ ${r.tenant} ${r.date}${late} read ${r.rowsRead} (${r.inputs} objects) → wrote ${r.rowsWritten} rows, ${r.duplicatesRemoved} duplicates, ${r.versionsSuperseded} superseded, ${r.deletesApplied} deleted, ${r.rowsRejected} rejected in ${r.durationMs} ms`;
}

/** A fixed-width table of rows (first row is the header). */
export function table(rows: readonly (readonly (string | number)[])[]): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => displayWidth(String(r[c] ?? ''))))) ?? [];
  const line = (r: readonly (string | number)[]) =>
    r
      .map((cell, c) => {
        const text = String(cell);
        const pad = ' '.repeat(Math.max(0, (widths[c] ?? 0) - displayWidth(text)));
        return typeof cell === 'number' ? pad + text : text + pad;
      })
      .join('  ')
      .trimEnd();
  const [header, ...body] = rows;
  if (!header) return '';
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export function summaryTable(summary: RunSummary): string {
  return table([
    ['tenant', 'dt', 'status', 'read', 'dups', 'superseded', 'deleted', 'rejected', 'written', 'files', 'ms'],
    ...summary.results.map((r) => [
      r.tenant,
      r.date,
      r.status,
      r.rowsRead,
      r.duplicatesRemoved,
      r.versionsSuperseded,
      r.deletesApplied,
      r.rowsRejected,
      r.rowsWritten,
      r.outputFiles.length,
      r.durationMs,
    ]),
  ]);
}

/** Terminal columns a string takes: East Asian wide characters and emoji take two. */
function displayWidth(text: string): number {
  let width = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    width +=
      cp >= 0x1100 &&
      /[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]|[\u{1f300}-\u{1faff}]/u.test(
        ch,
      )
        ? 2
        : 1;
  }
  return width;
}
