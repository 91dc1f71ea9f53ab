import { generateText, streamText, tool } from 'ai';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { StepCompletedData, StepStartedData } from '../../src/runtime/events.js';
import { createRuntime, defineWorkflow, RunEvents } from '../../src/runtime/index.js';
import type { EventStore } from '../../src/store/types.js';
import { isModelCallRecord, journaledModel, type ModelCallRecord } from '../../src/surfaces/ai-sdk/index.js';
import { crashAfter, makeStore, SimulatedCrash } from '../runtime/helpers.js';
import { standInModel } from './stand-in.js';

interface Seen {
  plan: string;
  summary: string;
  usage: unknown;
}

/** plan (generateText) → checkpoint → book (a step) → summary (streamText). Each pass pushes what the code saw. */
function agent(stand: ReturnType<typeof standInModel>, passes: Seen[]) {
  return defineWorkflow({
    name: 'ai-agent',
    initialState: null,
    apply: (s: null) => s,
    run: async (ctx, input: { trip: string }) => {
      const model = journaledModel(ctx, stand.model);
      const plan = await generateText({ model, prompt: `plan ${input.trip}`, temperature: 0.2, maxOutputTokens: 100 });
      await ctx.checkpoint('planned');
      await ctx.step('book', () => `booked ${input.trip}`);
      const streamed = streamText({ model, system: 'be brief', prompt: `summarise: ${plan.text}` });
      const summary = await streamed.text;
      passes.push({ plan: plan.text, summary, usage: plan.usage });
      return { plan: plan.text, summary };
    },
  });
}

async function modelRecords(store: EventStore, runId: string): Promise<Array<{ name: string; record: ModelCallRecord }>> {
  const events = await store.read(`run-${runId}`);
  return events
    .filter((e) => e.type === RunEvents.StepCompleted && isModelCallRecord((e.data as StepCompletedData).result))
    .map((e) => ({ name: (e.data as StepCompletedData).name, record: (e.data as StepCompletedData).result as unknown as ModelCallRecord }));
}

