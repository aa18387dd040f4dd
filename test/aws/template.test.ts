// biome-ignore-all lint/suspicious/noExplicitAny: a parsed template is untyped JSON, navigated by the tests
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: CloudFormation !Sub strings, literally
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ARTIFACTS, LAMBDA_FUNCTIONS, NODE_TARGET } from '../../scripts/build.js';
import { DEFAULT_SPLIT_THRESHOLD_BYTES } from '../../src/core/splitShape.js';
import {
  ANALYTICS_ROOT,
  COMPACTION_WORK_ROOT,
  LOCK_ROOT,
  MANIFEST_ROOT,
  QUARANTINE_ROOT,
  STAGING_ROOT,
  stagingKey,
  TOMBSTONE_ROOT,
} from '../../src/core/staging/layout.js';
import {
  METRIC_NAMESPACE,
  METRIC_SERVICE,
  METRICS_BY_SOURCE,
  type MetricSource,
  SOURCE_DIMENSION,
} from '../../src/ops/metrics.js';
import { type CfnResource, intrinsics, PSEUDO_PARAMETERS, readTemplate, subReferences } from './support/cfnTemplate.js';

/** Checks template.yaml against the code, read with CloudFormation's short tags as their long form. */
const template = await readTemplate();
const resources = template.Resources;
const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const functions = ofType('AWS::Serverless::Function');
const props = (id: string) => (resources[id] as CfnResource).Properties as Record<string, any>;
const ref = (name: string) => ({ Ref: name });
const getAtt = (resource: string, attribute: string) => ({ 'Fn::GetAtt': [resource, attribute] });
const alarms = ofType('AWS::CloudWatch::Alarm');

/** Every IAM statement of the template (function policies and roles), conditional ones included. */
function statements(): Record<string, any>[] {
  const found: Record<string, any>[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (Array.isArray(o.Statement)) found.push(...(o.Statement as Record<string, any>[]));
      Object.values(o).forEach(walk);
    }
  };
  walk(resources);
  return found;
}

