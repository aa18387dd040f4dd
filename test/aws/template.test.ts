import { readFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { stagingKey } from '../../src/staging/layout.js';

/**
 * Checks template.yaml against the code. SAM's short tags (!Ref, !GetAtt, !Sub) need a custom schema in
 * any YAML parser and the project has none as a dependency, so these checks read the text: the template
 * keeps one key per line and indents by two spaces, which is all they rely on.
 */
const text = await readFile('template.yaml', 'utf8');
const lines = text.split('\n');

/** The block of lines under the first line matching `header` (more deeply indented than it). */
function block(header: RegExp, within: string[] = lines): string[] {
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
/** Top-level resources by logical id. */
function resources(): Map<string, string[]> {
  const body = block(/^Resources:/);
  const map = new Map<string, string[]>();
  for (const [i, line] of body.entries()) {
    const m = /^ {2}([A-Za-z0-9]+):\s*$/.exec(line);
    if (m) map.set(m[1] as string, block(new RegExp(`^ {2}${m[1]}:`), body.slice(i)));
  }
  return map;
}
const value = (within: string[], key: string) =>
  within
    .map((l) => new RegExp(`^\\s*${key}:\\s*(.+?)\\s*$`).exec(l)?.[1])
    .find((v) => v !== undefined)
    ?.replace(/^'(.*)'$/, '$1');
const functions = [...resources()].filter(([, body]) => value(body, 'Type') === 'AWS::Serverless::Function');

describe('template.yaml', () => {
  it('defines the ingest and compactor functions and the nightly fan-out’s plan and summary steps', () => {
    expect(functions.map(([id]) => id)).toStrictEqual([
      'StreamIngestFunction',
      'CompactorFunction',
      'PlanFunction',
      'SummaryFunction',
    ]);
  });

  it('points every Handler at an exported function of its esbuild entry point', async () => {
    for (const [id, body] of functions) {
      const handler = value(body, 'Handler') as string;
      const entries = block(/^\s*EntryPoints:/, body).map((l) => l.trim().replace(/^- /, ''));
      expect(entries.length, id).toBe(1);
      const [module, exported] = handler.split('.') as [string, string];
      const entry = entries[0] as string;
      expect(basename(entry, '.ts'), `${id} Handler ${handler}`).toBe(module);
      const loaded = (await import(/* @vite-ignore */ pathToFileURL(resolve(entry)).href)) as Record<string, unknown>;
      expect(typeof loaded[exported], `${entry} exports ${exported}`).toBe('function');
    }
  });

  it('sets only environment variables the config reads, with the seed names', async () => {
    const config = await readFile('src/config.ts', 'utf8');
    const read = new Set([...config.matchAll(/\b(?:read|int|oneOf|bool)\('([A-Z][A-Z0-9_]+)'/g)].map((m) => m[1]));
    const set = lines
      .flatMap((_, i) => (/^\s*Variables:\s*$/.test(lines[i] as string) ? block(/^\s*Variables:\s*$/, lines.slice(i)) : []))
      .map((l) => /^\s*([A-Z][A-Z0-9_]*):/.exec(l)?.[1])
      .filter((n): n is string => n !== undefined);
    expect([...new Set(set)].sort()).toStrictEqual([
      'FIREHOSE_STREAM_NAME',
      'S3_BUCKET_NAME',
      'STAGING_TRANSPORT',
      'TARGET_DATE_OFFSET',
      'TENANT_ID',
    ]);
    for (const name of set) expect(read.has(name), `${name} is read by src/config.ts`).toBe(true);
  });

  it('schedules the compactor every day at 02:00 JST', () => {
    const [, body] = functions.find(([id]) => id === 'CompactorFunction') as [string, string[]];
    const schedule = value(block(/^\s*Events:/, body), 'Schedule') as string;
    const m = /^cron\((\d+) (\d+) \* \* \? \*\)$/.exec(schedule);
    expect(m, schedule).not.toBeNull();
    const utcMinutes = Number(m?.[2]) * 60 + Number(m?.[1]);
    expect((utcMinutes + 9 * 60) % (24 * 60)).toBe(2 * 60);
    expect(value(body, 'Timeout')).toBe('900');
    expect(block(/^\s*External:/, body).map((l) => l.trim())).toContain("- '@duckdb/node-api'");
  });

  it('consumes the stream with partial batch responses, bisection, bounded retries and an on-failure queue', () => {
    const [, body] = functions.find(([id]) => id === 'StreamIngestFunction') as [string, string[]];
    const event = block(/^\s*MessagesStream:/, body);
    expect(value(event, 'Type')).toBe('DynamoDB');
    expect(value(event, 'StartingPosition')).toBe('TRIM_HORIZON');
    expect(value(event, 'BisectBatchOnFunctionError')).toBe('true');
    expect(value(event, 'MaximumRetryAttempts')).toBe('!Ref StreamMaximumRetryAttempts');
    expect(value(event, 'BatchSize')).toBe('!Ref StreamBatchSize');
    expect(value(event, 'MaximumBatchingWindowInSeconds')).toBe('!Ref StreamBatchingWindowSeconds');
    expect(block(/^\s*FunctionResponseTypes:/, event).map((l) => l.trim())).toStrictEqual(['- ReportBatchItemFailures']);
    const onFailure = block(/^\s*OnFailure:/, event);
    expect([value(onFailure, 'Type'), value(onFailure, 'Destination')]).toStrictEqual([
      'SQS',
      '!GetAtt StreamIngestFailureQueue.Arn',
    ]);
  });

  it('grants least privilege: ingest writes only staging and its quarantine; nothing gets s3:* or every resource', () => {
    const [, ingest] = functions.find(([id]) => id === 'StreamIngestFunction') as [string, string[]];
    const s3Statement = block(/^\s*- Sid: WriteStagingAndIngestQuarantine/, ingest);
    expect(value(s3Statement, 'Action')).toBe('s3:PutObject');
    expect(block(/^\s*Resource:/, s3Statement).map((l) => l.trim())).toStrictEqual([
      `- !Sub '\${LakeBucket.Arn}/staging/messages/*'`,
      `- !Sub '\${LakeBucket.Arn}/quarantine/ingest/*'`,
    ]);
    expect(text).not.toMatch(/Action:\s*['"]?s3:\*/);
    expect(text).not.toMatch(/Resource:\s*['"]?\*['"]?\s*$/m);
    const [, compactor] = functions.find(([id]) => id === 'CompactorFunction') as [string, string[]];
    expect(value(block(/^\s*- Sid: ReadStaging/, compactor), 'Action')).toBe('s3:GetObject');
  });

  it('expires staging after a configurable number of days', () => {
    const bucket = resources().get('LakeBucket') as string[];
    const rule = block(/^\s*- Id: expire-staging/, bucket);
    expect([value(rule, 'Prefix'), value(rule, 'ExpirationInDays')]).toStrictEqual(['staging/', '!Ref StagingRetentionDays']);
  });

  it('has Firehose write gzip NDJSON into the staging layout by the records’ own tenant_id and dt', () => {
    const stream = resources().get('StagingDeliveryStream') as string[];
    const prefix = value(stream, 'Prefix') as string;
    const filled = prefix
      .replace('!{partitionKeyFromQuery:tenant_id}', 'acme')
      .replace('!{partitionKeyFromQuery:dt}', '2025-08-11');
    expect(stagingKey('acme', '2025-08-11', 'x').startsWith(filled)).toBe(true);
    expect(filled).toBe('staging/messages/tenant_id=acme/dt=2025-08-11/');
    expect(value(stream, 'ErrorOutputPrefix')).toBe(
      'quarantine/firehose/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/',
    );
    expect(value(stream, 'CompressionFormat')).toBe('GZIP');
    expect(value(stream, 'FileExtension')).toBe('.ndjson.gz');
    expect(value(block(/^\s*DynamicPartitioningConfiguration:/, stream), 'Enabled')).toBe('true');
    expect(value(stream, 'ParameterValue')).toBe('{tenant_id: .tenant_id, dt: .dt}');
  });
});
