import { describe, expect, it } from 'vitest';
import {
  CheckpointNotFoundError,
  createRuntime,
  defineWorkflow,
  effectiveEvents,
  RunEvents,
  RunStateError,
  type Workflow,
} from '../../src/runtime/index.js';
import type { EventStore } from '../../src/store/types.js';
import { crashAfter, FakeService, fastClock, makeStore, SimulatedCrash, typesOf } from './helpers.js';

interface Trip {
  booked: string[];
}
const tripState: Trip = { booked: [] };
const applyTrip = (s: Trip, e: { type: string; data: unknown }): Trip =>
  e.type === 'Booked' ? { booked: [...s.booked, e.data as string] } : s;

/** flight, card, hotel: the first hotel always fails; after a rollback the code picks another one. */
function trip(service: FakeService, undone: string[], options: { failUndo?: (step: string, attempt: number) => boolean } = {}): Workflow {
  const undo = (step: string) => (_r: unknown, io: { idempotencyKey: string; attempt: number }) => {
    if (options.failUndo?.(step, io.attempt)) throw new Error(`cannot undo ${step}`);
    undone.push(step);
    service.call(io.idempotencyKey, `undo ${step}`);
  };
  return defineWorkflow({
    name: 'trip',
    initialState: tripState,
    apply: applyTrip,
    onFailure: { rollbackTo: 'planned' },
    run: async (ctx) => {
      await ctx.emit({ type: 'Booked', data: 'plan' });
      await ctx.checkpoint('planned');
      for (const step of ['flight', 'card']) {
        await ctx.step(step, ({ idempotencyKey }) => service.call(idempotencyKey, step), { compensate: undo(step) });
        await ctx.emit({ type: 'Booked', data: step });
      }
      const hotel = ctx.lastRollback ? 'hotel-b' : 'hotel-a';
      await ctx.step(hotel, ({ idempotencyKey }) => {
        if (hotel === 'hotel-a') throw new Error('hotel-a is full');
        return service.call(idempotencyKey, hotel);
      });
      await ctx.emit({ type: 'Booked', data: hotel });
      return ctx.state;
    },
  });
}

