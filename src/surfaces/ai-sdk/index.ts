/**
 * Model calls made through the AI SDK (`ai`), journaled as Rewind steps.
 *
 *   const model = journaledModel(ctx, openai('gpt-4o'));
 *   const { text } = await generateText({ model, prompt: 'Plan a trip' });
 *
 * Every call the wrapped model makes (generateText / streamText / an agent's
 * tool loop: one call per model round trip) is one `ctx.step` named
 * `model:<modelId>:<n>`, n counting calls to that model in the run. The step
 * result is a ModelCallRecord. On replay (a resume after a crash, a retry
 * after a rollback, a fork's copied prefix) the call is answered from the
 * record: the model is not called again and the SDK sees the same content,
 * finish reason and usage; a streamed call is played back part by part.
 *
 * Replay matches calls by order and name, as every ctx call does, not by
 * prompt: code that asks the model something else at the same point after a
 * change gets the recorded answer (bump the workflow version to avoid that).
 */
import { type LanguageModelMiddleware, wrapLanguageModel } from 'ai';
import type { Json } from '../../events/envelope.js';
import type { RunContext, StepIO, StepOptions } from '../../runtime/workflow.js';
import { toJson } from './json.js';

type Wrap = NonNullable<LanguageModelMiddleware['wrapGenerate']>;
type WrapStream = NonNullable<LanguageModelMiddleware['wrapStream']>;
/** The AI SDK's LanguageModelV3 (the provider packages' models). */
export type LanguageModelV3 = Parameters<typeof wrapLanguageModel>[0]['model'];
type CallOptions = Parameters<Wrap>[0]['params'];
type GenerateResult = Awaited<ReturnType<Wrap>>;
type StreamResult = Awaited<ReturnType<WrapStream>>;
type StreamPart = StreamResult['stream'] extends ReadableStream<infer P> ? P : never;

export interface JournaledModelOptions {
  /** Replaces the model id in step names: `model:<name>:<n>`. Keeps old runs replaying after a switch to another model. */
  name?: string;
  /** Per attempt; the request is aborted when it elapses. */
  timeoutMs?: number;
  /** Retries of a failed call. A streamed call is retried only when the request fails before its stream opens. */
  retry?: StepOptions<unknown>['retry'];
  /** A circuit breaker guarding the model (see Runtime.configureBreaker). */
  breaker?: string;
}

export interface ModelToolCall {
  toolCallId: string;
  toolName: string;
  /** The arguments, parsed when they are JSON (as the model sent them otherwise). */
  input: Json;
}

/** What a model-call step records (its StepCompleted result). Plain JSON: binary as base64, times as ISO strings. */
export interface ModelCallRecord {
  kind: 'model-call';
  mode: 'generate' | 'stream';
  provider: string;
  modelId: string;
  /** The messages as the model received them (LanguageModelV3Prompt). */
  prompt: Json;
  /** temperature, maxOutputTokens, tools, toolChoice, responseFormat…; never headers. */
  params: { [key: string]: Json };
  output: {
    text: string;
    reasoning?: string;
    toolCalls: ModelToolCall[];
    /** 'stop' | 'length' | 'tool-calls' | 'content-filter' | 'error' | 'other' */
    finishReason: string;
    rawFinishReason?: string;
    /** Every content part (LanguageModelV3Content): what replay gives back. */
    content: Json[];
  };
  /** LanguageModelV3Usage: inputTokens { total, noCache, cacheRead, cacheWrite }, outputTokens { total, text, reasoning }. */
  usage: Json;
  /** From the request until the result (generate) or the last part (stream). */
  latencyMs: number;
  /** Stream only: until the first part. */
  firstChunkMs?: number;
  response?: Json;
  warnings: Json[];
  providerMetadata?: Json;
  /** Stream only: every part in order (LanguageModelV3StreamPart), played back on replay. */
  stream?: Json[];
}

export function isModelCallRecord(value: unknown): value is ModelCallRecord {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'model-call';
}

/** The model, with every call journaled in the run's log. Make it inside `run`, from the ctx it is given. */
export function journaledModel(ctx: RunContext<any, any>, model: LanguageModelV3, options: JournaledModelOptions = {}): LanguageModelV3 {
  return wrapLanguageModel({ model, middleware: journalMiddleware(ctx, options) });
}

// Counted per ctx, i.e. per pass over the run: a replay numbers its calls exactly as the first pass did.
const counters = new WeakMap<object, Map<string, number>>();

function nextStepName(ctx: object, base: string): string {
  let perModel = counters.get(ctx);
  if (!perModel) {
    perModel = new Map();
    counters.set(ctx, perModel);
  }
  const n = (perModel.get(base) ?? 0) + 1;
  perModel.set(base, n);
  return `model:${base}:${n}`;
}

