import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatReliabilityReport, type ReliabilityReport, reliabilityOk, runReliability } from '../kit/reliabilityReport.js';
import { tempDir } from '../kit/tempDir.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
let report: ReliabilityReport;

beforeAll(async () => {
  dir = await tempDir('makoto-lake-report-');
  // the crash section's numbers are asserted by crash.test.ts through the same runCrash/survived code
  report = await runReliability(dir.path, { crashes: false });
});
afterAll(() => dir.cleanup());

describe('npm run reliability: the numbers it prints', () => {
  it('faults injected per kind, bad inputs, reconciled messages and concurrent runs', () => {
    expect(report).toStrictEqual({
      faults: {
        calls: 145,
        throttled: 14,
        unavailable: 8,
        truncatedReads: 13,
        permanent: 1,
        identicalUnderTransientFaults: true,
        permanentIsolated: true,
      },
      badInputs: { tried: 35, asExpected: 35 },
      messages: {
        pipeline: {
          messagesIn: 651,
          rowsOut: 591,
          collapsed: 59,
          quarantinedAtIngest: 1,
          quarantinedAtCompaction: 0,
          objectsQuarantined: 0,
          linesInUnreadableTails: 0,
        },
        catalogue: {
          messagesIn: 10_065,
          rowsOut: 10_041,
          collapsed: 0,
          quarantinedAtIngest: 20,
          quarantinedAtCompaction: 3,
          objectsQuarantined: 3,
          linesInUnreadableTails: 1,
        },
      },
      concurrency: {
        compacted: 1,
        locked: 1,
        stalledCommit: { wrote: 1, wroteNothing: 1 },
        commitInFlight: { compacted: 1, failed: 1, refused: 1, stalledFilesPublished: 0, publishedFilesChanged: 0 },
      },
      crashes: undefined,
      signals: undefined,
    });
    expect(reliabilityOk(report)).toBe(true);
  });

  it('prints them as tables', () => {
    const text = formatReliabilityReport(report);
    expect(text).toContain('truncated downloads        13');
    expect(text).toContain(
      'pipeline (3 tenants)    651    591         59          1              0           0           0  yes',
    );
    expect(text).toContain(
      'bad-input catalogue   10065  10041          0         20              3           1           3  yes',
    );
    expect(text).toContain('  crashes survived                                       skipped');
    expect(text).toContain('commit stalled past its lease: runs that wrote                 1');
    expect(text).toContain('  commits refused by the store                                 1');
    expect(text).toContain("  files of the taker's version changed                         0");
    expect(text).toContain('  readers that saw a mix of old and new                  skipped');
  });
});
