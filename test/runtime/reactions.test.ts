import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { EventEnvelope } from '../../src/events/envelope.js';
import {
  createRuntime,
  defineReaction,
  defineWorkflow,
  type ReactionEvent,
  ReactionEvents,
  type Runtime,
} from '../../src/runtime/index.js';
import type { EventStore } from '../../src/store/types.js';
import { makeStore } from './helpers.js';

// Reactions: agents that react to each other's events, exactly once per event in effect.

const writer = defineWorkflow({
  name: 'writer',
  initialState: null,
  apply: (s: null) => s,
  run: async (ctx, input: { draft: string }) => {
    await ctx.emit({ type: 'ReviewRequested', data: { draft: input.draft } });
    const review = await ctx.waitFor<{ verdict: string }>('review');
    return { draft: input.draft, verdict: review.verdict };
  },
});

const reviewer = defineWorkflow({
  name: 'reviewer',
  initialState: null,
  apply: (s: null) => s,
  input: z.object({ writer: z.string(), draft: z.string() }),
  run: async (ctx, input: { writer: string; draft: string }) => {
    const verdict = await ctx.step('judge', async () => (input.draft.length > 3 ? 'approved' : 'too short'));
    await ctx.emit({ type: 'ReviewWritten', data: { writer: input.writer, verdict } });
    return verdict;
  },
});

const startReviewer = defineReaction({
  name: 'start-reviewer',
  on: { types: ['ReviewRequested'], streamPrefix: 'run-' },
  act: (e) => ({ start: 'reviewer', input: { writer: e.streamId.slice('run-'.length), draft: (e.data as { draft: string }).draft } }),
});

const answerWriter = defineReaction({
  name: 'answer-writer',
  on: { types: ['ReviewWritten'] },
  act: (e) => {
    const { writer, verdict } = e.data as { writer: string; verdict: string };
    return { signal: writer, name: 'review', payload: { verdict } };
  },
});

