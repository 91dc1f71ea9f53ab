import { describe, expect, it } from 'vitest';
import { createRuntime, defineWorkflow, RunEvents } from '../../src/runtime/index.js';
import { effectiveEvents, foldState, rollbacksOf } from '../../src/runtime/journal.js';
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
  // The live rollback already undid the steps after "here": nothing is left to compensate, so no closure is needed
  // and the run is never loaded whole.
  return { live, lookup: counting.eventsRead(), state: failed.state };
}

describe('checkpoint restore cost', () => {
  it('restoring a checkpoint reads the same number of events at 10 and 10,000 events', { timeout: 120_000 }, async () => {
    const small = await readsFor(10);
    const large = await readsFor(10_000);
    // The live worker restores from what it holds: it reads nothing (a run it creates is written with its first step).
    expect(small.live).toBe(0);
    expect(large.live).toBe(0);
    expect(small.state).toBe(10);
    expect(large.state).toBe(10_000);
    // Bounded, whatever the length: the request's lookup (the last event, then one backward page of 100 that holds the
    // newest Checkpoint/RolledBack), then RunStarted and the events after the target.
    expect(large.lookup).toBeLessThan(200);
    expect(small.lookup).toBeLessThanOrEqual(large.lookup);
  });

  it('an explicit rollback from a fresh runtime reads the same events at 100 and 10,000 with declared compensations', {
    timeout: 120_000,
  }, async () => {
    const measure = async (filler: number) => {
      const undone: string[] = [];
      const wf = defineWorkflow({
        name: `declared-${filler}`,
        initialState: 0,
        apply: (s: number) => s + 1,
        compensations: {
          book: (r: string, { stepKey }) => void undone.push(`cancel ${r} ${stepKey}`),
          pay: (r: number) => void undone.push(`refund ${r}`),
        },
        verifications: { pay: () => undone.length === 2 },
        run: async (ctx) => {
          for (let i = 0; i < filler; i++) await ctx.emit({ type: 'Tick', data: i });
          await ctx.checkpoint('here');
          await ctx.step('book', () => 'room');
          await ctx.emit({ type: 'Tick', data: -1 });
          await ctx.step('pay', () => 42);
          await ctx.step('note', () => 'no undo');
          return ctx.state;
        },
      });
      const counting = countingReads(await makeStore());
      const done = await createRuntime({ store: counting.store }).start(wf, null, { runId: `d-${filler}` });
      expect(done).toMatchObject({ status: 'completed', state: filler + 1 });
      // A fresh runtime: no closure in memory, so without the declared ones only a replay of run() would find them.
      const fresh = createRuntime({ store: counting.store, workflows: [wf] });
      counting.reset();
      const info = await fresh.rollback(`d-${filler}`, { to: 'latest', reason: 'measure' });
      const rollbackReads = counting.eventsRead();
      counting.reset();
      const got = await fresh.get(`d-${filler}`);
      const getReads = counting.eventsRead();
      expect(info).toMatchObject({ status: 'rolled_back', state: filler, rollbacks: [{ label: 'here', reason: 'measure' }] });
      expect(got).toEqual(info);
      expect(undone).toEqual([`refund 42`, `cancel room d-${filler}:${filler + 1}:book`]);
      const types = (await counting.store.read(`run-d-${filler}`)).map((e) => e.type).slice(-7);
      expect(types).toEqual([
        'RollbackRequested',
        'CompensationStarted',
        'CompensationCompleted',
        'CompensationStarted',
        'CompensationCompleted',
        'Verified',
        'RolledBack',
      ]);
      return { rollbackReads, getReads };
    };
    const small = await measure(100);
    const large = await measure(10_000);
    // The same but for the run's watch: a look at its tail (one event) more or less, by the timing of the drive.
    expect(Math.abs(large.rollbackReads - small.rollbackReads)).toBeLessThanOrEqual(2);
    expect(large.getReads).toBe(small.getReads);
    // Far below the run's length: the request's lookup (101), then RunStarted, the request, and the events after the target.
    expect(large.rollbackReads).toBeLessThan(200);
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

  it('get() from the tail agrees with a fold of the whole stream, across nested and live rollbacks', async () => {
    const store = await makeStore();
    const wf = defineWorkflow({
      name: 'nested',
      initialState: 0,
      apply: (s: number, e: { type: string; data: number }) => s + e.data,
      compensations: { s: () => {} },
      run: async (ctx) => {
        await ctx.emit({ type: 'Add', data: 1 });
        await ctx.checkpoint('a');
        await ctx.step('s', () => 1);
        await ctx.emit({ type: 'Add', data: 10 });
        await ctx.checkpoint('b');
        await ctx.step('s', () => 2);
        await ctx.emit({ type: 'Add', data: 100 });
        // One live rollback to "b" the first time through.
        await ctx.step('f', () => (ctx.rollbacks.length === 0 ? Promise.reject(new Error('once')) : 'ok'), {
          onFailure: { rollbackTo: 'b', after: 'retry' },
        });
        await ctx.checkpoint('c');
        await ctx.emit({ type: 'Add', data: 1000 });
        return ctx.state;
      },
    });
    const runtime = createRuntime({ store, workflows: [wf] });
    const check = async () => {
      const all = await store.read('run-n');
      const info = await createRuntime({ store, workflows: [wf] }).get('n');
      expect(info.state).toBe(foldState(wf, effectiveEvents(all)));
      expect(info.rollbacks).toEqual(rollbacksOf(all));
      expect(info.version).toBe(all.length);
    };
    await runtime.start(wf, null, { runId: 'n' });
    await check();
    for (const to of ['c', 'b', 'latest', 'a', 'start'] as const) {
      await runtime.rollback('n', { to, reason: `to ${to}` });
      await check();
      await runtime.resume('n');
      await check();
    }
    expect((await runtime.get('n')).rollbacks).toHaveLength(6);
  });
});
