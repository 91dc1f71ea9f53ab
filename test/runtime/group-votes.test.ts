import { describe, expect, it } from 'vitest';
import { createCoordinator, GroupEvents, GroupRollbackRefusedError, groupStreamOf } from '../../src/runtime/coordinator.js';
import { createRuntime, defineWorkflow } from '../../src/runtime/index.js';
import { makeStore } from './helpers.js';

// Before a coordinated rollback the coordinator asks every participant
// (prepare), journals each vote, and compensates nothing if any refuses.

function trip(undone: string[], votes: { booker?: boolean | string; sendEmail?: boolean }) {
  const agent = (name: string, extra?: () => Promise<unknown>) =>
    defineWorkflow({
      name: `vote-${name}`,
      initialState: { booked: 0 },
      apply: (s: { booked: number }) => ({ booked: s.booked + 1 }),
      run: async (ctx) => {
        await ctx.checkpoint('planned');
        await ctx.step(`${name}-book`, () => `${name}-1`, { compensate: () => void undone.push(name) });
        await ctx.emit({ type: 'Booked', data: null });
        if (extra) await extra();
        return name;
      },
    });
  const booker = agent('booker');
  return {
    name: 'vote-trip',
    participants: [
      { name: 'planner', workflow: agent('planner') },
      {
        name: 'booker',
        workflow: booker,
        // Its state now is what it votes on.
        canRollback: (target: { label: string }, state: { booked: number }) =>
          votes.booker === undefined ? true : state.booked === 1 && target.label === 'planned' ? votes.booker : false,
      },
    ],
  };
}

describe('votes before a coordinated rollback', () => {
  it('one participant refuses: nothing is requested or compensated, the votes and the refusal are journaled', async () => {
    const store = await makeStore();
    const undone: string[] = [];
    const coordinator = createCoordinator(createRuntime({ store }));
    const group = trip(undone, { booker: 'tickets are non-refundable' });
    expect((await coordinator.start(group, 'v1')).status).toBe('completed');
    const runVersions = await Promise.all(['run-v1.planner', 'run-v1.booker'].map((s) => store.streamVersion(s)));
    const refused = coordinator.rollback('v1', { label: 'planned', reason: 'trip cancelled' });
    await expect(refused).rejects.toBeInstanceOf(GroupRollbackRefusedError);
    await expect(refused).rejects.toMatchObject({ refusals: [{ name: 'booker', reason: 'tickets are non-refundable' }] });
    expect(undone).toEqual([]);
    expect(await Promise.all(['run-v1.planner', 'run-v1.booker'].map((s) => store.streamVersion(s)))).toEqual(runVersions);
    const tail = (await store.read(groupStreamOf('v1'))).slice(-2);
    expect(tail.map((e) => [e.type, e.data])).toEqual([
      [GroupEvents.ParticipantVoted, { name: 'booker', runId: 'v1.booker', vote: 'no', reason: 'tickets are non-refundable' }],
      [
        GroupEvents.GroupRollbackRefused,
        { label: 'planned', reason: 'trip cancelled', refusals: [{ name: 'booker', reason: 'tickets are non-refundable' }] },
      ],
    ]);
    // A record: the group is as completed as it was.
    expect((await coordinator.get('v1')).status).toBe('completed');
  });

  it('every participant agrees: the votes are journaled with the request, then the group rolls back', async () => {
    const store = await makeStore();
    const undone: string[] = [];
    const coordinator = createCoordinator(createRuntime({ store }));
    await coordinator.start(trip(undone, { booker: true }), 'v2');
    const info = await coordinator.rollback('v2', { label: 'planned', reason: 'trip cancelled' });
    expect(info.status).toBe('rolled_back');
    expect(undone).toEqual(['booker', 'planner']);
    const types = (await store.read(groupStreamOf('v2'))).map((e) => e.type);
    expect(types.slice(types.indexOf(GroupEvents.ParticipantVoted))).toEqual([
      GroupEvents.ParticipantVoted,
      GroupEvents.GroupRollbackRequested,
      GroupEvents.ParticipantCompensated,
      GroupEvents.ParticipantCompensated,
      GroupEvents.GroupRolledBack,
    ]);
  });

  it('an irreversible step after the label is a no on its own', async () => {
    const store = await makeStore();
    const undone: string[] = [];
    const sender = defineWorkflow({
      name: 'vote-sender',
      initialState: null,
      apply: (s: null) => s,
      run: async (ctx) => {
        await ctx.checkpoint('planned');
        await ctx.step('email', () => 'sent', { irreversible: true });
      },
    });
    const group = trip(undone, {});
    const coordinator = createCoordinator(createRuntime({ store }));
    await coordinator.start(
      { ...group, name: 'vote-trip-mail', participants: [...group.participants, { name: 'mailer', workflow: sender }] },
      'v3',
    );
    await expect(coordinator.rollback('v3', { label: 'planned', reason: 'cancel' })).rejects.toMatchObject({
      code: 'GROUP_ROLLBACK_REFUSED',
      refusals: [{ name: 'mailer', reason: 'step "email" after "planned" cannot be undone' }],
    });
    expect(undone).toEqual([]);
  });
});