describe('template.yaml: structure', () => {
  it('defines the ingest, redrive and compactor functions and the nightly fan-out’s plan and summary steps', () => {
    expect(functions.map(([id]) => id)).toStrictEqual([
      'StreamIngestFunction',
      'StreamRedriveFunction',
      'CompactorFunction',
      'PlanFunction',
      'SummaryFunction',
    ]);
  });

  it('offers the redrive function off by default: SQS on-failure queue in, stream reads and staging writes only', () => {
    const parameter = template.Parameters.RedriveFunction as Record<string, unknown>;
    expect([parameter.Default, parameter.AllowedValues]).toStrictEqual(['disabled', ['disabled', 'enabled']]);
    expect(template.Conditions.UseRedriveFunction).toStrictEqual({ 'Fn::Equals': [ref('RedriveFunction'), 'enabled'] });
    const fn = resources.StreamRedriveFunction as CfnResource;
    const p = props('StreamRedriveFunction');
    expect([fn.Condition, p.Handler]).toStrictEqual(['UseRedriveFunction', 'redrive.handler']);
    expect(p.Events.FailedBatches).toStrictEqual({
      Type: 'SQS',
      Properties: {
        Queue: getAtt('StreamIngestFailureQueue', 'Arn'),
        BatchSize: 1,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
      },
    });
    const actions = (p.Policies as { Statement: { Action: string | string[] }[] }[]).flatMap((policy) =>
      policy.Statement.flatMap((st) => st.Action),
    );
    expect(actions).toStrictEqual(['s3:PutObject', 'dynamodb:GetShardIterator', 'dynamodb:GetRecords']);
    expect(props('StreamIngestFailureQueue').VisibilityTimeout).toBeGreaterThan(p.Timeout);
  });

  it('resolves every !Ref, !GetAtt, ${…} in !Sub and condition to a parameter, resource, pseudo parameter or condition', () => {
    // SAM creates `<FunctionId>Role` for a function that names no Role of its own
    const samRoles = functions.filter(([, fn]) => fn.Properties?.Role === undefined).map(([id]) => `${id}Role`);
    const names = new Set([...Object.keys(template.Parameters), ...Object.keys(resources), ...samRoles, ...PSEUDO_PARAMETERS]);
    const conditions = new Set(Object.keys(template.Conditions));
    const found = intrinsics(template);
    const problems: string[] = [];
    for (const { path, fn, arg } of found) {
      if (fn === 'Ref' && !names.has(arg as string)) problems.push(`${path}: !Ref ${arg}`);
      if (fn === 'Fn::GetAtt' && !(String((arg as string[])[0]) in resources)) problems.push(`${path}: !GetAtt ${arg}`);
      if (fn === 'Fn::If' && !conditions.has((arg as string[])[0] as string))
        problems.push(`${path}: !If ${(arg as string[])[0]}`);
      if (fn === 'Fn::Sub') {
        const [text, vars] = Array.isArray(arg) ? (arg as [string, Record<string, unknown>]) : [arg as string, {}];
        for (const name of subReferences(text)) {
          const target = name.includes('.') && !name.startsWith('AWS::') ? (name.split('.')[0] as string) : name;
          if (!names.has(target) && !(name in vars)) problems.push(`${path}: \${${name}}`);
        }
      }
    }
    for (const [id, r] of [...Object.entries(resources), ...Object.entries(template.Outputs)]) {
      if (r.Condition !== undefined && !conditions.has(r.Condition as string)) problems.push(`${id}: Condition ${r.Condition}`);
    }
    expect(problems).toStrictEqual([]);
    // the check itself sees the template's references (a parser that dropped the tags would find none)
    expect(found.filter((i) => i.fn === 'Ref').length).toBeGreaterThan(40);
    expect(found.filter((i) => i.fn === 'Fn::Sub').length).toBeGreaterThan(15);
  });

  it('deploys what npm run build produces: each function its bundle folder, the compactor the DuckDB layer', async () => {
    const built = LAMBDA_FUNCTIONS.map((fn) => ({ ...fn, codeUri: `dist/${ARTIFACTS.lambda(fn.name)}` }));
    expect(functions.map(([, fn]) => fn.Properties?.CodeUri).sort()).toStrictEqual(built.map((b) => b.codeUri).sort());
    for (const [id, fn] of functions) {
      const artifact = built.find((b) => b.codeUri === fn.Properties?.CodeUri) as (typeof built)[number];
      // no Metadata/BuildMethod: `sam build` would rebuild from the sources instead of deploying the bundle
      expect(fn.Metadata, id).toBeUndefined();
      const [module, exported] = String(fn.Properties?.Handler).split('.') as [string, string];
      expect(`${module}.js`, `${id} Handler`).toBe(artifact.file);
      const loaded = (await import(/* @vite-ignore */ pathToFileURL(resolve(artifact.entry)).href)) as Record<string, unknown>;
      expect(typeof loaded[exported], `${artifact.entry} exports ${exported}`).toBe('function');
    }
    const layer = resources.DuckDbLayer as CfnResource;
    expect([layer.Type, layer.Properties?.ContentUri, layer.Metadata]).toStrictEqual([
      'AWS::Serverless::LayerVersion',
      `dist/${ARTIFACTS.duckdbLayer}`,
      undefined,
    ]);
    expect([props('CompactorFunction').Layers, props('StreamIngestFunction').Layers]).toStrictEqual([
      [ref('DuckDbLayer')],
      undefined,
    ]);
  });

  it("sets only environment variables the config reads, with the seed names (and the runtime's thread pool size)", async () => {
    const config = await readFile('src/core/config.ts', 'utf8');
    const read = new Set([...config.matchAll(/\b(?:read|int|oneOf|bool)\('([A-Z][A-Z0-9_]+)'/g)].map((m) => m[1]));
    const variables = [template.Globals?.Function, ...functions.map(([, f]) => f.Properties)].flatMap((p) =>
      Object.keys((p?.Environment as { Variables?: object } | undefined)?.Variables ?? {}),
    );
    expect([...new Set(variables)].sort()).toStrictEqual([
      'FIREHOSE_STREAM_NAME',
      'S3_BUCKET_NAME',
      'SPLIT_THRESHOLD_BYTES',
      'STAGING_TRANSPORT',
      'TARGET_DATE_OFFSET',
      'TENANT_ID',
      'UV_THREADPOOL_SIZE',
    ]);
    // UV_THREADPOOL_SIZE is the runtime's (libuv sizes its thread pool from it at start), not the config's
    const runtime = new Set(['UV_THREADPOOL_SIZE']);
    for (const name of variables.filter((n) => !runtime.has(n))) {
      expect(read.has(name), `${name} is read by src/core/config.ts`).toBe(true);
    }
    expect(
      (template.Globals?.Function?.Environment as { Variables?: Record<string, string> } | undefined)?.Variables
        ?.UV_THREADPOOL_SIZE,
    ).toBe('8');
    // the split threshold defaults to the config's default
    expect(template.Parameters.SplitThresholdBytes?.Default).toBe(DEFAULT_SPLIT_THRESHOLD_BYTES);
  });
});

describe('template.yaml: runtime', () => {
  it('runs Node.js 22 everywhere: Lambda runtime, esbuild target, layer, Azure Functions engines and the CI', async () => {
    expect(template.Globals?.Function?.Runtime).toBe('nodejs22.x');
    expect(NODE_TARGET).toBe('node22');
    expect((resources.DuckDbLayer as CfnResource).Properties?.CompatibleRuntimes).toStrictEqual(['nodejs22.x']);
    const azure = JSON.parse(await readFile('azure/package.json', 'utf8')) as { engines: { node: string } };
    expect(azure.engines).toStrictEqual({ node: '>=22 <23' });
    expect(await readFile('.ci/run', 'utf8')).toMatch(/^NODE22_VERSION=22\.\d+\.\d+$/m);
  });
});

describe('template.yaml: the functions', () => {
  it('schedules the compactor every day at 02:00 JST, with a failure destination and its own log group', () => {
    const compactor = props('CompactorFunction');
    const schedule = compactor.Events.Nightly.Properties.Schedule as string;
    const m = /^cron\((\d+) (\d+) \* \* \? \*\)$/.exec(schedule);
    expect(m, schedule).not.toBeNull();
    const utcMinutes = Number(m?.[2]) * 60 + Number(m?.[1]);
    expect((utcMinutes + 9 * 60) % (24 * 60)).toBe(2 * 60);
    expect(compactor.Timeout).toBe(900);
    expect(compactor.EventInvokeConfig).toStrictEqual({
      MaximumRetryAttempts: 0,
      DestinationConfig: { OnFailure: { Type: 'SQS', Destination: getAtt('CompactorFailureQueue', 'Arn') } },
    });
    expect(resources.CompactorFailureQueue?.Type).toBe('AWS::SQS::Queue');
  });

  it('runs the compactor every IntradayMinutes (default 60, 0 = off) with the intraday payload; the 02:00 JST run unchanged', () => {
    const events = props('CompactorFunction').Events;
    expect(Object.keys(events).sort()).toStrictEqual(['Intraday', 'Nightly']);
    expect(events.Intraday).toStrictEqual({
      Type: 'Schedule',
      Properties: {
        Schedule: { 'Fn::If': ['IntradayOn', { 'Fn::Sub': 'rate(${IntradayMinutes} minutes)' }, 'rate(60 minutes)'] },
        Input: '{"intraday": true}',
        Description: "Compact today's JST partitions that gained staging since their last commit",
        State: { 'Fn::If': ['IntradayOn', 'ENABLED', 'DISABLED'] },
        RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 600 },
      },
    });
    expect(template.Conditions.IntradayOn).toStrictEqual({ 'Fn::Not': [{ 'Fn::Equals': [ref('IntradayMinutes'), '0'] }] });
    const minutes = template.Parameters.IntradayMinutes as { Default: number; AllowedValues: number[] };
    // the config's default; every allowed value other than 0 a valid plural rate
    expect([minutes.Default, minutes.AllowedValues.includes(0), minutes.AllowedValues.includes(1)]).toStrictEqual([
      60,
      true,
      false,
    ]);
    // the nightly event as before: 17:00 UTC, the scheduled event as its input (no Input)
    expect(events.Nightly.Properties.Schedule).toBe('cron(0 17 * * ? *)');
    expect(events.Nightly.Properties.Input).toBeUndefined();
  });

  it('gives each function a log group named as Lambda names it, kept LogRetentionDays', () => {
    for (const [id, fn] of functions) {
      const group = (fn.Properties!.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
      const suffix = (fn.Properties!.FunctionName as { 'Fn::Sub': string })['Fn::Sub'];
      expect(resources[group], id).toStrictEqual({
        Type: 'AWS::Logs::LogGroup',
        ...(fn.Condition === undefined ? {} : { Condition: fn.Condition }),
        Properties: { LogGroupName: { 'Fn::Sub': `/aws/lambda/${suffix}` }, RetentionInDays: ref('LogRetentionDays') },
      });
    }
    expect(template.Parameters.LogRetentionDays?.Default).toBe(30);
  });

  it('consumes the stream with partial batch responses, bisection, bounded retries and an on-failure queue', () => {
    const stream = props('StreamIngestFunction').Events.MessagesStream;
    expect(stream).toStrictEqual({
      Type: 'DynamoDB',
      Properties: {
        Stream: ref('MessagesTableStreamArn'),
        StartingPosition: 'TRIM_HORIZON',
        BatchSize: ref('StreamBatchSize'),
        MaximumBatchingWindowInSeconds: ref('StreamBatchingWindowSeconds'),
        BisectBatchOnFunctionError: true,
        MaximumRetryAttempts: ref('StreamMaximumRetryAttempts'),
        MaximumRecordAgeInSeconds: 86400,
        ParallelizationFactor: 1,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        DestinationConfig: { OnFailure: { Type: 'SQS', Destination: getAtt('StreamIngestFailureQueue', 'Arn') } },
      },
    });
  });

  it('grants least privilege: ingest writes only staging and its quarantine; nothing gets s3:* or every resource', () => {
    // the compactor may list, read, write and delete under every root it writes (src/core/staging/layout.ts),
    // a split job's work folder included
    const compactorWrites = [
      ANALYTICS_ROOT,
      MANIFEST_ROOT,
      LOCK_ROOT,
      TOMBSTONE_ROOT,
      `${QUARANTINE_ROOT}compaction/`,
      COMPACTION_WORK_ROOT,
    ];
    const compactorPolicy = props('CompactorFunction').Policies[0].Statement as Record<string, any>[];
    const written = compactorPolicy.find((st) => st.Sid === 'WriteAnalyticsManifestsLocksQuarantine');
    expect(written?.Resource).toStrictEqual(compactorWrites.map((root) => ({ 'Fn::Sub': `\${LakeBucket.Arn}/${root}*` })));
    const listed = compactorPolicy.find((st) => st.Sid === 'ListLakePrefixes')?.Condition.StringLike['s3:prefix'];
    const ingestQuarantine = `${QUARANTINE_ROOT}ingest/`; // read by the status check after a run
    expect(listed).toStrictEqual([STAGING_ROOT, ...compactorWrites, ingestQuarantine].map((root) => `${root}*`));
    expect(compactorPolicy.find((st) => st.Sid === 'ReadIngestQuarantine')?.Resource).toStrictEqual({
      'Fn::Sub': `\${LakeBucket.Arn}/${ingestQuarantine}*`,
    });
    const all = statements();
    const ingest = all.find((s) => s.Sid === 'WriteStagingAndIngestQuarantine');
    expect(ingest).toStrictEqual({
      Sid: 'WriteStagingAndIngestQuarantine',
      Effect: 'Allow',
      Action: 's3:PutObject',
      Resource: [{ 'Fn::Sub': '${LakeBucket.Arn}/staging/messages/*' }, { 'Fn::Sub': '${LakeBucket.Arn}/quarantine/ingest/*' }],
    });
    expect(all.find((s) => s.Sid === 'ReadStaging')?.Action).toBe('s3:GetObject');
    const actions = all.flatMap((s) => [s.Action].flat());
    const targets = all.flatMap((s) => [s.Resource].flat());
    expect(all.length).toBeGreaterThan(5);
    expect(actions.filter((a) => typeof a === 'string' && /^s3:\*$|^\*$/.test(a))).toStrictEqual([]);
    expect(targets.filter((r) => r === '*')).toStrictEqual([]);
  });

  it('expires staging after a configurable number of days, and a split’s leftover work after two', () => {
    const rules = props('LakeBucket').LifecycleConfiguration.Rules as Record<string, unknown>[];
    expect(rules.find((r) => r.Id === 'expire-staging')).toStrictEqual({
      Id: 'expire-staging',
      Status: 'Enabled',
      Prefix: 'staging/',
      ExpirationInDays: ref('StagingRetentionDays'),
    });
    expect(rules.find((r) => r.Id === 'expire-compaction-work')).toStrictEqual({
      Id: 'expire-compaction-work',
      Status: 'Enabled',
      Prefix: COMPACTION_WORK_ROOT.slice(0, COMPACTION_WORK_ROOT.indexOf('/') + 1),
      ExpirationInDays: 2,
    });
  });

  it('has Firehose write gzip NDJSON into the staging layout by the records’ own tenant_id and dt', () => {
    const destination = props('StagingDeliveryStream').ExtendedS3DestinationConfiguration;
    const filled = (destination.Prefix as string)
      .replace('!{partitionKeyFromQuery:tenant_id}', 'acme')
      .replace('!{partitionKeyFromQuery:dt}', '2025-08-11');
    expect(stagingKey('acme', '2025-08-11', 'x').startsWith(filled)).toBe(true);
    expect(filled).toBe('staging/messages/tenant_id=acme/dt=2025-08-11/');
    expect(destination.ErrorOutputPrefix).toBe('quarantine/firehose/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/');
    expect([destination.CompressionFormat, destination.FileExtension]).toStrictEqual(['GZIP', '.ndjson.gz']);
    expect(destination.DynamicPartitioningConfiguration.Enabled).toBe(true);
    expect(destination.ProcessingConfiguration.Processors[0].Parameters[0].ParameterValue).toBe(
      '{tenant_id: .tenant_id, dt: .dt}',
    );
  });
});

describe('template.yaml: alarms and dashboard', () => {
  const byName = (name: string) => alarms.filter(([, a]) => a.Properties?.MetricName === name);
  const alarm = (id: string) => {
    const { AlarmName, AlarmDescription, AlarmActions, OKActions, ...rest } = props(id);
    return rest;
  };

  it('sends every alarm to the SNS topic, which an optional e-mail parameter subscribes to', () => {
    expect(alarms.length).toBe(8);
    for (const [id, a] of alarms) {
      expect([a.Properties?.AlarmActions, a.Properties?.OKActions], id).toStrictEqual([[ref('AlarmTopic')], [ref('AlarmTopic')]]);
      expect(typeof a.Properties?.AlarmDescription, id).toBe('string');
    }
    expect(resources.AlarmEmailSubscription).toStrictEqual({
      Type: 'AWS::SNS::Subscription',
      Condition: 'HasAlarmEmail',
      Properties: { TopicArn: ref('AlarmTopic'), Protocol: 'email', Endpoint: ref('AlarmEmail') },
    });
    expect(template.Conditions.HasAlarmEmail).toStrictEqual({ 'Fn::Not': [{ 'Fn::Equals': [ref('AlarmEmail'), ''] }] });
    expect(template.Parameters.AlarmEmail?.Default).toBe('');
  });

  it('alarms only on metrics the code emits, with the dimensions it emits them under', () => {
    const own = alarms.filter(([, a]) => a.Properties?.Namespace === METRIC_NAMESPACE);
    expect(own.length).toBe(4);
    for (const [id, a] of own) {
      const dims = a.Properties?.Dimensions as { Name: string; Value: string }[];
      const source = dims.find((d) => d.Name === SOURCE_DIMENSION)?.Value as MetricSource;
      expect(dims, id).toStrictEqual([
        { Name: 'service', Value: METRIC_SERVICE },
        { Name: SOURCE_DIMENSION, Value: source },
      ]);
      expect(METRICS_BY_SOURCE[source], id).toContain(a.Properties?.MetricName);
    }
  });

  it('alarms on a compactor error or any failed partition', () => {
    const [[errors]] = [byName('Errors')];
    expect(alarm(errors?.[0] as string)).toStrictEqual({
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: ref('CompactorFunction') }],
      Statistic: 'Sum',
      Period: 300,
      EvaluationPeriods: 1,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    });
    expect(alarm('PartitionsFailedAlarm')).toMatchObject({
      MetricName: 'PartitionsFailed',
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
  });

  it('alarms when the nightly status check finds a partition needing attention', () => {
    expect(alarm('PartitionsNeedingAttentionAlarm')).toMatchObject({
      MetricName: 'PartitionsNeedingAttention',
      Dimensions: [
        { Name: 'service', Value: METRIC_SERVICE },
        { Name: SOURCE_DIMENSION, Value: 'status' },
      ],
      Statistic: 'Maximum',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
    });
  });

  it('alarms when the nightly status check finds user deletes that need attention', () => {
    expect(alarm('PendingDeletesNeedingAttentionAlarm')).toStrictEqual(
      Object.assign(alarm('PartitionsNeedingAttentionAlarm'), { MetricName: 'PendingDeletesNeedingAttention' }),
    );
  });

  it('alarms when no nightly run finished for 26 hours, missing data counting as breaching', () => {
    const missing = alarm('NightlyRunMissingAlarm');
    expect(missing).toMatchObject({
      MetricName: 'RunsCompleted',
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'LessThanThreshold',
    });
    expect(missing.TreatMissingData).toBe('breaching');
    expect((missing.Period as number) * (missing.EvaluationPeriods as number)).toBe(26 * 3600);
    expect(missing.DatapointsToAlarm).toBe(missing.EvaluationPeriods);
    // CloudWatch allows at most 7 days of evaluation for periods of an hour or more
    expect(missing.Period).toBeGreaterThanOrEqual(3600);
  });

  it('alarms on a non-empty stream failure queue and an iterator more than an hour behind', () => {
    expect(alarm('StreamFailureQueueAlarm')).toStrictEqual({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: getAtt('StreamIngestFailureQueue', 'QueueName') }],
      Statistic: 'Maximum',
      Period: 300,
      EvaluationPeriods: 1,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    });
    expect(alarm('StreamIteratorAgeAlarm')).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'IteratorAge',
      Dimensions: [{ Name: 'FunctionName', Value: ref('StreamIngestFunction') }],
      Statistic: 'Maximum',
      Threshold: 60 * 60 * 1000,
      ComparisonOperator: 'GreaterThanThreshold',
    });
  });

  it('alarms on Firehose delivery errors only when that transport is on', () => {
    expect(resources.FirehoseDeliveryErrorsAlarm?.Condition).toBe('UseFirehose');
    expect(alarm('FirehoseDeliveryErrorsAlarm')).toMatchObject({
      Namespace: 'AWS/Firehose',
      MetricName: 'DeliveryToS3.Success',
      Dimensions: [{ Name: 'DeliveryStreamName', Value: ref('StagingDeliveryStream') }],
      Threshold: 1,
      ComparisonOperator: 'LessThanThreshold',
    });
  });

  it('draws the dashboard from metrics the code emits and from the alarms of this template', () => {
    const body = (props('OperationsDashboard').DashboardBody as { 'Fn::Sub': string })['Fn::Sub'];
    const dashboard = JSON.parse(body.replace(/\$\{[^}]+\}/g, 'x')) as {
      widgets: { type: string; properties: { metrics?: unknown[][]; alarms?: string[] } }[];
    };
    const own = dashboard.widgets
      .flatMap((w) => w.properties.metrics ?? [])
      .filter((m) => m[0] === METRIC_NAMESPACE)
      .map((m) => m.filter((part) => typeof part === 'string'));
    const shown = new Set(own.map((m) => m[1]));
    for (const m of own) {
      const [, name, service, serviceValue, source, sourceValue] = m as string[];
      expect([service, serviceValue, source], name).toStrictEqual(['service', METRIC_SERVICE, SOURCE_DIMENSION]);
      expect(METRICS_BY_SOURCE[sourceValue as MetricSource], `${name} ${sourceValue}`).toContain(name);
    }
    // every compaction metric is on the dashboard
    expect(METRICS_BY_SOURCE.compaction.filter((name) => !shown.has(name))).toStrictEqual([]);
    const alarmArns = subReferences(body).filter((r) => r.endsWith('.Arn'));
    expect(alarmArns.map((r) => resources[r.slice(0, -'.Arn'.length)]?.Type)).toStrictEqual(
      alarmArns.map(() => 'AWS::CloudWatch::Alarm'),
    );
    expect(alarmArns.length).toBe(5);
  });
});
