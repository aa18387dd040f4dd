import type { PartitionResult } from '../compaction/compactPartition.js';
import type { RunSummary } from '../compaction/compactTenants.js';
import { resultFailed } from '../compaction/resultFailed.js';

/** The machine-readable summary every entry point returns (CLI --json, Lambda result, HTTP body). */
export function summaryJson(summary: RunSummary) {
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
  };
}

export function partitionJson(r: PartitionResult) {
  return {
    tenant_id: r.tenant,
    dt: r.date,
    status: r.status,
    run_id: r.runId || null,
    inputs: r.inputs,
    rows_read: r.rowsRead,
    /** Rows of the published partition read back by the merge (issue 15). */
    rows_carried: r.rowsCarried,
    /** User deletes remembered from earlier runs (tombstones) that took part. */
    deletes_remembered: r.deletesRemembered,
    rows_rejected: r.rowsRejected,
    objects_rejected: r.objectsRejected,
    duplicates_removed: r.duplicatesRemoved,
    versions_superseded: r.versionsSuperseded,
    deletes_applied: r.deletesApplied,
    rows_written: r.rowsWritten,
    output_files: r.outputFiles,
    bytes_written: r.bytesWritten,
    duration_ms: r.durationMs,
    ...(r.error === undefined ? {} : { error: r.error }),
    ...(r.reason === undefined ? {} : { reason: r.reason }),
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
