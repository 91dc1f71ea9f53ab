import { afterEach, describe, expect, it } from 'vitest';
import { openProjections } from '../../src/projections/projections.js';
import { createRuntime, defineWorkflow } from '../../src/runtime/index.js';
import { builtInProjections, toolStats } from '../../src/runtime/read-models.js';
import type { EventStore } from '../../src/store/types.js';
import { kinds, openTestStore, removeTempDirs } from './helpers.js';

const stores: EventStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  removeTempDirs();
});

/** flight and card, then a hotel: the first hotel is full, the run rolls back to "planned" and books another. */
const trip = defineWorkflow({
  name: 'trip',
  initialState: { booked: [] as string[] },
  apply: (s: { booked: string[] }, e: { type: string; data: unknown }) =>
    e.type === 'Booked' ? { booked: [...s.booked, e.data as string] } : s,
  onFailure: { rollbackTo: 'planned' },
  run: async (ctx) => {
    await ctx.checkpoint('planned');
    for (const step of ['flight', 'card']) {
      await ctx.step(step, () => step, { compensate: () => {} });
      await ctx.emit({ type: 'Booked', data: step });
    }
    const hotel = ctx.lastRollback ? 'hotel-b' : 'hotel-a';
    await ctx.step(hotel, () => {
      if (hotel === 'hotel-a') throw new Error('hotel-a is full');
      return hotel;
    });
    return ctx.state;
  },
});

describe.each(kinds)('built-in read models over real runs (%s)', (kind) => {
  it('agree with the runtime, and with a rebuild, after a rollback', async () => {
    const store = await openTestStore(kind);
    stores.push(store);
    const projections = await openProjections(store, [...builtInProjections]);
    const runtime = createRuntime({ store });
    const info = await runtime.start(trip, null, { runId: 't1' });
    expect(info.status).toBe('completed');
    expect(info.rollbacks).toHaveLength(1);
    await runtime.start(trip, null, { runId: 't2' });
    await projections.catchUp();

    const run = await projections.get('runs', 'run-t1');
    expect(run).toMatchObject({
      runId: 't1',
      workflow: 'trip',
      status: info.status,
      version: info.version,
      rollbacks: 1,
      checkpoints: 1,
      // flight, card and hotel-b: the first flight, card and hotel-a were rolled back.
      stepsCompleted: 3,
      currentStep: null,
      startedAt: info.startedAt,
    });
    expect(run?.endedAt).not.toBeNull();
    expect((await projections.find('checkpoints')).map((d) => `${d.doc.runId}:${d.doc.label}`)).toEqual(['t1:planned', 't2:planned']);
    expect((await projections.find('rollbacks')).map((d) => d.doc)).toEqual([
      expect.objectContaining({ runId: 't1', label: 'planned', trigger: 'step-failed' }),
      expect.objectContaining({ runId: 't2', label: 'planned', trigger: 'step-failed' }),
    ]);
    const tools = Object.fromEntries((await toolStats(projections)).map((t) => [t.tool, t]));
    expect(tools['hotel-b']).toMatchObject({ calls: 2, failures: 0 });
    expect(tools['hotel-a']).toBeUndefined();
    expect(tools.flight).toMatchObject({ calls: 2 });

    const live = await Promise.all(builtInProjections.map((p) => projections.find(p.name, { limit: 1000 })));
    for (const p of builtInProjections) await projections.rebuild(p.name);
    expect(await Promise.all(builtInProjections.map((p) => projections.find(p.name, { limit: 1000 })))).toEqual(live);
    await projections.close();
  });
});