describe('journaledModel', () => {
  it('records every call as a model:<id>:<n> step with the documented shape', async () => {
    const store = await makeStore();
    const stand = standInModel();
    const runtime = createRuntime({ store });
    const run = await runtime.start(agent(stand, []), { trip: 'Lisbon' }, { runId: 'shape' });
    expect(run.status).toBe('completed');
    expect(run.output).toEqual({ plan: 'answer #1 to: plan Lisbon', summary: 'streamed #2: summarise: answer #1 to: plan Lisbon' });

    const [generate, stream] = await modelRecords(store, 'shape');
    expect(generate?.name).toBe('model:stand-in:1');
    expect(generate?.record).toMatchObject({
      kind: 'model-call',
      mode: 'generate',
      provider: 'rewind-test',
      modelId: 'stand-in',
      prompt: [{ role: 'user', content: [{ type: 'text', text: 'plan Lisbon' }] }],
      params: { temperature: 0.2, maxOutputTokens: 100 },
      output: {
        text: 'answer #1 to: plan Lisbon',
        toolCalls: [],
        finishReason: 'stop',
        rawFinishReason: 'stop',
        content: [{ type: 'text', text: 'answer #1 to: plan Lisbon' }],
      },
      usage: { inputTokens: { total: 11 }, outputTokens: { total: 5 } },
      response: { id: 'resp-1', modelId: 'stand-in', timestamp: new Date(1_700_000_000_001).toISOString() },
      warnings: [],
    });
    expect(generate?.record.latencyMs).toBeGreaterThanOrEqual(0);
    expect(generate?.record.params).not.toHaveProperty('headers');

    expect(stream?.name).toBe('model:stand-in:2');
    expect(stream?.record).toMatchObject({
      mode: 'stream',
      prompt: [{ role: 'system', content: 'be brief' }, { role: 'user' }],
      output: { text: 'streamed #2: summarise: answer #1 to: plan Lisbon', finishReason: 'stop' },
    });
    expect(stream?.record.stream?.[0]).toEqual({ type: 'stream-start', warnings: [] });
    expect(stream?.record.stream?.at(-1)).toMatchObject({ type: 'finish', finishReason: { unified: 'stop' } });
    expect(typeof stream?.record.firstChunkMs).toBe('number');

    // The caller's stream ends only once the call is journaled, so nothing the code does next precedes the record.
    const types = (await store.read('run-shape')).map(
      (e) => `${e.type}${(e.data as { name?: string }).name ? ` ${(e.data as { name: string }).name}` : ''}`,
    );
    expect(types.slice(-2)).toEqual(['StepCompleted model:stand-in:2', 'RunCompleted']);
  });

  it('a checkpoint right after a streamed call comes after its record, so a rollback to it keeps the call', async () => {
    const store = await makeStore();
    const stand = standInModel();
    let attempt = 0;
    const wf = defineWorkflow({
      name: 'ai-stream-checkpoint',
      initialState: null,
      apply: (s: null) => s,
      onFailure: { rollbackTo: 'streamed' },
      run: async (ctx) => {
        const text = await streamText({ model: journaledModel(ctx, stand.model), prompt: 'go' }).text;
        await ctx.checkpoint('streamed');
        await ctx.step('flaky', () => {
          if (++attempt === 1) throw new Error('once');
          return 'ok';
        });
        return text;
      },
    });
    const run = await createRuntime({ store }).start(wf, null, { runId: 'order' });
    expect(run.status).toBe('completed');
    expect(run.output).toBe('streamed #1: go');
    expect(stand.calls()).toBe(1);
    const events = await store.read('run-order');
    const recorded = events.findIndex(
      (e) => e.type === RunEvents.StepCompleted && (e.data as StepCompletedData).name === 'model:stand-in:1',
    );
    const checkpoint = events.findIndex((e) => e.type === RunEvents.Checkpoint);
    expect(recorded).toBeGreaterThan(0);
    expect(checkpoint).toBeGreaterThan(recorded);
  });

  it('killed after the streamed call and resumed by another runtime: the model is not called again, the code sees the same answers', async () => {
    const store = await makeStore();
    const stand = standInModel();
    const passes: Seen[] = [];
    const dying = crashAfter(store, (e) => e.type === RunEvents.StepCompleted && (e.data as StepCompletedData).name === 'model:stand-in:2');
    await expect(createRuntime({ store: dying }).start(agent(stand, passes), { trip: 'Oslo' }, { runId: 'crash' })).rejects.toBeInstanceOf(
      SimulatedCrash,
    );
    expect(stand.calls()).toBe(2);

    const resumed = await createRuntime({ store, workflows: [agent(stand, passes)] }).resume('crash');
    expect(resumed.status).toBe('completed');
    expect(stand.calls()).toBe(2);
    // The first pass's stream ended with the failure to journal it: only the resumed pass got to the end.
    expect(passes).toHaveLength(1);
    expect(resumed.output).toEqual({ plan: 'answer #1 to: plan Oslo', summary: 'streamed #2: summarise: answer #1 to: plan Oslo' });
    // Usage too comes back as the SDK first reported it.
    const replayed = passes[0]?.usage as { inputTokens: number; outputTokens: number; totalTokens: number };
    expect(replayed).toMatchObject({ inputTokens: 9, outputTokens: 5, totalTokens: 14 });
  });

  it('killed mid-run and resumed: the completed call replays, the rest runs live', async () => {
    const store = await makeStore();
    const stand = standInModel();
    const passes: Seen[] = [];
    const dying = crashAfter(store, (e) => e.type === RunEvents.StepCompleted && (e.data as StepCompletedData).name === 'book');
    await expect(createRuntime({ store: dying }).start(agent(stand, passes), { trip: 'Rome' }, { runId: 'mid' })).rejects.toBeInstanceOf(
      SimulatedCrash,
    );
    expect(stand.calls()).toBe(1);
    const resumed = await createRuntime({ store, workflows: [agent(stand, passes)] }).resume('mid');
    expect(stand.calls()).toBe(2);
    expect(resumed.output).toEqual({ plan: 'answer #1 to: plan Rome', summary: 'streamed #2: summarise: answer #1 to: plan Rome' });
  });

  it('a fork replays the calls before its fork point and makes the later ones live', async () => {
    const store = await makeStore();
    const stand = standInModel();
    const runtime = createRuntime({ store });
    const passes: Seen[] = [];
    const original = await runtime.start(agent(stand, passes), { trip: 'Paris' }, { runId: 'orig' });
    expect(stand.calls()).toBe(2);

    const whole = await runtime.fork('orig', { runId: 'copy' });
    expect(stand.calls()).toBe(2);
    expect(whole.output).toEqual(original.output);

    const fork = await runtime.fork('orig', { at: { label: 'planned' }, runId: 'fork' });
    expect(stand.calls()).toBe(3);
    expect(fork.output).toEqual({ plan: 'answer #1 to: plan Paris', summary: 'streamed #3: summarise: answer #1 to: plan Paris' });
  });

  it('tool calls are recorded with parsed arguments and replayed as the SDK first saw them', async () => {
    const store = await makeStore();
    const stand = standInModel();
    const seen: unknown[] = [];
    const wf = defineWorkflow({
      name: 'ai-tools',
      initialState: null,
      apply: (s: null) => s,
      run: async (ctx) => {
        const model = journaledModel(ctx, stand.model, { name: 'planner' });
        const result = await generateText({
          model,
          prompt: 'weather in Paris?',
          tools: { weather: tool({ description: 'the weather in a city', inputSchema: z.object({ city: z.string() }) }) },
        });
        seen.push(result.toolCalls.map((c) => ({ id: c.toolCallId, name: c.toolName, input: c.input })));
        await ctx.step('after', () => 'done');
        return result.finishReason;
      },
    });
    // The crash comes once the last step started: the resume replays the model call from the journal.
    const dying = crashAfter(store, (e) => e.type === RunEvents.StepStarted && (e.data as StepStartedData).name === 'after');
    await expect(createRuntime({ store: dying }).start(wf, null, { runId: 'tools' })).rejects.toBeInstanceOf(SimulatedCrash);
    const resumed = await createRuntime({ store, workflows: [wf] }).resume('tools');
    expect(resumed.output).toBe('tool-calls');
    expect(stand.calls()).toBe(1);
    expect(seen[1]).toEqual(seen[0]);
    expect(seen[0]).toEqual([{ id: 'call-1', name: 'weather', input: { city: 'Paris' } }]);

    const [call] = await modelRecords(store, 'tools');
    expect(call?.name).toBe('model:planner:1');
    expect(call?.record.output).toMatchObject({
      toolCalls: [{ toolCallId: 'call-1', toolName: 'weather', input: { city: 'Paris' } }],
      finishReason: 'tool-calls',
    });
    expect(call?.record.params.tools).toEqual([
      expect.objectContaining({
        type: 'function',
        name: 'weather',
        description: 'the weather in a city',
        inputSchema: expect.objectContaining({ type: 'object' }),
      }),
    ]);
  });

  it('a call recorded by generateText replays into streamText after a code change', async () => {
    const store = await makeStore();
    const stand = standInModel();
    let stream = false;
    const wf = defineWorkflow({
      name: 'ai-switch',
      initialState: null,
      apply: (s: null) => s,
      run: async (ctx) => {
        const model = journaledModel(ctx, stand.model);
        return stream ? await streamText({ model, prompt: 'hello' }).text : (await generateText({ model, prompt: 'hello' })).text;
      },
    });
    const runtime = createRuntime({ store });
    const first = await runtime.start(wf, null, { runId: 'switch' });
    stream = true;
    const fork = await runtime.fork('switch', { runId: 'switch-2' });
    expect(stand.calls()).toBe(1);
    expect(fork.output).toBe(first.output);
  });

  it('a failed model call is a failed step, retried under the step options', async () => {
    const store = await makeStore();
    let attempts = 0;
    const stand = standInModel();
    const flaky = { ...stand.model, specificationVersion: 'v3' as const, provider: 'rewind-test', modelId: 'flaky', supportedUrls: {} };
    flaky.doGenerate = async (options) => {
      if (++attempts === 1) throw new Error('rate limited');
      return stand.model.doGenerate(options);
    };
    const wf = defineWorkflow({
      name: 'ai-retry',
      initialState: null,
      apply: (s: null) => s,
      run: async (ctx) =>
        (
          await generateText({
            model: journaledModel(ctx, flaky, { retry: { attempts: 2, initialDelayMs: 1 } }),
            prompt: 'hi',
            maxRetries: 0,
          })
        ).text,
    });
    const run = await createRuntime({ store }).start(wf, null, { runId: 'retry' });
    expect(run.output).toBe('answer #1 to: hi');
    const types = (await store.read('run-retry')).map((e) => e.type);
    expect(types).toEqual(['RunStarted', 'StepStarted', 'StepFailed', 'StepStarted', 'StepCompleted', 'RunCompleted']);
  });
});

