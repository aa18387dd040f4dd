/**
 * A small interpreter of the Amazon States Language subset the nightly state machine uses (Task with
 * `arn:aws:states:::lambda:invoke`, Distributed Map with an S3 JSON ItemReader, JSONPath payload templates,
 * ResultSelector / ResultPath / OutputPath, Retry). It walks the definition as written, so the payload each
 * Lambda handler receives is the one the definition builds – nothing is restated by hand. Retry delays are
 * recorded, not slept.
 */

type Json = unknown;

export interface Invocation {
  readonly state: string;
  readonly functionName: string;
  readonly payload: Json;
  readonly attempt: number;
  readonly error?: string;
}

export interface AslRunnerOptions {
  /** Runs the function named by a Task's FunctionName with the payload (what `lambda:invoke` does). */
  readonly invoke: (functionName: string, payload: Json, call: { state: string; attempt: number }) => Promise<Json>;
  /** Reads the object an ItemReader names (`s3:getObject`). */
  readonly getObject: (bucket: string, key: string) => Promise<string>;
}

export interface AslRun {
  /** How the execution ended: SUCCEEDED with `output`, or FAILED with `error` (what the console shows). */
  readonly status: 'SUCCEEDED' | 'FAILED';
  readonly output?: Json;
  readonly error?: { readonly name: string; readonly cause: string };
  readonly invocations: Invocation[];
  /** Every retry the definition's Retry rules scheduled: the state, the error and the delay in seconds. */
  readonly retries: { state: string; error: string; delaySeconds: number }[];
}

export class StatesError extends Error {
  constructor(
    readonly errorName: string,
    message: string,
  ) {
    super(message);
    this.name = errorName;
  }
}

interface StateDef {
  Type: string;
  Resource?: string;
  Parameters?: Record<string, Json>;
  ResultSelector?: Record<string, Json>;
  ResultPath?: string | null;
  OutputPath?: string;
  InputPath?: string;
  Retry?: {
    ErrorEquals: string[];
    IntervalSeconds?: number;
    MaxAttempts?: number;
    BackoffRate?: number;
    MaxDelaySeconds?: number;
  }[];
  Next?: string;
  End?: boolean;
  ItemReader?: { Resource: string; ReaderConfig?: { InputType?: string }; Parameters: Record<string, Json> };
  ItemSelector?: Record<string, Json>;
  ItemsPath?: string;
  MaxConcurrency?: number;
  MaxConcurrencyPath?: string;
  ToleratedFailurePercentage?: number;
  ItemProcessor?: Machine;
}

interface Machine {
  StartAt: string;
  States: Record<string, StateDef>;
}

const SUPPORTED: Record<string, readonly string[]> = {
  Task: [
    'Type',
    'Resource',
    'Parameters',
    'ResultSelector',
    'ResultPath',
    'OutputPath',
    'InputPath',
    'Retry',
    'Next',
    'End',
    'TimeoutSeconds',
    'Comment',
  ],
  Map: [
    'Type',
    'ItemReader',
    'ItemSelector',
    'ItemsPath',
    'MaxConcurrency',
    'MaxConcurrencyPath',
    'ToleratedFailurePercentage',
    'ItemProcessor',
    'ResultPath',
    'OutputPath',
    'InputPath',
    'Next',
    'End',
    'Comment',
  ],
};

export async function runStateMachine(definition: Machine, input: Json, options: AslRunnerOptions): Promise<AslRun> {
  const run: AslRun = { status: 'SUCCEEDED', invocations: [], retries: [] };
  try {
    return { ...run, output: await runMachine(definition, input, {}, options, run) };
  } catch (error) {
    if (!(error instanceof StatesError)) throw error;
    return { ...run, status: 'FAILED', error: { name: error.errorName, cause: error.message } };
  }
}

async function runMachine(machine: Machine, input: Json, context: Record<string, Json>, options: AslRunnerOptions, run: AslRun) {
  let name: string | undefined = machine.StartAt;
  let data = input;
  while (name !== undefined) {
    const state: StateDef | undefined = machine.States[name];
    if (!state) throw new Error(`no state ${name}`);
    const allowed = SUPPORTED[state.Type];
    if (!allowed) throw new Error(`state ${name}: type ${state.Type} is not supported by this runner`);
    const unknown = Object.keys(state).filter((k) => !allowed.includes(k));
    if (unknown.length > 0) throw new Error(`state ${name}: fields ${unknown.join(', ')} are not supported by this runner`);
    data =
      state.Type === 'Task'
        ? await task(name, state, data, context, options, run)
        : await map(name, state, data, context, options, run);
    name = state.End ? undefined : state.Next;
  }
  return data;
}

async function task(
  name: string,
  state: StateDef,
  raw: Json,
  context: Record<string, Json>,
  options: AslRunnerOptions,
  run: AslRun,
) {
  if (state.Resource !== 'arn:aws:states:::lambda:invoke')
    throw new Error(`state ${name}: resource ${state.Resource} is not supported`);
  const input = path(raw, state.InputPath ?? '$', context);
  const parameters = template(state.Parameters ?? {}, input, context) as { FunctionName: string; Payload: Json };
  let attempt = 0;
  const counts = new Map<number, number>();
  for (;;) {
    try {
      const payload = await options.invoke(parameters.FunctionName, parameters.Payload, { state: name, attempt });
      run.invocations.push({ state: name, functionName: parameters.FunctionName, payload: parameters.Payload, attempt });
      // lambda:invoke's result: the function's response in Payload (JSON-serialised and parsed on the way)
      const result = { Payload: JSON.parse(JSON.stringify(payload ?? null)), StatusCode: 200, ExecutedVersion: '$LATEST' };
      const selected = state.ResultSelector ? template(state.ResultSelector, result, context) : result;
      return path(place(input, state.ResultPath, selected), state.OutputPath ?? '$', context);
    } catch (error) {
      const errorName = (error as Error).name;
      run.invocations.push({
        state: name,
        functionName: parameters.FunctionName,
        payload: parameters.Payload,
        attempt,
        error: errorName,
      });
      const index = (state.Retry ?? []).findIndex((r) =>
        r.ErrorEquals.some((e) => e === errorName || e === 'States.ALL' || e === 'States.TaskFailed'),
      );
      const rule = state.Retry?.[index];
      const done = counts.get(index) ?? 0;
      if (!rule || done >= (rule.MaxAttempts ?? 3)) throw new StatesError(errorName, (error as Error).message);
      counts.set(index, done + 1);
      const delay = Math.min(
        (rule.IntervalSeconds ?? 1) * (rule.BackoffRate ?? 2) ** done,
        rule.MaxDelaySeconds ?? Number.POSITIVE_INFINITY,
      );
      run.retries.push({ state: name, error: errorName, delaySeconds: delay });
      attempt++;
    }
  }
}

