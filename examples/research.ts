/**
 * A research agent. Its model calls go to a small deterministic stand-in model
 * (no network), each one a journaled step with an output schema, so a replay
 * never calls the model again and reproduces the run exactly, and a model
 * answer that does not parse is a failed attempt that is retried.
 */
import { createHash } from 'node:crypto';
import { createRuntime, defineWorkflow, type EventStore, openStore, type RunInfo, type Runtime } from 'rewind-runtime';
import { z } from 'zod';

/** A stand-in for a language model: the same prompt always gets the same answer. */
export class StandInModel {
  calls = 0;
  /** Prompts whose first answer is malformed, to show a schema failure being retried. */
  readonly garbleOnce = new Set<string>();

  async complete(prompt: string): Promise<string> {
    this.calls++;
    if (this.garbleOnce.delete(prompt)) return '{"oops": ';
    const digest = createHash('sha256').update(prompt).digest('hex');
    const [kind, ...rest] = prompt.split('\n');
    const body = rest.join(' ');
    if (kind === 'PLAN') {
      const words = body.split(/\W+/).filter((w) => w.length > 3);
      return JSON.stringify({ questions: words.slice(0, 3).map((w) => `What is known about ${w.toLowerCase()}?`) });
    }
    if (kind === 'SUMMARISE') return JSON.stringify({ summary: `${body.slice(0, 60)} [${digest.slice(0, 6)}]` });
    return JSON.stringify({ answer: `Findings (${digest.slice(0, 8)}): ${body.slice(0, 120)}` });
  }
}

/** A tiny offline search index. */
export const CORPUS: Record<string, string> = {
  rollback: 'Rolling back restores a known-good checkpoint and compensates side effects newest first.',
  journal: 'A journal records each step result so replay returns it without running the step again.',
  agents: 'Agents call tools and models; each call is a side effect that should be recorded.',
};
export function search(question: string): string[] {
  const q = question.toLowerCase();
  return Object.entries(CORPUS)
    .filter(([k]) => q.includes(k.slice(0, 5)))
    .map(([, v]) => v);
}

const Plan = z.object({ questions: z.array(z.string()).min(1) });
const Summary = z.object({ summary: z.string() });
const Answer = z.object({ answer: z.string() });

interface Notes {
  questions: string[];
  notes: string[];
  answer?: string;
}

type NoteEvent =
  | { type: 'Planned'; data: { questions: string[] } }
  | { type: 'NoteTaken'; data: { note: string } }
  | { type: 'Answered'; data: { answer: string } };

export function researchWorkflow(model: StandInModel) {
  // A model call as a step: the schema check is the step's `output` option, so a garbled answer is a failed attempt, retried.
  const call =
    <T>(prompt: string, _schema: z.ZodType<T>) =>
    async () => {
      const text = await model.complete(prompt);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = { unparseable: text };
      }
      return parsed as T;
    };
  return defineWorkflow<{ topic: string }, Notes, NoteEvent, { reportId: string; answer: string }>({
    name: 'research',
    input: z.object({ topic: z.string().min(3) }),
    initialState: { questions: [], notes: [] },
    apply: (s, e) => {
      switch (e.type) {
        case 'Planned':
          return { ...s, questions: e.data.questions };
        case 'NoteTaken':
          return { ...s, notes: [...s.notes, e.data.note] };
        case 'Answered':
          return { ...s, answer: e.data.answer };
      }
    },
    invariants: { 'no more notes than questions': (s) => s.notes.length <= s.questions.length },
    run: async (ctx, { topic }) => {
      const reportId = await ctx.uuid();
      const modelRetry = { attempts: 3, initialDelayMs: 5 };
      const plan = await ctx.step('model:plan', call(`PLAN\n${topic}`, Plan), { output: Plan, retry: modelRetry });
      await ctx.emit({ type: 'Planned', data: { questions: plan.questions } });
      for (const [i, question] of plan.questions.entries()) {
        const hits = await ctx.step(`search:${i}`, () => search(question), {
          breaker: 'search',
          retry: { attempts: 2, initialDelayMs: 5 },
        });
        const { summary } = await ctx.step(`model:summarise:${i}`, call(`SUMMARISE\n${question}\n${hits.join(' ')}`, Summary), {
          output: Summary,
          retry: modelRetry,
        });
        await ctx.emit({ type: 'NoteTaken', data: { note: summary } });
      }
      await ctx.checkpoint('notes');
      const { answer } = await ctx.step('model:answer', call(`ANSWER\n${ctx.state.notes.join('\n')}`, Answer), {
        output: Answer,
        retry: modelRetry,
      });
      await ctx.emit({ type: 'Answered', data: { answer } });
      return { reportId, answer };
    },
  });
}

export async function runResearchDemo(
  store: EventStore,
  options: { runId?: string; topic?: string; model?: StandInModel; runtime?: Runtime } = {},
): Promise<{ info: RunInfo<Notes>; model: StandInModel }> {
  const model = options.model ?? new StandInModel();
  const runtime = options.runtime ?? createRuntime({ store });
  const info = await runtime.start(
    researchWorkflow(model),
    { topic: options.topic ?? 'journal rollback agents' },
    { runId: options.runId ?? `research-${Date.now()}` },
  );
  return { info: info as RunInfo<Notes>, model };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { info, model } = await runResearchDemo(await openStore('memory:'));
  console.log(info.status, info.output, `model calls: ${model.calls}`);
}
