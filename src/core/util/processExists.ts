/**
 * Whether a process with this pid is alive on this host (signal 0 probes without signalling). EPERM means
 * it exists but belongs to another user; an invalid pid is treated as alive, so nothing is taken over on a guess.
 */
export function processExists(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
