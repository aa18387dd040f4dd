// biome-ignore-all lint/suspicious/noExplicitAny: a parsed template is untyped JSON, navigated by the tests
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Ajv, type ErrorObject } from 'ajv';
import { describe, expect, it } from 'vitest';
import { type CfnTemplate, readTemplate } from './support/cfnTemplate.js';

/**
 * template.yaml against the schema the AWS SAM project publishes (test/fixtures/sam-schema/README.md: source,
 * commit, what it covers), read with CloudFormation's short tags as their long form, as the schema expects.
 */
const SCHEMA_PATH = 'test/fixtures/sam-schema/schema.json';
const schema = JSON.parse(await readFile(SCHEMA_PATH, 'utf8')) as Record<string, unknown>;
const template = await readTemplate();

/**
 * The schema says draft-04; ajv 8 reads draft-06 and later. The keywords it uses mean the same in both (checked
 * below: no boolean exclusiveMinimum/Maximum, no `id`), so it is compiled without its `$schema` line.
 */
const { $schema, ...body } = schema;
const definitions = schema.definitions as Record<string, any>;
const ajv = new Ajv({ allErrors: true, strict: false, validateSchema: false });
const validate = ajv.compile(body);
const byDefinition = new Map<string, ReturnType<typeof ajv.compile>>();

function errorsOf(document: unknown): ErrorObject[] {
  return validate(document) ? [] : [...(validate.errors ?? [])];
}

/**
 * Readable errors, one line each (path, message, params). The schema tries each resource against every resource
 * kind (`anyOf`), which reports the mismatches of all the kinds it is not; so each resource is checked again
 * against its own kind's definition alone (`AWS::Serverless::X` by its Type, anything else as a CloudFormation
 * resource), and only the errors outside Resources are taken from the whole run.
 */
function describeErrors(document: any, errors: ErrorObject[]): string {
  if (errors.length === 0) return '';
  const line = (e: ErrorObject, prefix = '') => `${prefix}${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`;
  const lines = errors.filter((e) => !e.instancePath.startsWith('/Resources/') && e.keyword !== 'anyOf').map((e) => line(e));
  for (const [id, resource] of Object.entries<any>(document?.Resources ?? {})) {
    const name =
      Object.keys(definitions).find((d) => definitions[d]?.properties?.Type?.enum?.includes(resource?.Type)) ??
      (Object.keys(definitions).find((d) => d.endsWith('any_cfn_resource__Resource')) as string);
    const check = byDefinition.get(name) ?? ajv.compile({ definitions, $ref: `#/definitions/${name}` });
    byDefinition.set(name, check);
    if (!check(resource)) lines.push(...(check.errors ?? []).map((e) => line(e, `/Resources/${id}`)));
  }
  return [...new Set(lines.length > 0 ? lines : errors.map((e) => line(e)))].join('\n');
}

const mutated = (change: (t: any) => void): CfnTemplate => {
  const copy = structuredClone(template) as any;
  change(copy);
  return copy;
};

describe('template.yaml against the published AWS SAM schema', () => {
  it('is the pinned draft-04 schema (its sha256 in the fixture README), using no keyword changed after draft-04', async () => {
    const sha256 = createHash('sha256')
      .update(await readFile(SCHEMA_PATH))
      .digest('hex');
    expect(await readFile('test/fixtures/sam-schema/README.md', 'utf8')).toContain(sha256);
    expect($schema).toBe('http://json-schema.org/draft-04/schema#');
    const offending: string[] = [];
    const walk = (v: unknown, path: string) => {
      if (Array.isArray(v)) {
        for (const [i, x] of v.entries()) walk(x, `${path}[${i}]`);
      } else if (v && typeof v === 'object') {
        for (const [k, x] of Object.entries(v)) {
          if ((k === 'exclusiveMinimum' || k === 'exclusiveMaximum') && typeof x === 'boolean') offending.push(`${path}.${k}`);
          if (k === 'id' && typeof x === 'string') offending.push(`${path}.${k}`);
          walk(x, `${path}.${k}`);
        }
      }
    };
    walk(schema, '');
    expect(offending).toStrictEqual([]);
  });

  it('knows every SAM resource type the template uses', () => {
    const samTypes = [...new Set(Object.values(template.Resources).map((r) => r.Type))].filter((t) =>
      t.startsWith('AWS::Serverless::'),
    );
    expect(samTypes.length).toBeGreaterThan(0);
    const known = Object.values(definitions).flatMap((d) => (d?.properties?.Type?.enum as string[] | undefined) ?? []);
    expect(samTypes.filter((t) => !known.includes(t))).toStrictEqual([]);
  });

  it('validates with no errors: every resource, its properties and Globals', () => {
    const errors = errorsOf(template);
    expect(describeErrors(template, errors), 'schema errors in template.yaml').toBe('');
    expect(errors).toStrictEqual([]);
  });

  it('refuses a misspelt function property, naming where', () => {
    const document = mutated((t) => {
      const p = t.Resources.CompactorFunction.Properties;
      p.MemorySise = p.MemorySize;
      delete p.MemorySize;
    });
    const errors = errorsOf(document);
    expect(errors).toContainEqual(
      expect.objectContaining({
        instancePath: '/Resources/CompactorFunction/Properties',
        keyword: 'additionalProperties',
        params: { additionalProperty: 'MemorySise' },
      }),
    );
    expect(describeErrors(document, errors)).toBe(
      '/Resources/CompactorFunction/Properties must NOT have additional properties {"additionalProperty":"MemorySise"}',
    );
  });

  it('refuses a string where the schema wants an integer, naming where', () => {
    const errors = errorsOf(
      mutated((t) => {
        t.Resources.CompactorFunction.Properties.EventInvokeConfig.MaximumRetryAttempts = 'none';
      }),
    );
    expect(errors).toContainEqual(
      expect.objectContaining({
        instancePath: '/Resources/CompactorFunction/Properties/EventInvokeConfig/MaximumRetryAttempts',
        keyword: 'type',
        params: { type: 'integer' },
      }),
    );
  });

  it('refuses a misspelt event-source property and an unknown SAM resource type', () => {
    const misspelt = errorsOf(
      mutated((t) => {
        const stream = t.Resources.StreamIngestFunction.Properties.Events.MessagesStream.Properties;
        stream.BatchSise = stream.BatchSize;
        delete stream.BatchSize;
      }),
    );
    expect(misspelt).toContainEqual(
      expect.objectContaining({
        instancePath: '/Resources/StreamIngestFunction/Properties/Events/MessagesStream/Properties',
        keyword: 'additionalProperties',
        params: { additionalProperty: 'BatchSise' },
      }),
    );
    const unknownType = errorsOf(
      mutated((t) => {
        t.Resources.PlanFunction.Type = 'AWS::Serverless::Functoin';
      }),
    );
    expect(unknownType).toContainEqual(
      expect.objectContaining({ instancePath: '/Resources/PlanFunction/Type', keyword: 'pattern' }),
    );
  });
});
