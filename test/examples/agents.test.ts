import { describe, expect, it } from 'vitest';
import { runAgentsDemo } from '../../examples/agents.js';
import { makeStore } from '../runtime/helpers.js';

describe('examples/agents', () => {
  it('the payer fails and all three agents roll back to "planned" together', async () => {
    const store = await makeStore();
    const { info, world, text, timeline } = await runAgentsDemo(store, { groupId: 'demo' });
    expect(info.status).toBe('rolled_back');
    expect(info.rollback).toMatchObject({ label: 'planned', cause: { participant: 'payer' } });
    expect(info.participants.map((p) => p.status)).toEqual(['rolled_back', 'rolled_back', 'rolled_back']);
    expect([...world.bookings.values()].map((b) => b.status)).toEqual(['cancelled', 'cancelled']);
    expect([...world.payments.values()].map((p) => p.status)).toEqual(['voided']);
    expect([...world.quotes.values()]).toEqual(['released']);
    expect(text).toMatch(/^group demo: rolled_back to "planned"/);
    expect(timeline.filter((l) => l.includes('RolledBack'))).toHaveLength(3);
    expect((await store.verify()).ok).toBe(true);
  });
});