describe('journaledModel, when the model fails mid-stream', () => {
  it('the step fails, the caller sees the error, the model is not asked again, nothing hangs', async () => {
    const store = await makeStore();
    const stand = standInModel();
    const broken = Object.assign(Object.create(Object.getPrototypeOf(stand.model)), stand.model);
    let streams = 0;
    broken.doStream = async () => {
      streams++;
      return {
        stream: new ReadableStream({
          start(controller) {
            controller.enqueue({ type: 'text-start', id: 't' });
            controller.enqueue({ type: 'text-delta', id: 't', delta: 'half an ans' });
            controller.error(new Error('connection reset'));
          },
        }),
      };
    };
    const wf = defineWorkflow({
      name: 'ai-broken-stream',
      initialState: null,
      apply: (s: null) => s,
      run: async (ctx) => {
        const model = journaledModel(ctx, broken, { retry: { attempts: 3, initialDelayMs: 1 } });
        const result = streamText({ model, prompt: 'hi', onError: () => {} });
        return await result.text;
      },
    });
    const run = await createRuntime({ store }).start(wf, null, { runId: 'broken' });
    expect(run.status).toBe('failed');
    const failed = (await store.read('run-broken')).filter((e) => e.type === RunEvents.StepFailed);
    expect(failed.at(-1)?.data).toMatchObject({ name: 'model:stand-in:1', error: { message: 'connection reset' }, final: true });
    // Retries were allowed, but the caller had the failed stream: the model was asked once.
    expect(streams).toBe(1);
  });
});
