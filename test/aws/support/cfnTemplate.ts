import { readFile } from 'node:fs/promises';
import { parse, type Tags } from 'yaml';

/**
 * CloudFormation's short-form intrinsics (`!Ref X`, `!GetAtt A.B`, `!Sub '...'`, `!If [c, a, b]`, …) read as
 * their long form (`{Ref: X}`, `{'Fn::GetAtt': [A, B]}`, …), so a template parses to plain JSON.
 */
const FUNCTIONS = ['Ref', 'Condition', 'GetAtt', 'Sub', 'If', 'Equals', 'Not', 'And', 'Or', 'Select', 'Join', 'Split'];
const MORE = ['FindInMap', 'GetAZs', 'ImportValue', 'Base64', 'Cidr', 'Length', 'ToJsonString'];

export const CFN_TAGS: Tags = [...FUNCTIONS, ...MORE].flatMap((fn) => {
  const key = fn === 'Ref' || fn === 'Condition' ? fn : `Fn::${fn}`;
  return [
    { tag: `!${fn}`, resolve: (value: string) => ({ [key]: fn === 'GetAtt' ? value.split('.') : value }) },
    { tag: `!${fn}`, collection: 'seq' as const, resolve: (seq: { toJSON(): unknown }) => ({ [key]: seq.toJSON() }) },
    { tag: `!${fn}`, collection: 'map' as const, resolve: (map: { toJSON(): unknown }) => ({ [key]: map.toJSON() }) },
  ];
});

export interface CfnResource {
  readonly Type: string;
  readonly Condition?: string;
  readonly Properties?: Record<string, unknown>;
  readonly Metadata?: Record<string, unknown>;
  readonly [key: string]: unknown;
}

export interface CfnTemplate {
  readonly Parameters: Record<string, Record<string, unknown>>;
  readonly Conditions: Record<string, unknown>;
  readonly Globals?: Record<string, Record<string, unknown>>;
  readonly Resources: Record<string, CfnResource>;
  readonly Outputs: Record<string, Record<string, unknown>>;
}

export async function readTemplate(path = 'template.yaml'): Promise<CfnTemplate> {
  return parse(await readFile(path, 'utf8'), { customTags: CFN_TAGS }) as CfnTemplate;
}

export const PSEUDO_PARAMETERS = [
  'AWS::AccountId',
  'AWS::NoValue',
  'AWS::NotificationARNs',
  'AWS::Partition',
  'AWS::Region',
  'AWS::StackId',
  'AWS::StackName',
  'AWS::URLSuffix',
];

/** Every intrinsic in a value tree, with the path where it sits. */
export function intrinsics(value: unknown, path = ''): { path: string; fn: string; arg: unknown }[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => intrinsics(v, `${path}[${i}]`));
  if (value === null || typeof value !== 'object') return [];
  const entries = Object.entries(value);
  const own =
    entries.length === 1 && (entries[0]?.[0] === 'Ref' || entries[0]?.[0].startsWith('Fn::'))
      ? [{ path, fn: entries[0][0], arg: entries[0][1] }]
      : [];
  return [...own, ...entries.flatMap(([k, v]) => intrinsics(v, `${path}.${k}`))];
}

/** The names a `Fn::Sub` string refers to: `${Name}` or `${Resource.Attribute}` (not `${!Literal}`). */
export function subReferences(template: string): string[] {
  return [...template.matchAll(/\$\{([^}!][^}]*)\}/g)].map((m) => m[1] as string);
}
