/**
 * Two agents that react to each other through the log. A writer drafts a
 * text and asks for a review (the event `ReviewRequested`); a reaction starts
 * a reviewer for each request; the reviewer judges the draft and writes
 * `ReviewWritten`; a second reaction answers the writer with a signal. A draft
 * sent back is revised and reviewed again, up to three times.
 *
 * Neither agent knows the other: each only emits events and waits for
 * signals, and the reactions join them, exactly once per event even when a
 * process dies between acting and storing its position (the run ids and the
 * signal ids are derived from the event).
 *
 *   npx tsx examples/reviews.ts                                (in this repository)
 *   node node_modules/rewind-runtime/dist/examples/reviews.js    (from the installed package)
 *   rewind worker --workflows node_modules/rewind-runtime/dist/examples/reviews.js
 *                                                              (workers run the reactions and the runs)
 */
import { createRuntime, defineReaction, defineWorkflow, type EventStore, openStore, type Reaction, type Workflow } from 'rewind-runtime';

export interface Review {
  verdict: 'approved' | 'revise';
  notes: string;
}

/** A stand-in for the models: a writer that adds detail when told to, a reviewer that wants a length. */
export const models = {
  draft: (topic: string, round: number, notes?: string) =>
    round === 1 ? `${topic}.` : `${topic}: ${notes ?? ''} (revision ${round - 1}, with the detail asked for).`,
  review: (draft: string): Review =>
    draft.length >= 60 ? { verdict: 'approved', notes: 'clear and specific' } : { verdict: 'revise', notes: 'say why it matters' },
};

export const writer = defineWorkflow({
  name: 'writer',
  version: '1',
  initialState: { drafts: [] as string[] },
  apply: (state: { drafts: string[] }, event) =>
    event.type === 'ReviewRequested' ? { drafts: [...state.drafts, (event.data as { draft: string }).draft] } : state,
  run: async (ctx, topic: string) => {
    let notes: string | undefined;
    for (let round = 1; round <= 3; round++) {
      const draft = await ctx.step(`draft-${round}`, () => models.draft(topic, round, notes));
      await ctx.emit({ type: 'ReviewRequested', data: { draft, round } });
      const review = await ctx.waitFor<Review>('review', { timeoutMs: 60_000 });
      if (review.verdict === 'approved') return { text: draft, rounds: round };
      notes = review.notes;
    }
    return { text: undefined, rounds: 3 };
  },
});

export const reviewer = defineWorkflow({
  name: 'reviewer',
  version: '1',
  initialState: null,
  apply: (state: null) => state,
  run: async (ctx, input: { writer: string; draft: string }) => {
    const review = await ctx.step('judge', () => models.review(input.draft));
    await ctx.emit({ type: 'ReviewWritten', data: { writer: input.writer, ...review } });
    return review;
  },
});

export const workflows: Workflow[] = [writer, reviewer];

export const reactions: Reaction[] = [
  defineReaction({
    name: 'review-requests',
    on: { types: ['ReviewRequested'], streamPrefix: 'run-' },
    act: (event) => ({
      start: reviewer,
      input: { writer: event.streamId.slice('run-'.length), draft: (event.data as { draft: string }).draft },
    }),
    // A writer rolled back past its request no longer wants that review.
    undone: 'cancel',
  }),
  defineReaction({
    name: 'review-answers',
    on: { types: ['ReviewWritten'], streamPrefix: 'run-' },
    act: (event) => {
      const { writer: runId, verdict, notes } = event.data as { writer: string } & Review;
      return { signal: runId, name: 'review', payload: { verdict, notes } };
    },
  }),
];

export interface ReviewsDemoResult {
  runId: string;
  status: string;
  output: unknown;
  /** The reviewer runs the reactions started, in order. */
  reviewers: string[];
  text: string;
}

export async function runReviewsDemo(store: EventStore, options: { runId?: string } = {}): Promise<ReviewsDemoResult> {
  const runtime = createRuntime({ store, workflows, reactions });
  try {
    const runId = options.runId ?? `essay-${Date.now().toString(36)}`;
    await runtime.start(writer, 'Event sourcing for agents', { runId });
    const done = await runtime.wait(runId, { until: 'end', timeoutMs: 30_000 });
    await runtime.reactions.settled();
    const reviewers = (await store.listStreams({ prefix: 'run-review-requests:' })).map((s) => s.streamId.slice('run-'.length));
    const verdicts = await Promise.all(reviewers.map(async (id) => (await runtime.get(id)).output as Review));
    const text = [
      `writer ${runId}: ${done.status} after ${(done.output as { rounds: number }).rounds} rounds`,
      `  "${(done.output as { text: string }).text}"`,
      '',
      'reviews, each a run started by the reaction "review-requests":',
      ...verdicts.map((v, i) => `  ${i + 1}. ${v.verdict}: ${v.notes}`),
      '',
      'reactions:',
      ...(await runtime.reactions.status()).map((r) => `  ${r.name}: ${r.state} at position ${r.position}`),
    ].join('\n');
    return { runId, status: done.status, output: done.output, reviewers, text };
  } finally {
    await runtime.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log((await runReviewsDemo(await openStore('memory:'))).text);
}
