import { describe, expect, it } from 'vitest';
import type { EventEnvelope } from '../../src/events/envelope.js';
import {
  createRuntime,
  defineWorkflow,
  ForkPointError,
  RunConflictError,
  RunEvents,
  type StepCompletedData,
  type Workflow,
} from '../../src/runtime/index.js';
import { FakeService, makeStore } from './helpers.js';

interface Trip {
  booked: string[];
}
const applyTrip = (s: Trip, e: { type: string; data: unknown }): Trip =>
  e.type === 'Booked' ? { booked: [...s.booked, e.data as string] } : s;

/**
 * flight, card, then a hotel: the hotel listed first fails, so the run rolls
 * back to "planned" and, seeing ctx.rollbacks, takes the next one. `name`
 * lets a fork continue under other code.
 */
function trip(service: FakeService, hotels: string[], full: Set<string>, name = 'trip'): Workflow {
  return defineWorkflow({
    name,
    initialState: { booked: [] } as Trip,
    apply: applyTrip,
    onFailure: { rollbackTo: 'planned' },
    run: async (ctx) => {
      await ctx.emit({ type: 'Booked', data: 'plan' });
      await ctx.checkpoint('planned');
      for (const step of ['flight', 'card']) {
        await ctx.step(step, ({ idempotencyKey }) => service.call(idempotencyKey, step), {
          compensate: (_r, { idempotencyKey }) => void service.call(idempotencyKey, `undo ${step}`),
        });
        await ctx.emit({ type: 'Booked', data: step });
      }
      const hotel = hotels[Math.min(ctx.rollbacks.length, hotels.length - 1)] as string;
      await ctx.step(`hotel`, ({ idempotencyKey }) => {
        if (full.has(hotel)) throw new Error(`${hotel} is full`);
        return service.call(idempotencyKey, hotel);
      });
      await ctx.emit({ type: 'Booked', data: hotel });
      return ctx.state;
    },
  });
}

const doCalls = (service: FakeService) => [...service.calls.keys()].filter((k) => !k.endsWith(':undo'));

