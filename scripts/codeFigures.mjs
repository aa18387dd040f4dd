#!/usr/bin/env node
// The code figures issue 23 asked for, re-measurable: files over 500 lines, the 15 longest functions, and the
// project files and folders statically reachable from one entry point.
//   node scripts/codeFigures.mjs [ROOT] [ENTRY]   (defaults: this checkout, compactor/lambda.ts)
// With `duplicates --most 200` (the tool library) for the repeated places.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const root = resolve(process.argv[2] ?? '.');
const entry = process.argv[3] ?? 'compactor/lambda.ts';
const roots = ['src', 'stores', 'compactor', 'azure', 'stream-ingest', 'bench', 'tools'];
const files = execFileSync('git', ['ls-files', '--', ...roots.map((r) => `${r}/*.ts`)], { cwd: root, encoding: 'utf8' })
  .trim()
  .split('\n')
  .filter((f) => existsSync(join(root, f)));

const lines = files.map((f) => [readFileSync(join(root, f), 'utf8').split('\n').length - 1, f]);
console.log('files over 500 lines:');
for (const [n, f] of lines.filter(([n]) => n > 500).sort((a, b) => b[0] - a[0])) console.log(`  ${n} ${f}`);

const functions = [];
for (const f of files) {
  const source = ts.createSourceFile(f, readFileSync(join(root, f), 'utf8'), ts.ScriptTarget.Latest, true);
  const visit = (node) => {
    if (
      ts.isFunctionDeclaration(node) ||
      ts.isMethodDeclaration(node) ||
      ts.isArrowFunction(node) ||
      ts.isFunctionExpression(node)
    ) {
      const start = source.getLineAndCharacterOfPosition(node.getStart()).line;
      const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      const name = node.name?.getText() ?? (ts.isVariableDeclaration(node.parent) ? node.parent.name.getText() : '(anonymous)');
      functions.push([end - start + 1, `${f}:${start + 1} ${name}`]);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
}
console.log('the 15 longest functions (lines):');
for (const [n, where] of functions.sort((a, b) => b[0] - a[0]).slice(0, 15)) console.log(`  ${n} ${where}`);

const seen = new Set();
const walk = (file) => {
  if (seen.has(file)) return;
  seen.add(file);
  for (const imported of ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles) {
    if (!imported.fileName.startsWith('.')) continue;
    const base = join(dirname(file), imported.fileName).replace(/\.js$/, '');
    const target = [`${base}.ts`, `${base}/index.ts`].find((c) => existsSync(c));
    if (target) walk(target);
  }
};
walk(join(root, entry));
const folders = new Set([...seen].map((f) => dirname(relative(root, f))));
console.log(`statically reachable from ${entry}: ${seen.size} files in ${folders.size} folders`);
