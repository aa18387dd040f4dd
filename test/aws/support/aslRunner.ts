/**
 * A small interpreter of the Amazon States Language subset the nightly state machine uses (Task with
 * `arn:aws:states:::lambda:invoke`, Distributed Map with an S3 JSON ItemReader, inline Map over ItemsPath,
 * Choice, Pass, Succeed, Fail, JSONPath payload templates with the intrinsics States.StringToJson,
 * States.ArrayRange and States.MathAdd, ResultSelector / ResultPath / OutputPath, Retry, Catch). It walks
 * the definition as written, so the payload each Lambda handler receives is the one the definition builds –
 * nothing is restated by hand. Retry delays are recorded, not slept. An inline Map starts no new iteration
 * once one failed and then fails with that iteration's error (iterations already running finish first).
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
  /** Every error a Catch took: the state, the error and the state it went to. */
  readonly caught: { state: string; error: string; next: string }[];
  /** The states entered, in order (Map iterations interleave). */
  readonly visited: string[];
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

interface Retrier {
  ErrorEquals: string[];
  IntervalSeconds?: number;
  MaxAttempts?: number;
  BackoffRate?: number;
  MaxDelaySeconds?: number;
}

interface Catcher {
  ErrorEquals: string[];
  ResultPath?: string | null;
  Next: string;
}

interface ChoiceRule {
  Variable: string;
  IsPresent?: boolean;
  StringEquals?: string;
  BooleanEquals?: boolean;
  Next: string;
}

interface StateDef {
  Type: string;
  Resource?: string;
  Parameters?: Record<string, Json>;
  ResultSelector?: Record<string, Json>;
  ResultPath?: string | null;
  OutputPath?: string;
  InputPath?: string;
  Retry?: Retrier[];
  Catch?: Catcher[];
  Next?: string;
  End?: boolean;
  ItemReader?: { Resource: string; ReaderConfig?: { InputType?: string }; Parameters: Record<string, Json> };
  ItemSelector?: Record<string, Json>;
  ItemsPath?: string;
  MaxConcurrency?: number;
  MaxConcurrencyPath?: string;
  ToleratedFailurePercentage?: number;
  ItemProcessor?: Machine & { ProcessorConfig?: { Mode?: string } };
  Choices?: ChoiceRule[];
  Default?: string;
  Error?: string;
  Cause?: string;
}

interface Machine {
  StartAt: string;
  States: Record<string, StateDef>;
}

const COMMON = ['Type', 'Comment', 'InputPath', 'OutputPath'];
const SUPPORTED: Record<string, readonly string[]> = {
  Task: [...COMMON, 'Resource', 'Parameters', 'ResultSelector', 'ResultPath', 'Retry', 'Catch', 'Next', 'End', 'TimeoutSeconds'],
  Map: [
    ...COMMON,
    'ItemReader',
    'ItemSelector',
    'ItemsPath',
    'MaxConcurrency',
    'MaxConcurrencyPath',
    'ToleratedFailurePercentage',
    'ItemProcessor',
    'ResultPath',
    'Catch',
    'Next',
    'End',
  ],
  Choice: ['Type', 'Comment', 'InputPath', 'OutputPath', 'Choices', 'Default'],
  Pass: [...COMMON, 'Parameters', 'ResultPath', 'Next', 'End'],
  Succeed: COMMON,
  Fail: ['Type', 'Comment', 'Error', 'Cause'],
};
const CHOICE_RULE = ['Variable', 'IsPresent', 'StringEquals', 'BooleanEquals', 'Next'];

export async function runStateMachine(definition: Machine, input: Json, options: AslRunnerOptions): Promise<AslRun> {
  const run: AslRun = { status: 'SUCCEEDED', invocations: [], retries: [], caught: [], visited: [] };
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
    run.visited.push(name);
    if (state.Type === 'Succeed') return path(path(data, state.InputPath ?? '$', context), state.OutputPath ?? '$', context);
    if (state.Type === 'Fail') throw new StatesError(state.Error ?? 'States.Fail', state.Cause ?? '');
    if (state.Type === 'Choice') {
      name = choose(name, state, path(data, state.InputPath ?? '$', context), context);
      continue;
    }
    try {
      data =
        state.Type === 'Task'
          ? await task(name, state, data, context, options, run)
          : state.Type === 'Map'
            ? await map(name, state, data, context, options, run)
            : pass(state, data, context);
    } catch (error) {
      if (!(error instanceof StatesError)) throw error;
      const catcher: Catcher | undefined = state.Catch?.find((c) => c.ErrorEquals.some((e) => matches(e, error.errorName)));
      if (!catcher) throw error;
      run.caught.push({ state: name, error: error.errorName, next: catcher.Next });
      data = place(data, catcher.ResultPath, { Error: error.errorName, Cause: error.message });
      name = catcher.Next;
      continue;
    }
    name = state.End ? undefined : state.Next;
  }
  return data;
}

/** Whether an ErrorEquals name matches an error (States.ALL: any; States.TaskFailed: any but a timeout). */
const matches = (name: string, error: string) =>
  name === error || name === 'States.ALL' || (name === 'States.TaskFailed' && error !== 'States.Timeout');

