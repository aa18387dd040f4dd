/** Puts process.env back as `saved` was: variables a test added are removed, changed ones restored. */
export function restoreEnvironment(saved: NodeJS.ProcessEnv): void {
  for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
  Object.assign(process.env, saved);
}