async function map(
  name: string,
  state: StateDef,
  raw: Json,
  context: Record<string, Json>,
  options: AslRunnerOptions,
  run: AslRun,
) {
  const input = path(raw, state.InputPath ?? '$', context);
  let items: Json[];
  if (state.ItemReader) {
    if (state.ItemReader.Resource !== 'arn:aws:states:::s3:getObject' || state.ItemReader.ReaderConfig?.InputType !== 'JSON') {
      throw new Error(`state ${name}: only a JSON s3:getObject ItemReader is supported`);
    }
    const { Bucket, Key } = template(state.ItemReader.Parameters, input, context) as { Bucket: string; Key: string };
    items = JSON.parse(await options.getObject(Bucket, Key)) as Json[];
  } else items = path(input, state.ItemsPath ?? '$', context) as Json[];
  if (!Array.isArray(items)) throw new StatesError('States.ItemReaderFailed', `state ${name}: items are not an array`);
  const limit = state.MaxConcurrencyPath
    ? (path(input, state.MaxConcurrencyPath, context) as number)
    : (state.MaxConcurrency ?? 0);
  if (!Number.isInteger(limit) || limit < 0) throw new StatesError('States.Runtime', `state ${name}: MaxConcurrency ${limit}`);
  const processor = state.ItemProcessor as Machine;
  const outcomes: { ok: boolean; value: Json }[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      const item = items[index];
      const itemContext = { ...context, Map: { Item: { Index: index, Value: item } } };
      const itemInput = state.ItemSelector ? template(state.ItemSelector, input, itemContext) : item;
      try {
        outcomes[index] = { ok: true, value: await runMachine(processor, itemInput, itemContext, options, run) };
      } catch (error) {
        if (!(error instanceof StatesError)) throw error;
        outcomes[index] = { ok: false, value: { Error: error.errorName, Cause: error.message } };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit === 0 ? items.length : limit, items.length)) }, worker));
  const failed = outcomes.filter((o) => !o.ok).length;
  if (items.length > 0 && (failed * 100) / items.length > (state.ToleratedFailurePercentage ?? 0)) {
    throw new StatesError('States.ExceedToleratedFailureThreshold', `state ${name}: ${failed} of ${items.length} items failed`);
  }
  return path(
    place(
      input,
      state.ResultPath,
      outcomes.map((o) => o.value),
    ),
    state.OutputPath ?? '$',
    context,
  );
}

/** Resolves a payload template: `"x.$"` fields take a path (`$…` on the input, `$$…` on the context) or an intrinsic. */
function template(value: Json, input: Json, context: Record<string, Json>): Json {
  if (Array.isArray(value)) return value.map((v) => template(v, input, context));
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, Json> = {};
  for (const [key, v] of Object.entries(value)) {
    if (key.endsWith('.$')) out[key.slice(0, -2)] = expression(v as string, input, context);
    else out[key] = template(v, input, context);
  }
  return out;
}

function expression(text: string, input: Json, context: Record<string, Json>): Json {
  const intrinsic = /^States\.StringToJson\('(.*)'\)$/.exec(text);
  if (intrinsic) return JSON.parse(intrinsic[1] as string);
  if (text.startsWith('States.')) throw new Error(`intrinsic ${text} is not supported by this runner`);
  return path(input, text, context);
}

/** A reference path: `$`, `$.a.b`, `$$.Map.Item.Value`. */
function path(data: Json, text: string, context: Record<string, Json>): Json {
  const [root, rest] = text.startsWith('$$') ? [context, text.slice(2)] : [data, text.slice(1)];
  if (rest !== '' && !/^(\.[A-Za-z0-9_]+)+$/.test(rest)) throw new Error(`path ${text} is not supported by this runner`);
  let value: Json = root;
  for (const field of rest.split('.').slice(1)) {
    if (typeof value !== 'object' || value === null || !(field in value)) {
      throw new StatesError('States.Runtime', `path ${text} does not resolve on ${JSON.stringify(data)}`);
    }
    value = (value as Record<string, Json>)[field];
  }
  return value;
}

/** ResultPath: `$` (default) replaces the input, null keeps it, `$.a` sets that field. */
function place(input: Json, resultPath: string | null | undefined, result: Json): Json {
  if (resultPath === null) return input;
  if (resultPath === undefined || resultPath === '$') return result;
  const fields = resultPath.slice(2).split('.');
  const out = structuredClone(input) as Record<string, Json>;
  let at = out;
  for (const field of fields.slice(0, -1)) {
    at[field] = typeof at[field] === 'object' && at[field] !== null ? at[field] : {};
    at = at[field] as Record<string, Json>;
  }
  at[fields.at(-1) as string] = result;
  return out;
}