function choose(name: string, state: StateDef, input: Json, context: Record<string, Json>): string {
  for (const rule of state.Choices ?? []) {
    const unknown = Object.keys(rule).filter((k) => !CHOICE_RULE.includes(k));
    if (unknown.length > 0)
      throw new Error(`state ${name}: choice fields ${unknown.join(', ')} are not supported by this runner`);
    const present = resolves(input, rule.Variable, context);
    if (rule.IsPresent !== undefined) {
      if (present === rule.IsPresent) return rule.Next;
      continue;
    }
    const value = path(input, rule.Variable, context);
    if (rule.StringEquals !== undefined && value === rule.StringEquals) return rule.Next;
    if (rule.BooleanEquals !== undefined && value === rule.BooleanEquals) return rule.Next;
  }
  if (state.Default === undefined) throw new StatesError('States.NoChoiceMatched', `state ${name}: no choice matched`);
  return state.Default;
}

function pass(state: StateDef, raw: Json, context: Record<string, Json>) {
  const input = path(raw, state.InputPath ?? '$', context);
  const result = state.Parameters ? template(state.Parameters, input, context) : input;
  return path(place(input, state.ResultPath, result), state.OutputPath ?? '$', context);
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
      const index = (state.Retry ?? []).findIndex((r) => r.ErrorEquals.some((e) => matches(e, errorName)));
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
  const processor = state.ItemProcessor as NonNullable<StateDef['ItemProcessor']>;
  const inline = (processor.ProcessorConfig?.Mode ?? 'INLINE') === 'INLINE';
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
  const outcomes: { ok: boolean; value: Json; error?: StatesError }[] = new Array(items.length);
  let next = 0;
  let stopped = false;
  const worker = async () => {
    while (next < items.length && !stopped) {
      const index = next++;
      const item = items[index];
      const itemContext = { ...context, Map: { Item: { Index: index, Value: item } } };
      const itemInput = state.ItemSelector ? template(state.ItemSelector, input, itemContext) : item;
      try {
        outcomes[index] = { ok: true, value: await runMachine(processor, itemInput, itemContext, options, run) };
      } catch (error) {
        if (!(error instanceof StatesError)) throw error;
        outcomes[index] = { ok: false, value: { Error: error.errorName, Cause: error.message }, error };
        // an inline Map fails as soon as one iteration fails: no new iteration starts
        if (inline) stopped = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit === 0 ? items.length : limit, items.length)) }, worker));
  const failures = outcomes.filter((o) => o !== undefined && !o.ok);
  if (inline && failures[0]?.error) throw failures[0].error;
  if (items.length > 0 && (failures.length * 100) / items.length > (state.ToleratedFailurePercentage ?? 0)) {
    throw new StatesError(
      'States.ExceedToleratedFailureThreshold',
      `state ${name}: ${failures.length} of ${items.length} items failed`,
    );
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
  if (!text.startsWith('States.')) return path(input, text, context);
  const parser = { text, at: 0 };
  const value = intrinsic(parser, input, context);
  if (parser.at !== text.length) throw new Error(`intrinsic ${text}: unexpected text at ${parser.at}`);
  return value;
}

/** The intrinsics the definition uses, as Step Functions evaluates them (arguments: paths, numbers, 'strings', calls). */
const INTRINSICS: Record<string, (args: Json[], text: string) => Json> = {
  'States.StringToJson': ([s]) => JSON.parse(s as string),
  'States.MathAdd': ([a, b], text) => {
    if (!Number.isInteger(a) || !Number.isInteger(b)) throw new StatesError('States.Runtime', `${text}: integers expected`);
    return (a as number) + (b as number);
  },
  'States.ArrayRange': ([first, last, step], text) => {
    const [a, b, s] = [first, last, step] as [number, number, number];
    if (![a, b, s].every(Number.isInteger) || s === 0) throw new StatesError('States.Runtime', `${text}: integers expected`);
    const out: number[] = [];
    for (let i = a; s > 0 ? i <= b : i >= b; i += s) out.push(i);
    if (out.length > 1000) throw new StatesError('States.Runtime', `${text}: more than 1,000 elements`);
    return out;
  },
};

function intrinsic(p: { text: string; at: number }, input: Json, context: Record<string, Json>): Json {
  const skip = () => {
    while (p.text[p.at] === ' ') p.at++;
  };
  skip();
  const rest = p.text.slice(p.at);
  const call = /^(States\.[A-Za-z]+)\(/.exec(rest);
  if (call) {
    const fn = INTRINSICS[call[1] as string];
    if (!fn) throw new Error(`intrinsic ${call[1]} is not supported by this runner`);
    p.at += call[0].length;
    const args: Json[] = [];
    skip();
    while (p.text[p.at] !== ')') {
      args.push(intrinsic(p, input, context));
      skip();
      if (p.text[p.at] === ',') p.at++;
      else if (p.text[p.at] !== ')') throw new Error(`intrinsic ${p.text}: expected , or ) at ${p.at}`);
    }
    p.at++;
    return fn(args, p.text);
  }
  const literal = /^'((?:[^'\\]|\\.)*)'/.exec(rest);
  if (literal) {
    p.at += literal[0].length;
    return (literal[1] as string).replace(/\\(.)/g, '$1');
  }
  const number = /^-?\d+(?:\.\d+)?/.exec(rest);
  if (number) {
    p.at += number[0].length;
    return Number(number[0]);
  }
  const ref = /^\$\$?(?:\.[A-Za-z0-9_]+)*/.exec(rest);
  if (ref) {
    p.at += ref[0].length;
    return path(input, ref[0], context);
  }
  throw new Error(`intrinsic ${p.text}: cannot read ${rest}`);
}

/** Whether a reference path resolves (a Choice's IsPresent). */
function resolves(data: Json, text: string, context: Record<string, Json>): boolean {
  try {
    path(data, text, context);
    return true;
  } catch (error) {
    if (error instanceof StatesError) return false;
    throw error;
  }
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