async function until<T>(look: () => Promise<T>, done: (value: T) => boolean, ms = 5_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await look();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting; last: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function runsOf(store: EventStore, prefix: string) {
  return store.listStreams({ prefix: `run-${prefix}` });
}

describe('reactions', () => {
  it('given a writer that asks for a review, when the reactions run, then one reviewer is started per request and its answer reaches the writer', async () => {
    const store = await makeStore();
    const seen: ReactionEvent[] = [];
    const runtime = createRuntime({
      store,
      workflows: [writer, reviewer],
      reactions: [startReviewer, answerWriter],
      onReaction: (e) => seen.push(e),
    });
    const started = await runtime.start(writer, { draft: 'a long draft' }, { runId: 'w1' });
    expect(started.status).toBe('waiting');
    const done = await until(
      () => runtime.get('w1'),
      (info) => info.status === 'completed',
    );
    expect(done.output).toEqual({ draft: 'a long draft', verdict: 'approved' });
    const reviewers = await runsOf(store, 'start-reviewer:');
    expect(reviewers).toHaveLength(1);
    const requested = (await store.read('run-w1')).find((e) => e.type === 'ReviewRequested') as EventEnvelope;
    expect(reviewers[0]?.streamId).toBe(`run-start-reviewer:${requested.id}`);
    // The signal is recorded as sent by the reaction, under its key.
    const [signal] = await store.read('signals-w1');
    expect(signal?.metadata).toMatchObject({ actor: 'reaction:answer-writer' });
    expect(seen.filter((e) => e.type === 'acted').map((e) => e.reaction)).toEqual(['start-reviewer', 'answer-writer']);
    await runtime.close();
  });

  it('given an event already acted on, when a second process runs the same reaction from position 0 (a crash before its position was stored), then nothing is done twice', async () => {
    const store = await makeStore();
    const first = createRuntime({ store, workflows: [writer, reviewer], reactions: [startReviewer, answerWriter] });
    await first.start(writer, { draft: 'a long draft' }, { runId: 'w1' });
    await until(
      () => first.get('w1'),
      (i) => i.status === 'completed',
    );
    await first.reactions.settled();
    await first.close();
    const before = await store.headPosition();
    // Lose the stored positions: every event is delivered again.
    await store.checkpoint('reaction:start-reviewer', 0);
    await store.checkpoint('reaction:answer-writer', 0);
    const second = createRuntime({ store, workflows: [writer, reviewer], reactions: [startReviewer, answerWriter] });
    await second.reactions.settled();
    await second.close();
    expect(await runsOf(store, 'start-reviewer:')).toHaveLength(1);
    expect(await store.read('signals-w1')).toHaveLength(1);
    // Only the positions moved: no event was appended to any run or mailbox.
    expect(await store.headPosition()).toBe(before);
  });

  it('given an event a rollback undid before the reaction reached it, then the reaction does not act on it', async () => {
    const store = await makeStore();
    await store.append('order-1', [{ type: 'Placed', data: { n: 1 } }]);
    await store.append('order-1', [{ type: 'Placed', data: { n: 2 } }]);
    await store.append('order-1', [{ type: 'RolledBack', data: { targetVersion: 1 } }]);
    const acted: number[] = [];
    const runtime = createRuntime({
      store,
      reactions: [defineReaction({ name: 'placed', on: { types: ['Placed'] }, act: (e) => void acted.push((e.data as { n: number }).n) })],
    });
    await runtime.reactions.settled();
    expect(acted).toEqual([1]);
    await runtime.close();
  });

  it("given undone: 'cancel', when an event the reaction acted on is rolled back, then the run it started is cancelled", async () => {
    const store = await makeStore();
    const waiter = defineWorkflow({
      name: 'waiter',
      initialState: null,
      apply: (s: null) => s,
      run: async (ctx) => ctx.waitFor('never'),
    });
    const runtime = createRuntime({
      store,
      workflows: [waiter],
      reactions: [defineReaction({ name: 'follow', on: { types: ['Placed'] }, act: () => ({ start: 'waiter' }), undone: 'cancel' })],
    });
    const { events } = await store.append('order-1', [{ type: 'Placed', data: {} }]);
    const placed = events[0] as EventEnvelope;
    const runId = `follow:${placed.id}`;
    await until(
      () => runtime.get(runId).catch(() => undefined),
      (i) => i?.status === 'waiting',
    );
    await store.append('order-1', [{ type: 'RolledBack', data: { targetVersion: 0 } }]);
    const info = await until(
      () => runtime.get(runId),
      (i) => i.status === 'cancelled',
    );
    expect(info.status).toBe('cancelled');
    await runtime.close();
  });

  it('given signal-with-start, when the run does not exist, then it is started and takes the signal', async () => {
    const store = await makeStore();
    const runtime = createRuntime({
      store,
      workflows: [writer],
      reactions: [
        defineReaction({
          name: 'kick',
          on: { types: ['Kick'] },
          act: () => ({ signal: 'w9', name: 'review', payload: { verdict: 'fine' }, start: { workflow: writer, input: { draft: 'x' } } }),
        }),
      ],
    });
    await store.append('k', [{ type: 'Kick', data: null }]);
    const info = await until(
      () => runtime.get('w9').catch(() => undefined),
      (i) => i?.status === 'completed',
    );
    expect(info?.output).toEqual({ draft: 'x', verdict: 'fine' });
    await runtime.close();
  });

  it('given a signal to a run that does not exist yet (no start), then it waits in the mailbox and the run started later takes it', async () => {
    const store = await makeStore();
    const runtime = createRuntime({
      store,
      workflows: [writer],
      reactions: [
        defineReaction({
          name: 'early',
          on: { types: ['Verdict'] },
          act: () => ({ signal: 'w7', name: 'review', payload: { verdict: 'early bird' } }),
        }),
      ],
    });
    await store.append('k', [{ type: 'Verdict', data: null }]);
    await runtime.reactions.settled();
    expect(await store.streamVersion('run-w7')).toBe(0);
    const info = await runtime.start(writer, { draft: 'y' }, { runId: 'w7' });
    expect(info).toMatchObject({ status: 'completed', output: { draft: 'y', verdict: 'early bird' } });
    await runtime.close();
  });

  it('given an act that keeps throwing, then the reaction parks on that event, says why, and goes on once an operator skips it', async () => {
    const store = await makeStore();
    const seen: ReactionEvent[] = [];
    let failing = true;
    const acted: string[] = [];
    const runtime = createRuntime({
      store,
      onReaction: (e) => seen.push(e),
      reactions: [
        defineReaction({
          name: 'fragile',
          on: { types: ['Job'] },
          retry: { attempts: 2, initialDelayMs: 1 },
          act: (e) => {
            const { id } = e.data as { id: string };
            if (id === 'bad' && failing) throw new Error('the mail server said no');
            acted.push(id);
          },
        }),
      ],
    });
    await store.append('jobs', [{ type: 'Job', data: { id: 'a' } }]);
    const { events } = await store.append('jobs', [{ type: 'Job', data: { id: 'bad' } }]);
    await store.append('jobs', [{ type: 'Job', data: { id: 'c' } }]);
    const parked = await until(
      () => runtime.reactions.status(),
      (s) => s[0]?.state === 'parked',
    );
    expect(parked[0]).toMatchObject({
      name: 'fragile',
      state: 'parked',
      position: (events[0] as EventEnvelope).position - 1,
      parked: {
        position: (events[0] as EventEnvelope).position,
        eventId: (events[0] as EventEnvelope).id,
        type: 'Job',
        attempts: 2,
        error: { message: 'the mail server said no' },
      },
    });
    expect(acted).toEqual(['a']);
    expect(seen.filter((e) => e.type === 'retrying')).toHaveLength(1);
    // Nothing to retry once it is not parked; a typed error, nothing written.
    await runtime.reactions.skip('fragile', { actor: 'ops', reason: 'bad job' });
    await runtime.reactions.settled();
    expect(acted).toEqual(['a', 'c']);
    await expect(runtime.reactions.retry('fragile')).rejects.toMatchObject({ code: 'REACTION_STATE' });
    const control = await store.read('$rewind-reaction-fragile');
    expect(control.map((e) => e.type)).toEqual([
      ReactionEvents.ReactionStarted,
      ReactionEvents.ReactionParked,
      ReactionEvents.ReactionSkipped,
    ]);
    expect(control[2]?.data).toMatchObject({ actor: 'ops', reason: 'bad job' });
    failing = false;
    await runtime.close();
  });

  it('given a parked reaction, when an operator retries after the cause is fixed, then the event is acted on', async () => {
    const store = await makeStore();
    let up = false;
    const acted: string[] = [];
    const runtime = createRuntime({
      store,
      reactions: [
        defineReaction({
          name: 'needs-service',
          on: { types: ['Job'] },
          retry: { attempts: 1, initialDelayMs: 1 },
          act: (e) => {
            if (!up) throw new Error('service down');
            acted.push((e.data as { id: string }).id);
          },
        }),
      ],
    });
    await store.append('jobs', [{ type: 'Job', data: { id: 'a' } }]);
    await until(
      () => runtime.reactions.status(),
      (s) => s[0]?.state === 'parked',
    );
    up = true;
    await runtime.reactions.retry('needs-service');
    await runtime.reactions.settled();
    expect(acted).toEqual(['a']);
    await runtime.close();
  });

  it.each([
    ['a workflow that is not registered', () => ({ start: 'nope' }), 'UNKNOWN_WORKFLOW'],
    ['input the workflow refuses', () => ({ start: 'reviewer', input: { writer: 7 } }), 'VALIDATION'],
    ['an answer that is no action', () => ({ launch: 'reviewer' }) as never, 'VALIDATION'],
  ])('given %s, then the reaction parks at once with that error, and other reactions go on', async (_what, act, code) => {
    const store = await makeStore();
    const other: string[] = [];
    const runtime = createRuntime({
      store,
      workflows: [reviewer],
      reactions: [
        defineReaction({ name: 'broken', on: { types: ['Go'] }, act, retry: { attempts: 5, initialDelayMs: 10_000 } }),
        defineReaction({ name: 'fine', on: { types: ['Go'] }, act: (e) => void other.push(e.id) }),
      ],
    });
    await store.append('s', [{ type: 'Go', data: null }]);
    const statuses = await until(
      () => runtime.reactions.status(),
      (s) => s.find((r) => r.name === 'broken')?.state === 'parked',
    );
    expect(statuses.find((r) => r.name === 'broken')?.parked).toMatchObject({ attempts: 1, error: { code } });
    await runtime.reactions.settled();
    expect(other).toHaveLength(1);
    await runtime.close();
  });

  it('refuses a reaction that is not valid, saying what is wrong, before anything runs', () => {
    expect(() => defineReaction({ name: 'has space', on: { types: [] }, act: 1 as never })).toThrowError(
      expect.objectContaining({
        code: 'VALIDATION',
        issues: [
          'name must be 1-80 letters, digits, _ . or -',
          'on.types must be a non-empty array of event types',
          'act must be a function of the event answering what to do',
        ],
      }),
    );
    const store = { append: () => {} } as never;
    const r = defineReaction({ name: 'x', on: {}, act: () => undefined });
    expect(() => createRuntime({ store, reactions: [r, r] })).toThrowError(/two reactions are named "x"/);
  });

  it("given from: 'now', the reaction leaves the events before its first run alone", async () => {
    const store = await makeStore();
    await store.append('s', [{ type: 'Go', data: { n: 1 } }]);
    const acted: number[] = [];
    const runtime = createRuntime({
      store,
      reactions: [
        defineReaction({ name: 'fresh', from: 'now', on: { types: ['Go'] }, act: (e) => void acted.push((e.data as { n: number }).n) }),
      ],
    });
    await until(
      () => runtime.reactions.status(),
      (s) => s.length === 1,
    );
    await store.append('s', [{ type: 'Go', data: { n: 2 } }]);
    await runtime.reactions.settled();
    expect(acted).toEqual([2]);
    await runtime.close();
  });

  it('given events it does not react to, then its stored position still reaches the head once the log is quiet (what other processes see)', async () => {
    const store = await makeStore();
    const runtime = createRuntime({ store, reactions: [defineReaction({ name: 'picky', on: { types: ['Rare'] }, act: () => undefined })] });
    await until(
      () => runtime.reactions.status(),
      (s) => s.length === 1,
    );
    for (let i = 0; i < 5; i++) await store.append('noise', [{ type: 'Noise', data: { i } }]);
    const head = await store.headPosition();
    const [status] = await until(
      () => runtime.reactions.status(),
      (s) => s[0]?.position === head,
    );
    expect(status).toMatchObject({ name: 'picky', state: 'ok', position: head, head, lagEvents: 0 });
    await runtime.close();
  });

  it('keeps the order of the events of one stream while acting on several streams at once', async () => {
    const store = await makeStore();
    const order = new Map<string, number[]>();
    const runtime: Runtime = createRuntime({
      store,
      reactions: [
        defineReaction({
          name: 'ordered',
          concurrency: 4,
          on: { types: ['N'] },
          act: async (e) => {
            await new Promise((r) => setTimeout(r, Math.random() * 3));
            order.set(e.streamId, [...(order.get(e.streamId) ?? []), (e.data as { n: number }).n]);
          },
        }),
      ],
    });
    for (let n = 0; n < 10; n++)
      await store.appendMany(['a', 'b', 'c'].map((s) => ({ streamId: s, events: [{ type: 'N', data: { n } }] })));
    await runtime.reactions.settled();
    const tenInOrder = Array.from({ length: 10 }, (_, i) => i);
    expect(Object.fromEntries(order)).toEqual({ a: tenInOrder, b: tenInOrder, c: tenInOrder });
    await runtime.close();
  });
});
