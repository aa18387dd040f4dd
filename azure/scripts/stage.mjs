#!/usr/bin/env node
// Builds the folder the Functions host deploys: `node azure/scripts/stage.mjs OUT_DIR`, then
// `cd OUT_DIR && npm ci --omit=dev && func azure functionapp publish <app>`.
// The app code imports ../src and ../stores, so the deployed root keeps the repository's layout:
//   OUT_DIR/host.json, OUT_DIR/package.json ("main": "azure/index.mjs"), azure/, src/, stores/, package-lock.json
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const out = process.argv[2];
if (!out) {
  console.error('usage: node azure/scripts/stage.mjs OUT_DIR');
  process.exit(2);
}
const target = resolve(out);
await mkdir(target, { recursive: true });
const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));
const app = {
  name: 'makoto-lake-functions',
  version: pkg.version,
  private: true,
  type: 'module',
  main: 'azure/index.mjs',
  engines: pkg.engines,
  dependencies: pkg.dependencies,
};
await writeFile(join(target, 'package.json'), `${JSON.stringify(app, null, 2)}\n`);
await cp(join(root, 'package-lock.json'), join(target, 'package-lock.json'));
await cp(join(root, 'azure/host.json'), join(target, 'host.json'));
for (const dir of ['src', 'stores']) await cp(join(root, dir), join(target, dir), { recursive: true });
await cp(join(root, 'azure'), join(target, 'azure'), {
  recursive: true,
  filter: (path) => !/local\.settings.*\.json$|[/\\]scripts([/\\]|$)|[/\\]package\.json$/.test(path.slice(root.length)),
});
await writeFile(join(target, '.funcignore'), 'local.settings.json\n.git*\n');
console.log(
  `staged the Functions app in ${target}\nnext: cd ${target} && npm ci --omit=dev && func azure functionapp publish <FunctionAppName>`,
);
