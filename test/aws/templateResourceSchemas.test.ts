// biome-ignore-all lint/suspicious/noExplicitAny: resource schemas and a parsed template are untyped JSON
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { describe, expect, it } from 'vitest';
import { type CfnTemplate, readTemplate } from './support/cfnTemplate.js';

/**
 * Every plain CloudFormation resource of template.yaml against the CloudFormation registry schema of its type
 * (test/fixtures/cfn-resource-schemas/README.md: source, commit, licence). The SAM schema
 * (templateSchema.test.ts) checks the `AWS::Serverless::*` resources; together every resource's properties are
 * checked. A template value may be an intrinsic function wherever the schema expects a value (CloudFormation
 * resolves it before the resource provider sees it), so each value schema is read as "this, or one intrinsic".
 */
const FIXTURES = 'test/fixtures/cfn-resource-schemas';

const INTRINSIC = {
  type: 'object',
  minProperties: 1,
  maxProperties: 1,
  patternProperties: { '^(Ref|Condition|Fn::[A-Za-z]+)$': {} },
  additionalProperties: false,
};

/** The schema with every value position widened to "or an intrinsic", and read-only properties refused. */
function forTemplates(schema: any): any {
  const widen = (node: any): any => ({ anyOf: [walk(node), { $ref: '#/definitions/__intrinsic' }] });
  const mapValues = (obj: Record<string, any>) => Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, widen(v)]));
  const walk = (node: any): any => {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) return node;
    const out: any = { ...node };
    if (node.properties) out.properties = mapValues(node.properties);
    if (node.patternProperties) out.patternProperties = mapValues(node.patternProperties);
    if (node.items) out.items = Array.isArray(node.items) ? node.items.map(widen) : widen(node.items);
    if (node.additionalProperties && typeof node.additionalProperties === 'object') {
      out.additionalProperties = widen(node.additionalProperties);
    }
    for (const key of ['anyOf', 'oneOf', 'allOf'] as const) if (node[key]) out[key] = node[key].map(walk);
    return out;
  };
  const readOnly = new Set<string>(
    (schema.readOnlyProperties ?? []).map((p: string) => p.replace('/properties/', '')).filter((p: string) => !p.includes('/')),
  );
  const top = walk({
    type: 'object',
    properties: Object.fromEntries(Object.entries<any>(schema.properties).filter(([name]) => !readOnly.has(name))),
    required: schema.required,
    additionalProperties: schema.additionalProperties,
    anyOf: schema.anyOf,
    oneOf: schema.oneOf,
  });
  const definitions = Object.fromEntries(Object.entries<any>(schema.definitions ?? {}).map(([k, v]) => [k, walk(v)]));
  return { ...top, definitions: { ...definitions, __intrinsic: INTRINSIC } };
}

const schemas = new Map<string, any>();
for (const file of (await readdir(FIXTURES)).filter((f) => f.endsWith('.json')).sort()) {
  const schema = JSON.parse(await readFile(join(FIXTURES, file), 'utf8'));
  schemas.set(schema.typeName, schema);
}
/**
 * The registry's patterns are written for the providers' (Java-style) regex engines: escapes that JavaScript's
 * unicode mode refuses (`\_`, `\-`) and `\Z` for the end of input. Read them as such, without the `u` flag.
 */
const javaStylePattern = Object.assign((pattern: string) => new RegExp(pattern.replaceAll('\\Z', '$')), {
  code: 'javaStylePattern',
});
const ajv = new Ajv({
  allErrors: true,
  strict: false,
  validateSchema: false,
  validateFormats: false,
  code: { regExp: javaStylePattern },
});
const validators = new Map<string, ValidateFunction>();
function validatorFor(type: string): ValidateFunction {
  const cached = validators.get(type);
  if (cached) return cached;
  const validate = ajv.compile(forTemplates(schemas.get(type)));
  validators.set(type, validate);
  return validate;
}

/** The errors that say what is wrong (ajv also reports each failed "or an intrinsic" branch). */
function errorsOf(type: string, properties: unknown): string[] {
  const validate = validatorFor(type);
  if (validate(properties ?? {})) return [];
  const lines = (validate.errors ?? [])
    .filter((e: ErrorObject) => !e.schemaPath.includes('__intrinsic') && e.keyword !== 'anyOf')
    .map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
  return [...new Set(lines)];
}

const template = await readTemplate();
const plain = Object.entries(template.Resources).filter(([, r]) => !r.Type.startsWith('AWS::Serverless::'));

