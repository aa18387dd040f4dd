import { describe, expect, it } from 'vitest';
import { RUN_ID_PATTERN } from '../../src/core/staging/layout.js';
import { newRunId, runStartedAt } from '../../src/core/time/runId.js';
import { resultFailed } from '../../src/engine/resultFailed.js';

describe('run ids', () => {
  it('begin with the instant they were made, sort by it, and say when their run began', () => {
    const at = Date.parse('2025-08-11T17:00:00.123Z');
    const id = newRunId(at);
    expect(id).toMatch(/^20250811T170000123Z-[0-9a-f]{8}$/);
    expect(RUN_ID_PATTERN.test(id)).toBe(true);
    expect(newRunId(at + 1) > id).toBe(true);
    expect(runStartedAt(id, 0)).toBe(at);
    expect(runStartedAt('not-a-run-id', 42)).toBe(42);
  });
});

describe('the failure rule', () => {
  it('a failed or locked partition counts as failed; compacted and no-input do not', () => {
    expect((['compacted', 'no-input', 'failed', 'locked'] as const).map((status) => resultFailed({ status }))).toStrictEqual([
      false,
      false,
      true,
      true,
    ]);
  });
});
