/**
 * The nightly state machine as template.yaml deploys it, for the tests that run it: template.yaml read as
 * text (one key per line, two-space indents; see template.test.ts), the definition with its
 * DefinitionSubstitutions applied, and the real handler behind each function ARN it names.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ARTIFACTS, LAMBDA_FUNCTIONS } from '../../../scripts/build.js';
import { REGION } from './localAws.js';

const templateLines = (await readFile('template.yaml', 'utf8')).split('\n');
export function block(header: RegExp, within: string[] = templateLines): string[] {
  const start = within.findIndex((l) => header.test(l));
  if (start < 0) return [];
  const indent = (within[start] as string).search(/\S/);
  const out: string[] = [];
  for (const line of within.slice(start + 1)) {
    if (line.trim() === '' || line.trim().startsWith('#')) continue;
    if (line.search(/\S/) <= indent) break;
    out.push(line);
  }
  return out;
}
export const fieldOf = (within: string[], key: string) =>
  within.map((l) => new RegExp(`^\\s*${key}:\\s*(.+?)\\s*$`).exec(l)?.[1]).find((v) => v !== undefined);

export const stateMachine = block(/^ {2}NightlyCompaction:/);
export const substitutions = Object.fromEntries(
  block(/^\s*DefinitionSubstitutions:/, stateMachine).map((l) => {
    const m = /^\s*(\w+):\s*(.+?)\s*$/.exec(l) as RegExpExecArray;
    return [m[1] as string, m[2] as string];
  }),
);
export const definitionText = await readFile(fieldOf(stateMachine, 'DefinitionUri') as string, 'utf8');

/** The definition as CloudFormation would deploy it: each ${Name} replaced by its substitution's value. */
export function deployedDefinition(values: Record<string, string>) {
  return JSON.parse(definitionText.replace(/\$\{(\w+)\}/g, (_, name: string) => values[name] ?? `<unsubstituted ${name}>`));
}
export const functionArn = (logicalId: string) => `arn:aws:lambda:${REGION}:000000000000:function:${logicalId}`;
/** Substitution values: a function ARN per `!GetAtt X.Arn`, the bucket, and parameters at their defaults. */
export const substitutionValues = Object.fromEntries(
  Object.entries(substitutions).map(([name, value]) => {
    const getAtt = /^!GetAtt (\w+)\.Arn$/.exec(value);
    if (getAtt) return [name, functionArn(getAtt[1] as string)];
    if (value === '!Ref LakeBucket') return [name, 'lake'];
    const parameter = /^!Ref (\w+)$/.exec(value)?.[1] as string;
    return [name, fieldOf(block(new RegExp(`^ {2}${parameter}:`), block(/^Parameters:/)), 'Default') as string];
  }),
);
/** The handler behind a function ARN: the function's esbuild entry point and the export its Handler names. */
export async function handlerOf(arn: string): Promise<(event: unknown) => Promise<unknown>> {
  const logicalId = arn.slice(arn.lastIndexOf(':') + 1);
  const body = block(new RegExp(`^ {2}${logicalId}:`), block(/^Resources:/));
  // the bundle npm run build makes for the function's CodeUri (dist/lambda/<name>), from its entry point
  const codeUri = fieldOf(body, 'CodeUri') as string;
  const entry = LAMBDA_FUNCTIONS.find((fn) => `dist/${ARTIFACTS.lambda(fn.name)}` === codeUri)?.entry as string;
  const exported = (fieldOf(body, 'Handler') as string).split('.')[1] as string;
  const module = (await import(/* @vite-ignore */ pathToFileURL(resolve(entry)).href)) as Record<string, unknown>;
  return module[exported] as (event: unknown) => Promise<unknown>;
}
