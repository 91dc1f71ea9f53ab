import { MockLanguageModelV3, simulateReadableStream } from 'ai/test';

type Prompt = Array<{ role: string; content: unknown }>;

/** The last user message's text: what the stand-in answers. */
function lastUserText(prompt: Prompt): string {
  const user = [...prompt].reverse().find((m) => m.role === 'user');
  const content = user?.content;
  if (typeof content === 'string') return content;
  return ((content as Array<{ type: string; text?: string }>) ?? []).map((p) => p.text ?? '').join('');
}

const usage = (input: number, output: number) => ({
  inputTokens: { total: input, noCache: input, cacheRead: 0, cacheWrite: 0 },
  outputTokens: { total: output, text: output, reasoning: 0 },
});

/**
 * A deterministic model whose answers carry a call counter: a call answered
 * again by the model instead of the journal would show in the text.
 * A prompt starting with "weather" gets a tool call instead of text.
 */
export function standInModel(modelId = 'stand-in') {
  let calls = 0;
  const model = new MockLanguageModelV3({
    provider: 'rewind-test',
    modelId,
    doGenerate: async (options) => {
      calls++;
      const asked = lastUserText(options.prompt as Prompt);
      if (asked.startsWith('weather')) {
        return {
          content: [{ type: 'tool-call', toolCallId: `call-${calls}`, toolName: 'weather', input: JSON.stringify({ city: 'Paris' }) }],
          finishReason: { unified: 'tool-calls', raw: 'tool_calls' },
          usage: usage(asked.length, 7),
          warnings: [],
          response: { id: `resp-${calls}`, modelId, timestamp: new Date(1_700_000_000_000 + calls) },
        };
      }
      return {
        content: [{ type: 'text', text: `answer #${calls} to: ${asked}` }],
        finishReason: { unified: 'stop', raw: 'stop' },
        usage: usage(asked.length, 5),
        warnings: [],
        response: { id: `resp-${calls}`, modelId, timestamp: new Date(1_700_000_000_000 + calls) },
      };
    },
    doStream: async (options) => {
      calls++;
      const asked = lastUserText(options.prompt as Prompt);
      const words = `streamed #${calls}: ${asked}`.split(' ');
      return {
        stream: simulateReadableStream({
          chunkDelayInMs: null,
          chunks: [
            { type: 'stream-start' as const, warnings: [] },
            { type: 'response-metadata' as const, id: `resp-${calls}`, modelId, timestamp: new Date(1_700_000_000_000 + calls) },
            { type: 'text-start' as const, id: 't1' },
            ...words.map((w, i) => ({ type: 'text-delta' as const, id: 't1', delta: i === 0 ? w : ` ${w}` })),
            { type: 'text-end' as const, id: 't1' },
            { type: 'finish' as const, finishReason: { unified: 'stop' as const, raw: 'stop' }, usage: usage(asked.length, words.length) },
          ],
        }),
      };
    },
  });
  return { model, calls: () => calls };
}
