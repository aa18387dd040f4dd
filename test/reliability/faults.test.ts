import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PartitionResult } from '../../src/engine/compactPartition.js';
import { BROKEN_TENANT, FAULT_DATE, FAULT_TENANTS, type FaultScenarioResult, runFaultScenario } from '../kit/faultScenario.js';
import { duplicateIds } from '../kit/readParquet.js';
import { tempDir } from '../kit/tempDir.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
let scenario: FaultScenarioResult;

beforeAll(async () => {
  dir = await tempDir('makoto-lake-faults-');
  scenario = await runFaultScenario(dir.path);
});
afterAll(() => dir.cleanup());

/** What a result says, without run ids and timings (parts are named for the run that wrote them). */
const stable = (r: PartitionResult) => ({
  ...r,
  runId: '',
  outputFiles: r.outputFiles.map((key) => key.replace(`-${r.runId}.parquet`, '-<run>.parquet')),
  durationMs: 0,
  timingsMs: {},
  bytesWritten: 0,
});

describe('the whole pipeline through RetryingStore(FaultInjectingStore(LocalStore))', () => {
  it('the fault-free run holds exactly the generated day: every message once, latest version, no user deletes', () => {
    const { clean } = scenario;
    expect(clean.summary.ok).toBe(true);
    expect(clean.ingest).toStrictEqual({
      staged: clean.delivered - 1,
      quarantined: 1,
      objects: clean.ingest.objects,
      failedGroups: [],
    });
    for (const tenant of FAULT_TENANTS) {
      const rows = clean.rows[tenant] ?? [];
      expect(rows.map((r) => ({ message_id: r.message_id, content: r.content }))).toStrictEqual(clean.expected[tenant]);
      expect(duplicateIds(rows)).toStrictEqual([]);
    }
  });

  it('injects throttling, 503s and truncated downloads, and still produces identical rows and counts', () => {
    const { clean, transient, transientFaults } = scenario;
    // one call at a time, so the seeded injector meets the calls in a fixed order: the counts are exact. Per
    // tenant the compaction now reads the table log and writes part, deletes file, run manifest and one log
    // commit (one read of its fresh lease before the upload, no folder listings, no manifest HEAD, no deletes of
    // replaced files); the run never reads back a log version it wrote itself
    expect(transientFaults).toStrictEqual({ calls: 145, throttled: 14, unavailable: 8, truncatedReads: 13, permanent: 0 });
    expect(transient.ingest).toStrictEqual(clean.ingest);
    expect(transient.rows).toStrictEqual(clean.rows);
    expect(transient.summary.results.map(stable)).toStrictEqual(clean.summary.results.map(stable));
    // one table version per tenant (versions 0..2) in both runs: no retried commit wrote a second one
    expect([scenario.versions.clean, scenario.versions.transient]).toStrictEqual([2, 2]);
  });

  it('a permanent failure on one object fails that tenant with an error naming the object; the others complete', () => {
    const { clean, permanent, permanentFaults, brokenObject } = scenario;
    expect(brokenObject).toMatch(
      new RegExp(`^staging/messages/tenant_id=${BROKEN_TENANT}/dt=${FAULT_DATE}/ddb-[0-9a-f]{12}_\\d+_\\d+\\.ndjson\\.gz$`),
    );
    expect(permanentFaults.permanent).toBe(1);
    const byTenant = Object.fromEntries(permanent.summary.results.map((r) => [r.tenant, r]));
    expect(byTenant[BROKEN_TENANT]?.status).toBe('failed');
    expect(byTenant[BROKEN_TENANT]?.error).toBe(
      `compaction of tenant ${BROKEN_TENANT} for ${FAULT_DATE} failed: injected permanent failure: getToFile ${brokenObject}`,
    );
    expect(permanent.summary.ok).toBe(false);
    expect(permanent.rows[BROKEN_TENANT]).toStrictEqual([]);
    for (const tenant of FAULT_TENANTS.filter((t) => t !== BROKEN_TENANT)) {
      expect(byTenant[tenant]?.status).toBe('compacted');
      expect(permanent.rows[tenant]).toStrictEqual(clean.rows[tenant]);
    }
    // the two other tenants committed (versions 0 and 1); the broken one committed nothing
    expect(scenario.versions.permanent).toBe(1);
  });
});