describe('rollback protocol', () => {
  it('compensates newest first, keeps the undone events in the log, and lets the code take another path', async () => {
    const store = await makeStore();
    const service = new FakeService();
    const undone: string[] = [];
    const info = await createRuntime({ store }).start(trip(service, undone), null, { runId: 't' });
    expect(info.status).toBe('completed');
    expect(undone).toEqual(['card', 'flight']);
    expect(info.state).toEqual({ booked: ['plan', 'flight', 'card', 'hotel-b'] });
    expect(info.rollbacks).toHaveLength(1);
    expect(info.rollbacks[0]).toMatchObject({ label: 'planned', trigger: { kind: 'step-failed', step: 'hotel-a' } });

    const events = await store.read('run-t');
    const types = events.map((e) => e.type);
    expect(types).toContain(RunEvents.RollbackRequested);
    expect(types.indexOf(RunEvents.RolledBack)).toBeGreaterThan(types.lastIndexOf(RunEvents.CompensationCompleted));
    // The first path's events are all still there, and all outside the effective history.
    const firstFlight = events.find((e) => e.type === RunEvents.StepCompleted && (e.data as { name: string }).name === 'flight');
    expect(firstFlight).toBeDefined();
    expect(effectiveEvents(events).map((e) => e.id)).not.toContain(firstFlight?.id);
    // The new path booked under new keys: the external service saw two flights, one cancelled.
    expect([...service.calls.keys()].filter((k) => k.includes(':flight') && !k.endsWith(':undo'))).toHaveLength(2);
    expect(service.applied.filter((a) => a.endsWith('=undo flight'))).toHaveLength(1);
  });

  it('nests: roll back, continue, roll back again to an older checkpoint', async () => {
    const store = await makeStore();
    const undone: string[] = [];
    const wf = defineWorkflow({
      name: 'nested',
      initialState: [] as string[],
      apply: (s: string[], e) => [...s, e.data as string],
      run: async (ctx) => {
        await ctx.checkpoint('a');
        await ctx.step('s1', () => 1, { compensate: () => void undone.push('s1') });
        await ctx.emit({ type: 'Did', data: 's1' });
        await ctx.checkpoint('b');
        const tag = `s2#${ctx.rollbacks.length}`;
        await ctx.step(tag, () => 2, { compensate: () => void undone.push(tag) });
        await ctx.emit({ type: 'Did', data: tag });
        return ctx.state;
      },
    });
    const runtime = createRuntime({ store });
    expect((await runtime.start(wf, null, { runId: 'n' })).state).toEqual(['s1', 's2#0']);

    const first = await runtime.rollback('n', { to: 'b', reason: 'wrong s2' });
    expect(first.status).toBe('rolled_back');
    expect(first.state).toEqual(['s1']);
    expect(undone).toEqual(['s2#0']);

    const resumed = await runtime.resume('n');
    expect(resumed.status).toBe('completed');
    expect(resumed.state).toEqual(['s1', 's2#1']);

    const second = await runtime.rollback('n', { to: 'a', reason: 'start over' });
    expect(second.state).toEqual([]);
    // s2#0 was compensated by the first rollback and is not compensated again.
    expect(undone).toEqual(['s2#0', 's2#1', 's1']);
    expect(second.rollbacks.map((r) => r.label)).toEqual(['b', 'a']);

    // 'b' was removed by the second rollback: it cannot be a target any more, and nothing is written.
    const version = await store.streamVersion('run-n');
    await expect(runtime.rollback('n', { to: 'b', reason: 'x' })).rejects.toBeInstanceOf(CheckpointNotFoundError);
    expect(await store.streamVersion('run-n')).toBe(version);

    const last = await runtime.resume('n');
    expect(last.state).toEqual(['s1', 's2#2']);
  });

  it('a compensation that keeps failing needs attention until an operator retries it', async () => {
    const store = await makeStore();
    const service = new FakeService();
    const undone: string[] = [];
    let broken = true;
    const wf = trip(service, undone, { failUndo: (step) => step === 'flight' && broken });
    const runtime = createRuntime({ store, clock: fastClock(), compensationRetry: { attempts: 2, initialDelayMs: 1 } });
    const stuck = await runtime.start(wf, null, { runId: 'na' });
    expect(stuck.status).toBe('needs_attention');
    expect(stuck.attention).toMatchObject({ step: 'flight', stage: 'compensation', error: { message: 'cannot undo flight' } });
    expect(undone).toEqual(['card']);
    await expect(runtime.resolveByHand('na', '')).rejects.toThrow(/note/);
    await expect(runtime.cancel('na')).rejects.toBeInstanceOf(RunStateError);

    // Resuming does not skip it either.
    expect((await createRuntime({ store, workflows: [wf] }).resume('na')).status).toBe('needs_attention');

    broken = false;
    const fixed = await runtime.retryCompensation('na', 'airline API back');
    expect(fixed.status).toBe('completed');
    expect(undone).toEqual(['card', 'flight']);
    const types = await typesOf(store, 'na');
    expect(types.filter((t) => t === RunEvents.CompensationFailed)).toHaveLength(2);
    expect(types).toContain(RunEvents.CompensationRetried);
  });

  it('records a compensation resolved by hand and carries on', async () => {
    const store = await makeStore();
    const undone: string[] = [];
    const wf = trip(new FakeService(), undone, { failUndo: (step) => step === 'card' });
    const runtime = createRuntime({ store, clock: fastClock(), compensationRetry: { attempts: 1 } });
    expect((await runtime.start(wf, null, { runId: 'h' })).status).toBe('needs_attention');
    const done = await runtime.resolveByHand('h', 'refunded in the bank portal');
    expect(done.status).toBe('completed');
    expect(undone).toEqual(['flight']);
    const resolved = (await store.read('run-h')).find((e) => e.type === RunEvents.ResolvedByHand);
    expect(resolved?.data).toMatchObject({ note: 'refunded in the bank portal' });
  });

  it('a verify hook that finds the world wrong blocks the rollback', async () => {
    const store = await makeStore();
    let cancelled = false;
    const wf = defineWorkflow({
      name: 'verified',
      initialState: null,
      apply: (s) => s,
      onFailure: 'compensate-and-fail',
      run: async (ctx) => {
        await ctx.step('reserve', () => 'seat', { compensate: () => {}, verify: () => cancelled });
        await ctx.step('fail', () => {
          throw new Error('nope');
        });
      },
    });
    const runtime = createRuntime({ store });
    const stuck = await runtime.start(wf, null, { runId: 'vf' });
    expect(stuck.status).toBe('needs_attention');
    expect(stuck.attention).toMatchObject({ stage: 'verify', step: 'reserve' });
    cancelled = true;
    const done = await runtime.retryCompensation('vf');
    expect(done.status).toBe('failed');
    expect(done.error).toMatchObject({ message: 'nope' });
  });

  it('a crash in the middle of a rollback resumes it without re-running completed compensations', async () => {
    const store = await makeStore();
    const service = new FakeService();
    const undone: string[] = [];
    const wf = trip(service, undone);
    // Dies right after the flight's compensation started, i.e. after the card's completed.
    const crashing = crashAfter(store, (e) => e.type === RunEvents.CompensationStarted && (e.data as { step: string }).step === 'flight');
    await expect(createRuntime({ store: crashing }).start(wf, null, { runId: 'cr' })).rejects.toBeInstanceOf(SimulatedCrash);
    expect(undone).toEqual(['card']);
    expect((await createRuntime({ store, workflows: [wf] }).get('cr')).status).toBe('rolling_back');

    const info = await createRuntime({ store, workflows: [wf] }).resume('cr');
    expect(info.status).toBe('completed');
    expect(undone).toEqual(['card', 'flight']);
    const starts = (await store.read('run-cr')).filter((e) => e.type === RunEvents.CompensationStarted);
    // The flight's compensation is re-run under the attempt (and key) that was recorded, not a new one.
    expect(starts.map((e) => (e.data as { step: string }).step)).toEqual(['card', 'flight']);
    for (const [key, n] of service.calls) if (key.endsWith(':undo')) expect(n).toBe(1);
  });

  it('explicit rollback of a completed run, by label or version; bad targets write nothing', async () => {
    const store: EventStore = await makeStore();
    const wf = defineWorkflow({
      name: 'explicit',
      initialState: 0,
      apply: (s: number, e) => s + (e.data as number),
      run: async (ctx) => {
        await ctx.emit({ type: 'Add', data: 1 });
        await ctx.checkpoint('one');
        await ctx.emit({ type: 'Add', data: 10 });
        return ctx.state;
      },
    });
    const runtime = createRuntime({ store });
    await runtime.start(wf, null, { runId: 'x' });
    const version = await store.streamVersion('run-x');
    await expect(runtime.rollback('x', { to: 'nope', reason: 'r' })).rejects.toBeInstanceOf(CheckpointNotFoundError);
    await expect(runtime.rollback('x', { to: 2, reason: 'r' })).rejects.toBeInstanceOf(CheckpointNotFoundError);
    await expect(runtime.rollback('x', { to: 'one', reason: '' })).rejects.toThrow(/reason/);
    await expect(runtime.rollback('nobody', { to: 'one', reason: 'r' })).rejects.toMatchObject({ code: 'RUN_NOT_FOUND' });
    expect(await store.streamVersion('run-x')).toBe(version);

    const checkpointVersion = (await store.read('run-x')).find((e) => e.type === RunEvents.Checkpoint)?.version as number;
    const back = await runtime.rollback('x', { to: checkpointVersion, reason: 'audit', after: 'retry' });
    expect(back.status).toBe('completed');
    expect(back.state).toBe(11);
    expect(back.rollbacks[0]).toMatchObject({ label: 'one', reason: 'audit', trigger: { kind: 'requested' } });
  });

  it('an explicit rollback of a run this runtime is driving waits for the step in flight, then compensates it too', async () => {
    const store = await makeStore();
    const undone: string[] = [];
    let release: () => void = () => {};
    const wf = defineWorkflow({
      name: 'busy',
      initialState: null,
      apply: (s) => s,
      run: async (ctx) => {
        await ctx.checkpoint('start-here');
        await ctx.step('quick', () => 1, { compensate: () => void undone.push('quick') });
        await ctx.step('slow', () => (ctx.rollbacks.length ? 2 : new Promise<number>((r) => (release = () => r(2)))), {
          compensate: () => void undone.push('slow'),
        });
        await ctx.step('never-reached-first-time', () => 3);
        return ctx.rollbacks.length;
      },
    });
    const runtime = createRuntime({ store });
    await runtime.start(wf, null, { runId: 'busy', detach: true });
    await new Promise((r) => setTimeout(r, 20));
    const rolling = runtime.rollback('busy', { to: 'start-here', reason: 'operator' });
    await new Promise((r) => setTimeout(r, 20));
    release();
    const info = await rolling;
    expect(info.status).toBe('rolled_back');
    expect(undone).toEqual(['slow', 'quick']);
    const types = await typesOf(store, 'busy');
    expect(types).not.toContain(RunEvents.StepFailed);
    const resumed = await runtime.resume('busy');
    expect(resumed.output).toBe(1);
  });

  it('parallel steps: a rollback waits for siblings in flight, and compensates them too, also after a crash', async () => {
    const store = await makeStore();
    const undone: string[] = [];
    const wf = defineWorkflow({
      name: 'parallel',
      initialState: null,
      apply: (s) => s,
      onFailure: { rollbackTo: 'before' },
      run: async (ctx) => {
        await ctx.checkpoint('before');
        const first = ctx.rollbacks.length === 0;
        const slow = (name: string, ms: number, fail = false) =>
          ctx.step(
            name,
            () =>
              new Promise<string>((resolve, reject) =>
                setTimeout(() => (fail && first ? reject(new Error(`${name} failed`)) : resolve(name)), ms),
              ),
            { compensate: () => void undone.push(name) },
          );
        return Promise.all([slow('fails-fast', 5, true), slow('slow-sibling', 40), slow('also-fails', 10, true)]);
      },
    });
    const info = await createRuntime({ store }).start(wf, null, { runId: 'par' });
    expect(info.status).toBe('completed');
    expect(info.rollbacks).toHaveLength(1);
    expect(undone).toEqual(['slow-sibling']);
    const types = await typesOf(store, 'par');
    const request = types.indexOf(RunEvents.RollbackRequested);
    expect(types.slice(0, request).filter((t) => t === RunEvents.StepCompleted)).toHaveLength(1);

    // The same rollback resumed by a fresh process finds the sibling's compensation through a collect pass.
    const store2 = await makeStore();
    undone.length = 0;
    const crashing = crashAfter(store2, (e) => e.type === RunEvents.RollbackRequested);
    await expect(createRuntime({ store: crashing }).start(wf, null, { runId: 'par' })).rejects.toBeInstanceOf(SimulatedCrash);
    expect(undone).toEqual([]);
    const resumed = await createRuntime({ store: store2, workflows: [wf] }).resume('par');
    expect(resumed.status).toBe('completed');
    expect(undone).toEqual(['slow-sibling']);
  });
});
