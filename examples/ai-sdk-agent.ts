/**
 * An AI SDK agent whose model calls are journaled by Rewind: a crash costs
 * no second model call, and a fork replays what the model said.
 *
 *   npx tsx examples/ai-sdk-agent.ts [sqlite:./agent.db]
 *
 * The model is a deterministic stand-in (no network, no key): it asks for the
 * `book` tool, then streams a confirmation. Swap in any provider's model
 * (openai('gpt-4o'), anthropic(...)) and nothing else changes.
 */
import { generateText, stepCountIs, streamText, tool } from 'ai';
import { MockLanguageModelV3, simulateReadableStream } from 'ai/test';
import { createRuntime, defineWorkflow, openStore, RunEvents, type StepCompletedData } from 'rewind-runtime';
import { isModelCallRecord, journaledModel } from 'rewind-runtime/ai-sdk';
import { z } from 'zod';

let modelCalls = 0;
const usage = { inputTokens: { total: 20, noCache: 20, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 8, text: 8, reasoning: 0 } };
const standIn = new MockLanguageModelV3({
  provider: 'example',
  modelId: 'travel-planner',
  doGenerate: async ({ prompt }) => {
    modelCalls++;
    const booked = prompt.some((m) => m.role === 'tool');
    return booked
      ? {
          content: [{ type: 'text', text: 'Your room at Casa Azul is booked.' }],
          finishReason: { unified: 'stop', raw: 'stop' },
          usage,
          warnings: [],
        }
      : {
          content: [
            { type: 'tool-call', toolCallId: 'call-1', toolName: 'book', input: JSON.stringify({ hotel: 'Casa Azul', nights: 3 }) },
          ],
          finishReason: { unified: 'tool-calls', raw: 'tool_calls' },
          usage,
          warnings: [],
        };
  },
  doStream: async () => {
    modelCalls++;
    const words = ['Have', ' a', ' lovely', ' trip!'];
    return {
      stream: simulateReadableStream({
        chunkDelayInMs: 20,
        chunks: [
          { type: 'text-start' as const, id: 't' },
          ...words.map((delta) => ({ type: 'text-delta' as const, id: 't', delta })),
          { type: 'text-end' as const, id: 't' },
          { type: 'finish' as const, finishReason: { unified: 'stop' as const, raw: 'stop' }, usage },
        ],
      }),
    };
  },
});

// The first process "crashes" while paying: the step waits until its runtime is closed under it.
let crashNextPayment = true;
let paying: () => void = () => {};
const payingStarted = new Promise<void>((resolve) => {
  paying = resolve;
});

const agent = defineWorkflow({
  name: 'ai-travel-agent',
  initialState: null,
  apply: (s: null) => s,
  run: async (ctx, input: { request: string }) => {
    const model = journaledModel(ctx, standIn);
    // The model's tool loop: each round trip is a journaled model call, the tool's effect a journaled step.
    const plan = await generateText({
      model,
      prompt: input.request,
      stopWhen: stepCountIs(3),
      tools: {
        book: tool({
          description: 'book a hotel room',
          inputSchema: z.object({ hotel: z.string(), nights: z.number() }),
          execute: ({ hotel, nights }) =>
            ctx.step('book', () => ({ reservation: `${hotel}-${nights}n` }), {
              compensate: (r) => console.log(`  (cancelled ${r.reservation})`),
            }),
        }),
      },
    });
    await ctx.checkpoint('booked');
    await ctx.step('pay', async ({ signal }) => {
      if (crashNextPayment) {
        paying();
        await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
      }
      return 'paid';
    });
    const goodbye = streamText({ model, prompt: `Say goodbye after: ${plan.text}` });
    let streamed = '';
    for await (const delta of goodbye.textStream) streamed += delta;
    return { plan: plan.text, goodbye: streamed };
  },
});

const url = process.argv[2] ?? 'memory:';
const store = await openStore(url);
const runId = `trip-${Date.now()}`;

console.log('1. The agent runs; its process dies while paying.');
const first = createRuntime({ store, workflows: [agent] });
await first.start(agent, { request: 'Book me 3 nights in Lisbon' }, { runId, detach: true });
await payingStarted;
await first.close();
console.log(`   model calls so far: ${modelCalls}`);

console.log('2. Another process resumes the run: the model is not asked again for what it already answered.');
crashNextPayment = false;
const second = createRuntime({ store, workflows: [agent] });
const done = await second.resume(runId);
console.log(`   ${done.status}: ${JSON.stringify(done.output)}`);
console.log(`   model calls: ${modelCalls} (2 before the crash, 1 after it)`);

console.log('3. Every model call is in the log, as the debugger shows it:');
for (const event of await store.read(`run-${runId}`)) {
  const data = event.data as StepCompletedData;
  if (event.type !== RunEvents.StepCompleted || !isModelCallRecord(data.result)) continue;
  const call = data.result;
  const said = call.output.toolCalls.length ? `tool calls ${JSON.stringify(call.output.toolCalls)}` : JSON.stringify(call.output.text);
  console.log(`   ${data.name} [${call.mode}] ${said} · finish ${call.output.finishReason} · ${call.latencyMs} ms`);
}

console.log('4. A fork from the booking replays the model calls before it and asks the model only for the goodbye.');
const before = modelCalls;
const fork = await second.fork(runId, { at: { label: 'booked' } });
console.log(`   fork ${fork.status}: ${JSON.stringify(fork.output)} · new model calls: ${modelCalls - before}`);

// The booking is the original's effect (a fork shares what came before its fork point): the original undoes it.
console.log('5. Roll the original back to the start: the booking is compensated.');
await second.rollback(runId, { to: 'start', reason: 'the customer changed their mind' });
console.log(`   the run is ${(await second.get(runId)).status}`);
await second.close();
await store.close();