/** The middleware journaledModel uses, to compose with other middleware in wrapLanguageModel. It must be the last (innermost). */
export function journalMiddleware(ctx: RunContext<any, any>, options: JournaledModelOptions = {}): LanguageModelMiddleware {
  const stepOptions: StepOptions<ModelCallRecord> = {
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.retry ? { retry: options.retry } : {}),
    ...(options.breaker ? { breaker: options.breaker } : {}),
  };
  return {
    specificationVersion: 'v3',

    wrapGenerate: async ({ params, model }) => {
      const name = nextStepName(ctx, options.name ?? model.modelId);
      const record = await ctx.step(
        name,
        async (io) => {
          const started = performance.now();
          const result = await model.doGenerate(withSignal(params, io));
          return generateRecord(model, params, result, performance.now() - started);
        },
        stepOptions,
      );
      return replayGenerate(record);
    },

    wrapStream: async ({ params, model }) => {
      const name = nextStepName(ctx, options.name ?? model.modelId);
      let handOver: (result: StreamResult) => void = () => {};
      const live = new Promise<StreamResult>((resolve) => {
        handOver = resolve;
      });
      // Live, the caller reads its branch of the stream while the other branch is recorded: it sees
      // parts as they come, and the step completes when the stream ends. Replayed, the step settles first.
      let shown: { error: unknown } | undefined;
      const step: Promise<ModelCallRecord> = ctx.step(
        name,
        async (io) => {
          // The caller already has a failed attempt's stream: another attempt would answer nobody.
          if (shown) throw shown.error;
          const started = performance.now();
          const result = await model.doStream(withSignal(params, io));
          const [recording, consumer] = result.stream.tee();
          // The caller's stream ends only once the call is journaled: code that goes on to its next ctx call
          // (a checkpoint, say) must find the call recorded before it, or a rollback to that checkpoint
          // would drop the record and call the model again.
          const journaled = new TransformStream<StreamPart, StreamPart>({ flush: async () => void (await step) });
          handOver({ ...result, stream: consumer.pipeThrough(journaled) });
          shown = { error: undefined };
          const parts: StreamPart[] = [];
          let firstChunkMs: number | undefined;
          const reader = recording.getReader();
          try {
            for (;;) {
              const { done, value } = await reader.read();
              if (done) break;
              firstChunkMs ??= performance.now() - started;
              parts.push(value);
            }
          } catch (error) {
            shown.error = error;
            throw error;
          }
          return streamRecord(model, params, parts, performance.now() - started, firstChunkMs);
        },
        stepOptions,
      );
      const first = await Promise.race([live.then((result) => ({ result })), step.then((record) => ({ record }))]);
      if ('record' in first) return replayStream(first.record);
      // The caller's stream errors with the step's failure.
      step.catch(() => {});
      return first.result;
    },
  };
}

function withSignal(params: CallOptions, io: StepIO): CallOptions {
  const signals = [params.abortSignal, io.signal].filter((s): s is AbortSignal => s !== undefined);
  return { ...params, abortSignal: signals.length === 1 ? signals[0] : AbortSignal.any(signals) };
}

function baseRecord(
  model: LanguageModelV3,
  params: CallOptions,
): Pick<ModelCallRecord, 'kind' | 'provider' | 'modelId' | 'prompt' | 'params'> {
  const { prompt, abortSignal: _signal, headers: _headers, ...rest } = params;
  return {
    kind: 'model-call',
    provider: model.provider,
    modelId: model.modelId,
    prompt: toJson(prompt) ?? [],
    params: (toJson(rest) ?? {}) as { [key: string]: Json },
  };
}

function generateRecord(model: LanguageModelV3, params: CallOptions, result: GenerateResult, latencyMs: number): ModelCallRecord {
  const content = (toJson(result.content) ?? []) as Json[];
  return compact({
    ...baseRecord(model, params),
    mode: 'generate',
    output: summarise(content, result.finishReason),
    usage: toJson(result.usage) ?? {},
    latencyMs: Math.round(latencyMs),
    response: toJson(pickResponse(result.response)),
    warnings: (toJson(result.warnings) ?? []) as Json[],
    providerMetadata: toJson(result.providerMetadata),
  });
}

