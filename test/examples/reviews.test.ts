import { describe, expect, it } from 'vitest';
import { runReviewsDemo } from '../../examples/reviews.js';
import { makeStore } from '../runtime/helpers.js';

describe('examples/reviews', () => {
  it('the writer is sent back once, revises, and is approved: two reviewers, each started once by the reaction', async () => {
    const store = await makeStore();
    const { status, output, reviewers, text } = await runReviewsDemo(store, { runId: 'essay-1' });
    expect(status).toBe('completed');
    expect(output).toEqual({
      text: 'Event sourcing for agents: say why it matters (revision 1, with the detail asked for).',
      rounds: 2,
    });
    expect(reviewers).toHaveLength(2);
    expect(text.split('\n').slice(0, 6)).toEqual([
      'writer essay-1: completed after 2 rounds',
      '  "Event sourcing for agents: say why it matters (revision 1, with the detail asked for)."',
      '',
      'reviews, each a run started by the reaction "review-requests":',
      '  1. revise: say why it matters',
      '  2. approved: clear and specific',
    ]);
    // Each review request is one reviewer; each review one signal to the writer.
    const requests = (await store.read('run-essay-1')).filter((e) => e.type === 'ReviewRequested');
    expect(reviewers).toEqual(requests.map((e) => `review-requests:${e.id}`));
    expect((await store.read('signals-essay-1')).map((e) => e.metadata?.actor)).toEqual([
      'reaction:review-answers',
      'reaction:review-answers',
    ]);
    expect((await store.verify()).ok).toBe(true);
  });
});