describe('template.yaml resources against the CloudFormation registry schemas', () => {
  it('has a pinned schema for every plain resource type the template uses', () => {
    const missing = [...new Set(plain.map(([, r]) => r.Type))].filter((type) => !schemas.has(type));
    expect(missing, `add test/fixtures/cfn-resource-schemas/<type>.json as its README says for: ${missing}`).toEqual([]);
  });

  for (const [id, resource] of plain) {
    it(`${id} (${resource.Type}): every property is one its schema knows, of the type it expects`, () => {
      expect(errorsOf(resource.Type, resource.Properties)).toEqual([]);
    });
  }

  /**
   * What SAM passes through unchanged to the `AWS::Lambda::Function` it generates (the SAM schema accepts any
   * value there): checked against that type's schema, for every function and for Globals.
   */
  const PASSED_TO_LAMBDA = ['Architectures', 'Description', 'Environment', 'EphemeralStorage', 'FunctionName', 'Handler'];
  PASSED_TO_LAMBDA.push('KmsKeyArn', 'Layers', 'LoggingConfig', 'MemorySize', 'ReservedConcurrentExecutions', 'Runtime');
  PASSED_TO_LAMBDA.push('Timeout', 'VpcConfig');
  /** SAM generates the role; a well-formed one stands in for it (Code and Role are required by the schema). */
  const LAMBDA_ROLE = 'arn:aws:iam::123456789012:role/makoto-lake-function';
  const lambdaFields = (properties: Record<string, unknown> | undefined) =>
    Object.fromEntries(Object.entries(properties ?? {}).filter(([name]) => PASSED_TO_LAMBDA.includes(name)));
  const functions: [string, Record<string, unknown> | undefined][] = [
    ['Globals.Function', template.Globals?.Function],
    ...Object.entries(template.Resources)
      .filter(([, r]) => r.Type === 'AWS::Serverless::Function')
      .map(([id, r]): [string, Record<string, unknown> | undefined] => [id, r.Properties]),
  ];
  for (const [id, properties] of functions) {
    it(`${id}: what SAM passes to AWS::Lambda::Function is valid there`, () => {
      const passed = lambdaFields(properties);
      expect(Object.keys(passed).length).toBeGreaterThan(0);
      const errors = errorsOf('AWS::Lambda::Function', { Code: {}, Role: LAMBDA_ROLE, ...passed });
      expect(errors).toEqual([]);
    });
  }
  it('refuses a Lambda memory size or timeout Lambda would refuse', () => {
    expect(errorsOf('AWS::Lambda::Function', { Code: {}, Role: LAMBDA_ROLE, MemorySize: 64, Timeout: 901 })).toEqual([
      '/MemorySize must be >= 128 {"comparison":">=","limit":128}',
      '/Timeout must be <= 900 {"comparison":"<=","limit":900}',
    ]);
  });

  const queue = plain.find(([, r]) => r.Type === 'AWS::SQS::Queue')?.[1] as CfnTemplate['Resources'][string];
  const alarm = plain.find(([, r]) => r.Type === 'AWS::CloudWatch::Alarm')?.[1] as CfnTemplate['Resources'][string];
  it('refuses what CloudFormation would refuse: an unknown property, a wrong type, a value out of range, a read-only one', () => {
    expect(errorsOf('AWS::SQS::Queue', { ...queue.Properties, VisibilityTimeOut: 60 })).toEqual([
      `/ must NOT have additional properties {"additionalProperty":"VisibilityTimeOut"}`,
    ]);
    expect(errorsOf('AWS::SQS::Queue', { ...queue.Properties, MessageRetentionPeriod: 'two weeks' })).toEqual([
      '/MessageRetentionPeriod must be integer {"type":"integer"}',
    ]);
    expect(errorsOf('AWS::SQS::Queue', { ...queue.Properties, MessageRetentionPeriod: 1209601 })).toEqual([
      '/MessageRetentionPeriod must be <= 1209600 {"comparison":"<=","limit":1209600}',
    ]);
    expect(errorsOf('AWS::SQS::Queue', { ...queue.Properties, Arn: 'arn:aws:sqs:x' })).toEqual([
      '/ must NOT have additional properties {"additionalProperty":"Arn"}',
    ]);
    const { ComparisonOperator, ...noOperator } = alarm.Properties as Record<string, unknown>;
    expect(ComparisonOperator).toBeDefined();
    expect(errorsOf('AWS::CloudWatch::Alarm', noOperator)).toEqual([
      `/ must have required property 'ComparisonOperator' {"missingProperty":"ComparisonOperator"}`,
    ]);
  });

  const bucket = plain.find(([, r]) => r.Type === 'AWS::S3::Bucket')?.[1] as CfnTemplate['Resources'][string];
  it('checks nested properties too: a lifecycle rule with a misspelt field or a bad status', () => {
    const withRule = (rule: Record<string, unknown>) => ({
      ...bucket.Properties,
      LifecycleConfiguration: { Rules: [{ Id: 'x', Status: 'Enabled', Prefix: 'staging/', ...rule }] },
    });
    expect(errorsOf('AWS::S3::Bucket', withRule({ ExpirationInDays: 3 }))).toEqual([]);
    expect(errorsOf('AWS::S3::Bucket', withRule({ ExpirationDays: 3 }))).toEqual([
      '/LifecycleConfiguration/Rules/0 must NOT have additional properties {"additionalProperty":"ExpirationDays"}',
    ]);
    expect(errorsOf('AWS::S3::Bucket', withRule({ Status: 'On' }))).toEqual([
      '/LifecycleConfiguration/Rules/0/Status must be equal to one of the allowed values {"allowedValues":["Enabled","Disabled"]}',
    ]);
  });

  it('accepts an intrinsic where a value is expected, and only a well-formed one', () => {
    expect(errorsOf('AWS::SQS::Queue', { ...queue.Properties, MessageRetentionPeriod: { Ref: 'Retention' } })).toEqual([]);
    expect(errorsOf('AWS::SQS::Queue', { ...queue.Properties, MessageRetentionPeriod: { Reff: 'Retention' } })).toEqual([
      '/MessageRetentionPeriod must be integer {"type":"integer"}',
    ]);
  });
});
