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
        calls: 151,
        throttled: 17,
        unavailable: 10,
        truncatedReads: 14,
        permanent: 1,
        identicalUnderTransientFaults: true,
        permanentIsolated: true,
      },
      badInputs: { tried: 26, asExpected: 26 },
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
          messagesIn: 10_051,
          rowsOut: 10_034,
          collapsed: 0,
          quarantinedAtIngest: 14,
          quarantinedAtCompaction: 2,
          objectsQuarantined: 2,
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
    expect(text).toContain('truncated downloads        14');
    expect(text).toContain(
      'pipeline (3 tenants)    651    591         59          1              0           0           0  yes',
    );
    expect(text).toContain(
      'bad-input catalogue   10051  10034          0         14              2           1           2  yes',
    );
    expect(text).toContain('  crashes survived                                       skipped');
    expect(text).toContain('commit stalled past its lease: runs that wrote                 1');
    expect(text).toContain('  commits refused by the store                                 1');
    expect(text).toContain("  files of the taker's version changed                         0");
    expect(text).toContain('  readers that saw a mix of old and new                  skipped');
  });
});
