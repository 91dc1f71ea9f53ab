import { describe, expect, it } from 'vitest';
import { runTravelDemo } from '../../examples/travel.js';
import { makeStore } from '../runtime/helpers.js';

describe('examples/travel', () => {
  it('rolls back the failed booking, compensating newest first, then books another hotel', async () => {
    const store = await makeStore();
    const { info, world, timeline, runId } = await runTravelDemo(store, { runId: 'demo' });
    expect(info.status).toBe('completed');
    expect(info.state).toMatchObject({ hotel: 'HT-HarbourInn', triedHotels: ['Harbour Inn'] });
    expect(info.rollbacks).toHaveLength(1);
    expect(info.rollbacks[0]).toMatchObject({ label: 'planned', reason: 'Grand Hotel is full' });

    const compensated = (await store.read(`run-${runId}`))
      .filter((e) => e.type === 'CompensationCompleted')
      .map((e) => (e.data as { step: string }).step);
    expect(compensated).toEqual(['charge-card', 'book-flight']);

    expect([...world.flights.values()]).toEqual(['cancelled', 'booked']);
    expect([...world.payments.values()]).toEqual(['refunded', 'charged']);
    expect([...world.hotels.values()]).toEqual(['Harbour Inn']);

    expect(timeline.some((l) => l.includes('RolledBack') && l.includes('planned'))).toBe(true);
    expect(timeline.filter((l) => l.includes('↶')).length).toBeGreaterThan(5);
  });
});
