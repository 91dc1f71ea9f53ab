import { describe, expect, it } from 'vitest';
import { runTravelDemo, TravelWorld, travelWorkflow } from '../../examples/travel.js';
import { createRuntime, ValidationError } from '../../src/index.js';
import { testWorkflow } from '../../src/testing/index.js';
import { makeStore } from '../runtime/helpers.js';

const trip = { traveller: 'Ada', from: 'LHR', to: 'OSL', hotels: ['Grand Hotel', 'Harbour Inn'] };

describe('examples/travel', () => {
  it('rolls back the failed booking, compensating newest first, then books another hotel', async () => {
    const world = new TravelWorld();
    const run = await testWorkflow(travelWorkflow(world), { store: await makeStore() }).start(trip);
    expect(run).toMatchObject({
      status: 'completed',
      state: { hotel: 'HT-HarbourInn', triedHotels: ['Harbour Inn'] },
      rollbacks: [{ label: 'planned', reason: 'Grand Hotel is full' }],
      compensated: ['charge-card', 'book-flight'],
      steps: ['book-flight', 'charge-card', 'book-hotel'],
    });
    // The output keeps the workflow's type: no cast needed to read it.
    expect(run.output?.hotel).toBe('HT-HarbourInn');
    expect([...world.flights.values()]).toEqual(['cancelled', 'booked']);
    expect([...world.payments.values()]).toEqual(['refunded', 'charged']);
    expect([...world.hotels.values()]).toEqual(['Harbour Inn']);
  });

  it('the demo keeps the undone events in the log', async () => {
    const store = await makeStore();
    const { info, runId } = await runTravelDemo(store, { runId: 'demo' });
    expect(info.status).toBe('completed');
    const { events } = await createRuntime({ store }).history(runId);
    expect(events.filter((e) => e.status === 'rolled_back')).toHaveLength(17);
  });

  it('a large fare waits for a person: approved, the card is charged; rejected, the flight is cancelled and the trip fails', async () => {
    const store = await makeStore();
    const world = new TravelWorld([]);
    const runtime = createRuntime({ store, workflows: [travelWorkflow(world)] });
    const trip = { traveller: 'Ada', from: 'LHR', to: 'NRT', hotels: ['Harbour Inn'], fare: 2400 };
    const asked = await runtime.start('travel', trip, { runId: 'big-1' });
    expect(asked.status).toBe('waiting');
    expect(asked.waiting).toEqual({
      name: 'approval:large-payment',
      approval: { label: 'large-payment', details: { traveller: 'Ada', fare: 2400 } },
    });
    expect(world.payments.size).toBe(0);
    const approved = await runtime.approve('big-1', 'large-payment', { actor: 'finance', reason: 'within policy' });
    expect(approved.status).toBe('completed');
    expect([...world.payments.values()]).toEqual(['charged']);

    await runtime.start('travel', trip, { runId: 'big-2' });
    const rejected = await runtime.reject('big-2', 'large-payment', { actor: 'finance', reason: 'take the train' });
    expect(rejected.status).toBe('failed');
    expect(rejected.error?.message).toBe('approval "large-payment" was rejected by finance: take the train');
    expect([...world.flights.values()]).toEqual(['booked', 'cancelled']);
    expect([...world.payments.values()]).toEqual(['charged']);
  });

  it('refuses input that is not a trip before any step runs, and writes nothing', async () => {
    const world = new TravelWorld();
    const t = testWorkflow(travelWorkflow(world));
    const start = t.start({ ...trip, hotels: 'Grand Hotel' } as never, { runId: 'bad' });
    await expect(start).rejects.toBeInstanceOf(ValidationError);
    await expect(start).rejects.toMatchObject({ issues: ['hotels: Invalid input: expected array, received string'] });
    expect(t.calls).toEqual([]);
    expect(await (await t.store()).read('run-bad')).toEqual([]);
  });
});