describe('fork', () => {
  it('at the end of a run with a rollback inside: replays every copied step, runs nothing again, completes alike', async () => {
    const store = await makeStore();
    const service = new FakeService();
    const wf = trip(service, ['grand', 'harbour'], new Set(['grand']));
    const runtime = createRuntime({ store, workflows: [wf] });
    const original = await runtime.start(wf, null, { runId: 'o' });
    expect(original.state).toEqual({ booked: ['plan', 'flight', 'card', 'harbour'] });
    const calls = doCalls(service).length;

    const fork = await runtime.fork('o', { runId: 'f' });
    expect(fork.status).toBe('completed');
    expect(fork.state).toEqual(original.state);
    expect(fork.rollbacks).toHaveLength(1);
    expect(doCalls(service)).toHaveLength(calls);

    const history = await runtime.history('f');
    expect(history.forkedFrom).toEqual({ runId: 'o', version: original.version });
    const events = await store.read('run-f');
    // The copy keeps versions, the original's times and its rolled-back detour; it has its own ids and hash chain.
    const originalEvents = await store.read('run-o');
    expect(events[3]?.recordedAt).toBe(originalEvents[3]?.recordedAt);
    expect(events[3]?.id).not.toBe(originalEvents[3]?.id);
    expect(events.find((e) => e.type === RunEvents.ForkedFrom)?.version).toBe(original.version);
    expect((await store.verify({ streamId: 'run-f' })).ok).toBe(true);

    const diff = await runtime.diff('o', 'f');
    expect(diff.identical).toBe(true);
    expect(diff.relation).toEqual({ kind: 'fork', parent: 'o', child: 'f', version: original.version });
    expect(diff.state?.diff.equal).toBe(true);
  });

  it('after the rollback, under other code: the steps before the fork point replay, the new path runs live', async () => {
    const store = await makeStore();
    const service = new FakeService();
    const full = new Set(['grand']);
    const wf = trip(service, ['grand', 'harbour'], full);
    const runtime = createRuntime({ store, workflows: [wf] });
    await runtime.start(wf, null, { runId: 'o2' });
    const events = await store.read('run-o2');
    // Just after the second card booking: past the rollback, before the hotel.
    const cardEmits = events.filter((e) => e.type === 'Booked' && e.data === 'card');
    const at = cardEmits[1]?.version as number;
    const before = doCalls(service).length;

    const other = trip(service, ['grand', 'seaside'], full, 'trip-v2');
    const fork = await runtime.fork('o2', { at, runId: 'f2', workflow: other });
    expect(fork.status).toBe('completed');
    expect(fork.workflow).toBe('trip-v2');
    expect(fork.state).toEqual({ booked: ['plan', 'flight', 'card', 'seaside'] });
    // Only the hotel ran, under the fork's own key: the flight and the card were not booked again.
    const added = doCalls(service).slice(before);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatch(/^f2:/);

    const diff = await runtime.diff('o2', 'f2');
    expect(diff.relation).toMatchObject({ kind: 'fork', parent: 'o2', child: 'f2', version: at });
    expect(diff.sharesNothing).toBe(false);
    // Other code, same lineage: the copied history is shared; the hotel is the first thing the new code did differently.
    expect(diff.firstDivergence?.a).toMatchObject({ type: RunEvents.StepCompleted, data: { name: 'hotel', result: 'harbour' } });
    expect(diff.firstDivergence?.b).toMatchObject({ type: RunEvents.StepCompleted, data: { name: 'hotel', result: 'seaside' } });
    expect(diff.state?.diff.changed).toEqual([{ path: ['booked', 3], at: 'booked[3]', from: 'harbour', to: 'seaside' }]);
  });

  it('before the rollback, with the hotel free: the fork never rolls back, and the diff finds the first divergent event', async () => {
    const store = await makeStore();
    const service = new FakeService();
    const full = new Set(['grand']);
    const wf = trip(service, ['grand', 'harbour'], full);
    const runtime = createRuntime({ store, workflows: [wf] });
    await runtime.start(wf, null, { runId: 'o3' });
    const events = await store.read('run-o3');
    const at = events.find((e) => e.type === 'Booked' && e.data === 'card')?.version as number;
    const flightKey = (events.find((e) => e.type === RunEvents.StepCompleted) as EventEnvelope<string, StepCompletedData>).data
      .idempotencyKey;

    full.delete('grand');
    const fork = await runtime.fork('o3', { at, runId: 'f3' });
    expect(fork.status).toBe('completed');
    expect(fork.rollbacks).toHaveLength(0);
    expect(fork.state).toEqual({ booked: ['plan', 'flight', 'card', 'grand'] });
    expect(service.calls.get(flightKey)).toBe(1);

    const diff = await runtime.diff('o3', 'f3');
    expect(diff.relation.kind).toBe('fork');
    // The original's first hotel attempt failed and was rolled back: its effective hotel step booked harbour.
    expect(diff.firstDivergence?.a).toMatchObject({ type: RunEvents.StepCompleted, data: { name: 'hotel', result: 'harbour' } });
    expect(diff.firstDivergence?.b).toMatchObject({ type: RunEvents.StepCompleted, data: { name: 'hotel', result: 'grand' } });
    expect(diff.sharedEvents).toBeGreaterThan(5);
    expect(diff.state?.diff).toMatchObject({ changed: [{ at: 'booked[3]', from: 'harbour', to: 'grand' }], added: [], removed: [] });
    expect(diff.summary).toMatch(/share \d+ effective events/);

    // At a pair of versions: the original at the fork point and the fork at the same version agree.
    const same = await runtime.diff('o3', 'f3', { at: [at, at] });
    expect(same.identical).toBe(true);
    expect(same.state?.diff.equal).toBe(true);
  });

  it('bad input writes nothing: past the end, inside an unfinished rollback, a taken id', async () => {
    const store = await makeStore();
    const service = new FakeService();
    const wf = trip(service, ['grand', 'harbour'], new Set(['grand']));
    const runtime = createRuntime({ store, workflows: [wf] });
    const original = await runtime.start(wf, null, { runId: 'o4' });
    const streamsBefore = (await store.listStreams()).length;

    const past = await runtime.fork('o4', { at: original.version + 1, runId: 'x1' }).catch((e) => e);
    expect(past).toBeInstanceOf(ForkPointError);
    expect(past.message).toMatch(/version \d+: the run has \d+ events/);
    await expect(runtime.fork('o4', { at: 0, runId: 'x1' })).rejects.toBeInstanceOf(ForkPointError);
    await expect(runtime.fork('o4', { at: { label: 'nope' }, runId: 'x1' })).rejects.toMatchObject({ code: 'CHECKPOINT_NOT_FOUND' });
    const request = (await store.read('run-o4')).find((e) => e.type === RunEvents.RollbackRequested)?.version as number;
    await expect(runtime.fork('o4', { at: request + 1, runId: 'x1' })).rejects.toThrow(/rollback requested at version/);
    const started = (await store.read('run-o4')).find((e) => e.type === RunEvents.StepStarted)?.version as number;
    await expect(runtime.fork('o4', { at: started, runId: 'x1' })).rejects.toThrow(/has started and not ended/);
    await expect(runtime.fork('o4', { runId: 'o4' })).rejects.toBeInstanceOf(RunConflictError);
    await expect(runtime.fork('o4', { runId: 'bad id!' })).rejects.toMatchObject({ code: 'VALIDATION' });
    await expect(runtime.fork('nobody', {})).rejects.toMatchObject({ code: 'RUN_NOT_FOUND' });
    expect((await store.listStreams()).length).toBe(streamsBefore);
    expect(await store.streamVersion('run-x1')).toBe(0);
  });
});

