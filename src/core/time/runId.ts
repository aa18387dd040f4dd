import { randomUUID } from 'node:crypto';

/**
 * A new run id: the instant it began (compact ISO, UTC) and 8 random hex digits, e.g.
 * `20250811T170000123Z-1a2b3c4d`. Invocations, partition attempts and splits are all named this way, so an id
 * sorts by time and says when its run began (runStartedAt).
 */
export function newRunId(now: number): string {
  return `${new Date(now).toISOString().replace(/[-:.]/g, '')}-${randomUUID().slice(0, 8)}`;
}

/** When a run began: a run id begins with the instant (newRunId, e.g. 20250811T170000123Z-…); `fallback` otherwise. */
export function runStartedAt(runId: string, fallback: number): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z/.exec(runId);
  return m ? Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7]}Z`) : fallback;
}