function streamRecord(
  model: LanguageModelV3,
  params: CallOptions,
  parts: StreamPart[],
  latencyMs: number,
  firstChunkMs: number | undefined,
): ModelCallRecord {
  const stream = parts.map((part) => toJson(part) ?? null);
  const content: Json[] = [];
  const open = new Map<string, { type: string; text: string }>();
  let finish: Extract<StreamPart, { type: 'finish' }> | undefined;
  let warnings: Json[] = [];
  let response: Json | undefined;
  for (const [i, part] of parts.entries()) {
    switch (part.type) {
      case 'text-start':
      case 'reasoning-start': {
        const entry = { type: part.type === 'text-start' ? 'text' : 'reasoning', text: '' };
        open.set(`${entry.type}:${part.id}`, entry);
        content.push(entry);
        break;
      }
      case 'text-delta':
      case 'reasoning-delta': {
        const entry = open.get(`${part.type === 'text-delta' ? 'text' : 'reasoning'}:${part.id}`);
        if (entry) entry.text += part.delta;
        break;
      }
      case 'tool-call':
      case 'tool-result':
      case 'tool-approval-request':
      case 'file':
      case 'source':
        content.push(stream[i] as Json);
        break;
      case 'stream-start':
        warnings = (toJson(part.warnings) ?? []) as Json[];
        break;
      case 'response-metadata': {
        const { type: _type, ...metadata } = part;
        response = toJson(metadata);
        break;
      }
      case 'finish':
        finish = part;
        break;
    }
  }
  return compact({
    ...baseRecord(model, params),
    mode: 'stream',
    output: summarise(content, finish?.finishReason ?? { unified: 'other', raw: undefined }),
    usage: toJson(finish?.usage) ?? {},
    latencyMs: Math.round(latencyMs),
    firstChunkMs: firstChunkMs === undefined ? undefined : Math.round(firstChunkMs),
    response,
    warnings,
    providerMetadata: toJson(finish?.providerMetadata),
    stream,
  });
}

function summarise(content: Json[], finishReason: GenerateResult['finishReason']): ModelCallRecord['output'] {
  const parts = content as Array<{ type: string; text?: string; toolCallId?: string; toolName?: string; input?: string }>;
  const textOf = (type: string) =>
    parts
      .filter((p) => p.type === type)
      .map((p) => p.text ?? '')
      .join('');
  const reasoning = textOf('reasoning');
  return {
    text: textOf('text'),
    ...(reasoning ? { reasoning } : {}),
    toolCalls: parts
      .filter((p) => p.type === 'tool-call')
      .map((p) => ({ toolCallId: p.toolCallId ?? '', toolName: p.toolName ?? '', input: parseInput(p.input) })),
    finishReason: finishReason.unified,
    ...(finishReason.raw !== undefined ? { rawFinishReason: finishReason.raw } : {}),
    content,
  };
}

function parseInput(input: string | undefined): Json {
  if (input === undefined) return null;
  try {
    return JSON.parse(input) as Json;
  } catch {
    return input;
  }
}

function pickResponse(response: GenerateResult['response']): { id?: string; modelId?: string; timestamp?: Date } | undefined {
  if (!response) return undefined;
  const { id, modelId, timestamp } = response;
  return { id, modelId, timestamp };
}

function compact(record: ModelCallRecord): ModelCallRecord {
  return Object.fromEntries(Object.entries(record).filter(([, v]) => v !== undefined)) as unknown as ModelCallRecord;
}

function withDate<T>(value: T): T {
  const timestamp = (value as { timestamp?: unknown } | undefined)?.timestamp;
  return typeof timestamp === 'string' ? { ...value, timestamp: new Date(timestamp) } : value;
}

function finishReasonOf(record: ModelCallRecord): GenerateResult['finishReason'] {
  return { unified: record.output.finishReason as GenerateResult['finishReason']['unified'], raw: record.output.rawFinishReason };
}

function replayGenerate(record: ModelCallRecord): GenerateResult {
  return {
    content: record.output.content as unknown as GenerateResult['content'],
    finishReason: finishReasonOf(record),
    usage: record.usage as unknown as GenerateResult['usage'],
    warnings: record.warnings as unknown as GenerateResult['warnings'],
    ...(record.response ? { response: withDate(record.response as GenerateResult['response']) } : {}),
    ...(record.providerMetadata ? { providerMetadata: record.providerMetadata as GenerateResult['providerMetadata'] } : {}),
  };
}

function replayStream(record: ModelCallRecord): StreamResult {
  const parts = (record.stream as unknown as StreamPart[] | undefined) ?? partsFromContent(record);
  return {
    stream: new ReadableStream<StreamPart>({
      start(controller) {
        for (const part of parts) controller.enqueue(part.type === 'response-metadata' ? withDate(part) : part);
        controller.close();
      },
    }),
  };
}

/** A call recorded by generateText, replayed into streamText (the code changed between the two). */
function partsFromContent(record: ModelCallRecord): StreamPart[] {
  const parts: StreamPart[] = [{ type: 'stream-start', warnings: record.warnings as never }];
  if (record.response) parts.push({ type: 'response-metadata', ...(record.response as object) } as StreamPart);
  for (const [i, part] of (record.output.content as Array<{ type: string; text?: string }>).entries()) {
    if (part.type === 'text' || part.type === 'reasoning') {
      const id = String(i);
      const kind = part.type as 'text' | 'reasoning';
      parts.push({ type: `${kind}-start`, id } as StreamPart);
      parts.push({ type: `${kind}-delta`, id, delta: part.text ?? '' } as StreamPart);
      parts.push({ type: `${kind}-end`, id } as StreamPart);
    } else parts.push(part as StreamPart);
  }
  parts.push({
    type: 'finish',
    finishReason: finishReasonOf(record),
    usage: record.usage as never,
    ...(record.providerMetadata ? { providerMetadata: record.providerMetadata as never } : {}),
  });
  return parts;
}