describe('diff', () => {
  it('of unrelated runs is allowed and says they share nothing', async () => {
    const store = await makeStore();
    const a = defineWorkflow({
      name: 'adder',
      initialState: { n: 0 },
      apply: (s, e) => ({ n: s.n + (e.data as number) }),
      run: async (ctx) => {
        await ctx.emit({ type: 'Add', data: 2 });
      },
    });
    const b = defineWorkflow({
      name: 'namer',
      initialState: { name: '' } as Record<string, unknown>,
      apply: (_s, e) => ({ name: e.data, extra: true }),
      run: async (ctx) => {
        await ctx.emit({ type: 'Name', data: 'x' });
      },
    });
    const runtime = createRuntime({ store });
    await runtime.start(a, null, { runId: 'ua' });
    await runtime.start(b, null, { runId: 'ub' });
    const diff = await runtime.diff('ua', 'ub');
    expect(diff.sharesNothing).toBe(true);
    expect(diff.relation).toEqual({ kind: 'unrelated' });
    expect(diff.summary).toMatch(/share nothing: different workflows/);
    expect(diff.firstDivergence?.index).toBe(0);
    expect(diff.state?.diff).toMatchObject({
      removed: [{ at: 'n', value: 2 }],
      added: [
        { at: 'extra', value: true },
        { at: 'name', value: 'x' },
      ],
    });

    // Two runs of one workflow with other input share nothing either; with the same input they are the same-workflow kind.
    await runtime.start(a, { other: 1 }, { runId: 'ua2' });
    expect((await runtime.diff('ua', 'ua2')).summary).toMatch(/share nothing: their inputs differ/);
    await runtime.start(a, null, { runId: 'ua3' });
    const same = await runtime.diff('ua', 'ua3');
    expect(same).toMatchObject({ identical: true, relation: { kind: 'same-workflow' } });
    await expect(runtime.diff('ua', 'nobody')).rejects.toMatchObject({ code: 'RUN_NOT_FOUND' });
  });
});
