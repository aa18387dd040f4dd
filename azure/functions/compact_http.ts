/**
 * `compact_http`: manual compaction. `POST /api/compact` (function key) with
 * `{"target_date": "2025-08-11", "tenants": ["tenant-a"]}` → the per-tenant JSON summary:
 * 200 all tenants succeeded, 207 some failed (the others completed), 500 all failed, 400 bad request.
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { UsageError } from '../../src/core/errors.js';
import { targetDate } from '../../src/core/time/jst.js';
import { parseCompactionPayload } from '../../src/jobs/compactionPayload.js';
import { summaryJson } from '../../src/ops/report.js';
import { azureRuntime } from '../runtime.js';
import { loggedCompaction } from '../telemetry.js';

export async function compactHttp(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  let body: unknown;
  try {
    body = JSON.parse(await request.text());
  } catch {
    return badRequest('the body must be JSON like {"target_date": "2025-08-11", "tenants": ["tenant-a"]}');
  }
  let parsed: ReturnType<typeof parseCompactionPayload>;
  try {
    parsed = parseCompactionPayload(body);
  } catch (error) {
    if (error instanceof UsageError) return badRequest(error.message);
    throw error;
  }
  const runtime = await azureRuntime();
  const now = Date.now();
  const summary = await loggedCompaction(context, runtime, {
    date: parsed.date ?? targetDate(now, runtime.config.targetDateOffset),
    tenants: parsed.tenants ?? runtime.config.tenants,
    late: parsed.late,
  });
  const json = summaryJson(summary);
  const failed = json.totals.failed;
  const status = failed === 0 ? 200 : failed < json.totals.tenants ? 207 : 500;
  return { status, jsonBody: json };
}

function badRequest(message: string): HttpResponseInit {
  return { status: 400, jsonBody: { error: message } };
}

app.http('compact_http', {
  methods: ['POST'],
  authLevel: 'function',
  route: 'compact',
  handler: compactHttp,
});
