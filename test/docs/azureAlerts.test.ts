import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { METRICS_BY_SOURCE, type MetricSource } from '../../src/ops/metrics.js';

/**
 * docs/AZURE.md's alert rules are Log Analytics queries over the app's JSON log lines, which no local stand-in
 * runs. What can drift is the vocabulary: each query must name a message, a `Source` and metric keys the code
 * writes, and functions the app registers. (The AWS alarms: test/aws/template.test.ts.)
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string) => readFile(join(ROOT, path), 'utf8');

/** Every `--condition-query Name="…"` of the doc, by name. */
async function alertQueries(): Promise<Map<string, string>> {
  const doc = await read('docs/AZURE.md');
  return new Map([...doc.matchAll(/--condition-query (\w+)="(.*)" \\$/gm)].map((m) => [m[1] as string, m[2] as string]));
}

/** The sources that write log lines: the Functions app and the core it calls. */
async function loggedText(): Promise<string> {
  const files = ['azure/telemetry.ts', 'azure/functions/ingest_changefeed.ts', 'src/ops/partitionView.ts'];
  return (await Promise.all(files.map(read))).join('\n');
}

describe('docs/AZURE.md alert rules', () => {
  it('name only messages, sources, metrics and functions the code writes and registers', async () => {
    const queries = await alertQueries();
    expect([...queries.keys()]).toStrictEqual(['Failed', 'Errors', 'Runs', 'Attention', 'Pending', 'Poison', 'Retries']);
    const code = await loggedText();
    const found: string[] = [];
    for (const [name, query] of queries) {
      for (const [, op, message] of query.matchAll(/j\.message (==|startswith) '([^']+)'/g)) {
        // a message the code logs: exactly this literal, or a literal that starts with it
        expect(code.includes(op === '==' ? `'${message}'` : `'${message}`), `${name}: ${message}`).toBe(true);
        found.push(`${name} message`);
      }
      const source = /j\.Source == '(\w+)'/.exec(query)?.[1];
      if (source !== undefined) {
        expect(Object.keys(METRICS_BY_SOURCE), name).toContain(source);
        for (const [, metric] of query.matchAll(/toint\(j\.(\w+)\)/g)) {
          expect(METRICS_BY_SOURCE[source as MetricSource], `${name}: ${metric}`).toContain(metric);
          found.push(`${name} ${source}.${metric}`);
        }
      }
      for (const [, list] of query.matchAll(/operation_Name in \(([^)]*)\)/g)) {
        for (const fn of (list as string).split(',').map((s) => s.trim().replace(/'/g, ''))) {
          await expect(read(`azure/functions/${fn}.ts`), `${name}: function ${fn}`).resolves.toMatch(
            new RegExp(`app\\.\\w+\\('${fn}'`),
          );
          found.push(`${name} function ${fn}`);
        }
      }
    }
    expect(found).toStrictEqual([
      'Failed message',
      'Errors function daily_batch',
      'Errors function compact_http',
      'Runs message',
      'Attention message',
      'Attention status.PartitionsNeedingAttention',
      'Pending message',
      'Pending status.PendingDeletesNeedingAttention',
      'Poison message',
      'Retries message',
    ]);
  });
});
