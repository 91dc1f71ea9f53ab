import { describe, expect, it } from 'vitest';
import { createRuntime, defineWorkflow, RunEvents } from '../../src/runtime/index.js';
import { countingReads, makeStore } from './helpers.js';

/** `filler` domain events, a checkpoint, two compensable steps, then a failure that rolls back to the checkpoint. */
function long(filler: number) {
  return defineWorkflow({
    name: `long-${filler}`,
    initialState: 0,
    apply: (s: number) => s + 1,
    run: async (ctx) => {
      for (let i = 0; i < filler; i++) await ctx.emit({ type: 'Tick', data: i });
      await ctx.checkpoint('here');
      await ctx.step('a', () => 1, { compensate: () => {} });
      await ctx.step('b', () => 2, { compensate: () => {} });
      if (ctx.rollbacks.length === 0)
        await ctx.step('fail', () => Promise.reject(new Error('x')), { onFailure: { rollbackTo: 'here', after: 'fail' } });
      return ctx.state;
    },
  });
}

async function readsFor(filler: number): Promise<{ live: number; lookup: number; state: unknown }> {
  const counting = countingReads(await makeStore());
  const runtime = createRuntime({ store: counting.store });
  // Live trigger: the worker restores the checkpoint from what it holds; the protocol reads nothing.
  counting.reset();
  const failed = await runtime.start(long(filler), null, { runId: `live-${filler}` });
  const live = counting.eventsRead();
  expect(failed.status).toBe('failed');

  // Explicit request: the target is found from the newest Checkpoint/RolledBack event, read backwards.
  const wf = long(filler);
  const done = await createRuntime({ store: counting.store }).start(wf, null, { runId: `ex-${filler}` });
  expect(done.status).toBe('failed');
  counting.reset();
  await createRuntime({ store: counting.store, workflows: [wf] })
    .rollback(`ex-${filler}`, { to: 'here', reason: 'measure', after: 'stop' })
    .catch(() => {});
  // Everything read beyond the one load of the stream (the collect replay that recovers the compensate closures).
  const read = counting.eventsRead();
  const requested = (await counting.store.read(`run-ex-${filler}`)).filter((e) => e.type === RunEvents.RollbackRequested).at(-1);
  return { live, lookup: read - (requested?.version ?? 0), state: failed.state };
}

describe('checkpoint restore cost', () => {
  it('restoring a checkpoint reads the same number of events at 10 and 10,000 events', { timeout: 120_000 }, async () => {
    const small = await readsFor(10);
    const large = await readsFor(10_000);
    // The live worker restores from what it holds: its only read is the stream's first event, when the run starts.
    expect(small.live).toBe(1);
    expect(large.live).toBe(1);
    expect(small.state).toBe(10);
    expect(large.state).toBe(10_000);
    // The last event, then one backward page (100) that holds the newest Checkpoint/RolledBack: bounded, whatever the length.
    expect(small.lookup).toBeLessThanOrEqual(101);
    expect(large.lookup).toBe(101);
  });

  it('state after a rollback comes from the checkpoint event, not a fold from the start', async () => {
    const store = await makeStore();
    const wf = long(50);
    await createRuntime({ store }).start(wf, null, { runId: 's' });
    const events = await store.read('run-s');
    const cp = events.find((e) => e.type === RunEvents.Checkpoint);
    expect(cp?.data).toMatchObject({ label: 'here', state: 50, index: { here: cp?.version } });
    const rolled = events.find((e) => e.type === RunEvents.RolledBack);
    expect(rolled?.data).toMatchObject({ targetVersion: cp?.version, index: { here: cp?.version } });
  });
});
