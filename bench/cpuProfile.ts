import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface CpuSummary {
  /** Main-thread wall time covered by the profile, ms. */
  readonly totalMs: number;
  /** Self time of the main JS thread by function (top entries), ms. `(idle)` = waiting for DuckDB's threads or I/O. */
  readonly top: readonly { readonly fn: string; readonly ms: number; readonly share: number }[];
}

/**
 * Summarises the `.cpuprofile` Node wrote with --cpu-prof: self time per function of the main thread.
 * DuckDB works on its own native threads, so its time shows up here as `(idle)`; JavaScript that runs
 * inside the statement (the tally UDF) shows up under its own name.
 */
export async function summariseCpuProfile(dir: string, top = 12): Promise<CpuSummary> {
  const file = (await readdir(dir)).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile in ${dir}`);
  const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile;
  const names = new Map<number, string>();
  for (const node of profile.nodes) {
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url ? ` ${basename(url)}:${lineNumber + 1}` : '';
    names.set(node.id, `${functionName || '(anonymous)'}${where}`);
  }
  const selfUs = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const name = names.get(id) ?? '?';
    selfUs.set(name, (selfUs.get(name) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const totalUs = profile.endTime - profile.startTime;
  return {
    totalMs: Math.round(totalUs / 1000),
    top: [...selfUs.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([fn, us]) => ({ fn, ms: Math.round(us / 1000), share: Math.round((us / totalUs) * 1000) / 1000 })),
  };
}
