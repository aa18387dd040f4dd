#!/usr/bin/env node
// `npm test`: type check, lint/format check, then every vitest suite.
// DynamoDB Local has no host flag and listens on every interface. When we are root on Linux, the whole
// run moves into a fresh network namespace with only loopback up: the servers are reachable on
// 127.0.0.1 only, and any call a test makes to the outside fails instead of leaving the machine.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);

if (process.platform === 'linux' && process.getuid?.() === 0 && !process.env.MAKOTO_LAKE_NETNS) {
  const probe = spawnSync('unshare', ['-n', 'true']);
  if (probe.status === 0) {
    const inner = ['-n', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', process.execPath, ...process.argv.slice(1)];
    const run = spawnSync('unshare', inner, {
      stdio: 'inherit',
      cwd: root,
      env: { ...process.env, MAKOTO_LAKE_NETNS: '1' },
    });
    process.exit(run.status ?? 1);
  }
  console.error('test: unshare -n is not available; running without a network namespace');
}

// `--suite-only`: the vitest suites alone. CI's second leg (Node 22) passes it: the type check and the lint
// read the same files with the same pinned tools on any Node, and the first leg ran them.
const suiteOnly = args[0] === '--suite-only';
const vitestArgs = suiteOnly ? args.slice(1) : args;
const steps = [
  ...(suiteOnly
    ? []
    : [
        ['tsc', ['--noEmit']],
        ['biome', ['check', '.']],
      ]),
  ['vitest', ['run', '--configLoader', 'runner', ...vitestArgs]],
];
for (const [bin, binArgs] of steps) {
  const run = spawnSync(process.execPath, [`node_modules/.bin/${bin}`, ...binArgs], { stdio: 'inherit', cwd: root });
  if (run.status !== 0) {
    console.error(`test: ${bin} failed`);
    process.exit(run.status ?? 1);
  }
}
