import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentsWorld, agentWorkflows, tripGroup } from '../../examples/agents.js';
import type { EventEnvelope } from '../../src/events/envelope.js';
import {
  createCoordinator,
  GroupEvents,
  type GroupRolledBackData,
  GroupStateError,
  groupStatusAfter,
  groupStreamOf,
  LabelMissingError,
} from '../../src/runtime/coordinator.js';
import { createRuntime, defineWorkflow, RunEvents } from '../../src/runtime/index.js';
import { openStore } from '../../src/store/open.js';
import type { EventStore } from '../../src/store/types.js';
import { runChild } from '../support/child.js';
import { openTestPostgresStore, uniqueSchema } from '../support/postgres.js';
import { tempDir } from '../support/temp.js';
import { crashAfter, fastClock, makeStore, SimulatedCrash } from './helpers.js';

const AGENTS = ['planner', 'booker', 'payer'];
const streams = (groupId: string) => AGENTS.map((a) => `run-${groupId}.${a}`);

async function versions(store: EventStore, groupId: string): Promise<number[]> {
  return Promise.all([groupStreamOf(groupId), ...streams(groupId)].map((s) => store.streamVersion(s)));
}

/**
 * Readers polling the log while a group rolls back. Each check reads one
 * point of the log (a single readAll, or every stream cut at one head
 * position) and counts RolledBack markers per agent: they must always agree.
 */
function watch(store: EventStore, groupId: string) {
  const violations: string[] = [];
  const seen = new Set<string>();
  let stop = false;
  const check = async () => {
    const all = await store.readAll({ filter: { streamPrefix: `run-${groupId}.` } });
    const byAll = streams(groupId).map((s) => all.filter((e) => e.streamId === s && e.type === RunEvents.RolledBack).length);
    const head = await store.headPosition();
    const byStream: number[] = [];
    for (const s of streams(groupId)) {
      const events = (await store.read(s)).filter((e) => e.position <= head);
      byStream.push(events.filter((e) => e.type === RunEvents.RolledBack).length);
      await new Promise((r) => setImmediate(r));
    }
    for (const counts of [byAll, byStream]) {
      if (new Set(counts).size > 1) violations.push(`partial group rollback seen: ${counts.join(',')}`);
      seen.add(counts.join(','));
    }
  };
  // A cheap single-read check on every turn of the event loop, and the multi-read one alongside.
  const quick = async () => {
    const all = await store.readAll({ filter: { streamPrefix: `run-${groupId}.`, types: [RunEvents.RolledBack] } });
    const counts = streams(groupId).map((s) => all.filter((e) => e.streamId === s).length);
    if (new Set(counts).size > 1) violations.push(`partial group rollback seen: ${counts.join(',')}`);
  };
  const loop = (async () => {
    while (!stop) {
      await check();
      await new Promise((r) => setImmediate(r));
    }
    await check();
  })();
  const fast = (async () => {
    while (!stop) {
      await quick();
      await new Promise((r) => setImmediate(r));
    }
  })();
  return {
    violations,
    seen,
    stop: async () => {
      stop = true;
      await Promise.all([loop, fast]);
    },
  };
}

function rolledBackCount(events: readonly EventEnvelope[]): number {
  return events.filter((e) => e.type === RunEvents.RolledBack).length;
}

/** The scenario on any store; `readerStore` may be another connection to the same log. */
async function crashBeforeMarkers(store: EventStore, readerStore: EventStore, groupId: string): Promise<void> {
  const world = new AgentsWorld();
  let crashed = 0;
  // The process dies on the commit of the markers: that commit never lands, and nothing after it runs.
  const dying = new Proxy(store, {
    get(target, prop) {
      if (prop === 'appendMany') {
        return async (...args: Parameters<EventStore['appendMany']>) => {
          if (args[0].some((a) => a.events.some((e) => e.type === RunEvents.RolledBack)) && crashed++ === 0) {
            throw new SimulatedCrash('died before the markers were committed');
          }
          return target.appendMany(...args);
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const reader = watch(readerStore, groupId);
  await expect(createCoordinator(createRuntime({ store: dying })).start(tripGroup(world), groupId)).rejects.toBeInstanceOf(SimulatedCrash);
  const compensations = world.calls.length;
  expect(world.calls.at(-1)).toBe('planner: release quote');

  // Every compensation is done and journaled; no agent is rolled back yet, all are held.
  const fresh = createCoordinator(createRuntime({ store }));
  fresh.register(tripGroup(world));
  const held = await fresh.get(groupId);
  expect(held.status).toBe('rolling_back');
  expect(held.participants.map((p) => p.status)).toEqual(['rolling_back', 'rolling_back', 'rolling_back']);
  for (const s of streams(groupId)) expect(rolledBackCount(await store.read(s))).toBe(0);
  const types = (await store.read(groupStreamOf(groupId))).map((e) => e.type);
  expect(types.filter((t) => t === GroupEvents.ParticipantCompensated)).toHaveLength(3);

  // A worker resuming one participant alone must not finish its part: the coordinator owns it.
  const alone = await createRuntime({ store, workflows: Object.values(agentWorkflows(world)) }).resume(`${groupId}.booker`);
  expect(alone.status).toBe('rolling_back');

  const done = await fresh.resume(groupId);
  await reader.stop();
  expect(done.status).toBe('rolled_back');
  expect(done.participants.every((p) => p.status === 'rolled_back')).toBe(true);
  expect(world.calls.length).toBe(compensations);
  expect(reader.violations).toEqual([]);
  expect(reader.seen.has('1,1,1')).toBe(true);
  // Resuming again is a no-op.
  expect((await fresh.resume(groupId)).status).toBe('rolled_back');
}

describe('coordinator: many agents, one rollback', () => {
  it('a failing agent rolls all three back to "planned" together: compensations newest first, one atomic commit of markers', async () => {
    const store = await makeStore();
    const world = new AgentsWorld();
    const commits: string[][] = [];
    const spied = new Proxy(store, {
      get(target, prop) {
        if (prop === 'appendMany') {
          return (...args: Parameters<EventStore['appendMany']>) => {
            commits.push(args[0].flatMap((a) => a.events.map((e) => `${a.streamId}:${e.type}`)));
            return target.appendMany(...args);
          };
        }
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const coordinator = createCoordinator(createRuntime({ store: spied }));
    const reader = watch(store, 'g1');
    const info = await coordinator.start(tripGroup(world), 'g1');
    await reader.stop();
    // Two commits span the group: the requests (every agent stops together), then the markers.
    expect(commits).toEqual([
      [`coordinator-g1:${GroupEvents.GroupRollbackRequested}`, ...streams('g1').map((s) => `${s}:${RunEvents.RollbackRequested}`)],
      [`coordinator-g1:${GroupEvents.GroupRolledBack}`, ...streams('g1').map((s) => `${s}:${RunEvents.RolledBack}`)],
    ]);

    expect(info.status).toBe('rolled_back');
    expect(info.rollback).toMatchObject({ label: 'planned', done: true, cause: { participant: 'payer', status: 'failed' } });
    expect(info.participants.map((p) => [p.name, p.status, p.rollbacks])).toEqual([
      ['planner', 'rolled_back', 1],
      ['booker', 'rolled_back', 1],
      ['payer', 'rolled_back', 1],
    ]);
    // The agent started last is undone first; within each agent, the newest step first.
    expect(world.calls.slice(5)).toEqual([
      'payer: void authorization',
      'booker: cancel hotel Harbour Inn',
      'booker: cancel flight LHR-OSL',
      'planner: release quote',
    ]);
    expect([...world.bookings.values()].every((b) => b.status === 'cancelled')).toBe(true);
    expect([...world.quotes.values()]).toEqual(['released']);

    // Every marker and the group's in one commit: consecutive positions, each where the group says.
    const group = await store.read(groupStreamOf('g1'));
    const done = group.at(-1) as EventEnvelope<string, GroupRolledBackData>;
    expect(done.type).toBe(GroupEvents.GroupRolledBack);
    const markers: EventEnvelope[] = [];
    for (const m of done.data.markers) {
      const [marker] = await store.read(`run-${m.runId}`, { from: m.version, to: m.version });
      expect(marker?.type).toBe(RunEvents.RolledBack);
      markers.push(marker as EventEnvelope);
    }
    const positions = [done, ...markers].map((e) => e.position).sort((a, b) => a - b);
    expect(positions.at(-1)! - positions[0]!).toBe(3);

    expect(reader.violations).toEqual([]);
    expect(reader.seen).toEqual(new Set(['0,0,0', '1,1,1']));
    // The state of each agent is back at its checkpoint.
    const runtime = createRuntime({ store, workflows: Object.values(agentWorkflows(world)) });
    expect((await runtime.get('g1.booker')).state).toEqual([]);
    expect((await runtime.get('g1.planner')).state).toHaveLength(1);
    expect((await store.verify()).ok).toBe(true);
  });

  it('crash between the compensations and the atomic marker write: resumed, it completes; no reader sees a partial rollback', async () => {
    const store = await makeStore();
    await crashBeforeMarkers(store, store, 'g2');
  });

  it("crash between two participants' compensations: resumed, no compensation runs twice", async () => {
    const store = await makeStore();
    const world = new AgentsWorld();
    const crashing = crashAfter(
      store,
      (e) => e.type === RunEvents.CompensationCompleted && (e.data as { step: string }).step === 'book-hotel',
    );
    await expect(createCoordinator(createRuntime({ store: crashing })).start(tripGroup(world), 'g3')).rejects.toBeInstanceOf(
      SimulatedCrash,
    );
    expect(world.calls.slice(5)).toEqual(['payer: void authorization', 'booker: cancel hotel Harbour Inn']);
    const coordinator = createCoordinator(createRuntime({ store }), { groups: [tripGroup(world)] });
    const done = await coordinator.resume('g3');
    expect(done.status).toBe('rolled_back');
    expect(world.calls.slice(5)).toEqual([
      'payer: void authorization',
      'booker: cancel hotel Harbour Inn',
      'booker: cancel flight LHR-OSL',
      'planner: release quote',
    ]);
  });

  it('a participant whose compensation keeps failing holds the whole group in needs attention until a retry', async () => {
    const store = await makeStore();
    class StuckWorld extends AgentsWorld {
      broken = true;
      override cancel(key: string): void {
        if (this.broken && this.bookings.get(key)?.what.startsWith('flight')) throw new Error('airline API down');
        super.cancel(key);
      }
    }
    const world = new StuckWorld();
    const runtime = createRuntime({ store, clock: fastClock(), compensationRetry: { attempts: 2, initialDelayMs: 1 } });
    const coordinator = createCoordinator(runtime);
    const reader = watch(store, 'g4');
    const stuck = await coordinator.start(tripGroup(world), 'g4');
    expect(stuck.status).toBe('needs_attention');
    expect(stuck.attention).toMatchObject({
      participant: 'booker',
      step: 'book-flight',
      stage: 'compensation',
      error: { message: 'airline API down' },
    });
    expect(stuck.participants.find((p) => p.name === 'booker')?.status).toBe('needs_attention');
    // Nobody is rolled back while one is blocked, and the planner was not compensated yet.
    for (const s of streams('g4')) expect(rolledBackCount(await store.read(s))).toBe(0);
    expect(world.calls).not.toContain('planner: release quote');
    await expect(coordinator.rollback('g4', { label: 'planned', reason: 'again' })).rejects.toBeInstanceOf(GroupStateError);
    expect((await coordinator.resume('g4')).status).toBe('needs_attention');

    world.broken = false;
    const fixed = await coordinator.retry('g4', 'airline back');
    await reader.stop();
    expect(fixed.status).toBe('rolled_back');
    expect(fixed.participants.every((p) => p.status === 'rolled_back')).toBe(true);
    expect(world.calls.slice(-2)).toEqual(['booker: cancel flight LHR-OSL', 'planner: release quote']);
    expect(reader.violations).toEqual([]);
    await expect(coordinator.retry('g4')).rejects.toBeInstanceOf(GroupStateError);
  });

  it('a label missing from one participant is refused before anything is compensated or written', async () => {
    const store = await makeStore();
    const world = new AgentsWorld();
    world.declineCards = false;
    const { planner, booker } = agentWorkflows(world);
    // This payer never checkpoints "planned".
    const payer = defineWorkflow({
      name: 'payer-unplanned',
      initialState: null,
      apply: (s) => s,
      run: async (ctx, input: { amount: number }) => {
        await ctx.checkpoint('ready');
        return ctx.step('authorize', ({ idempotencyKey }) => world.authorize(idempotencyKey, input.amount), {
          compensate: () => world.voidAuthorization('x'),
        });
      },
    });
    const group = {
      name: 'unplanned',
      participants: [
        { name: 'planner', workflow: planner, input: { traveller: 'Ada', to: 'OSL' } },
        { name: 'booker', workflow: booker, input: (o: Record<string, unknown>) => o.planner },
        { name: 'payer', workflow: payer, input: { amount: 1 } },
      ],
    };
    const coordinator = createCoordinator(createRuntime({ store }));
    expect((await coordinator.start(group, 'g5')).status).toBe('completed');
    const before = await versions(store, 'g5');
    const calls = world.calls.length;
    const refused = await coordinator.rollback('g5', { label: 'planned', reason: 'undo the trip' }).catch((e) => e);
    expect(refused).toBeInstanceOf(LabelMissingError);
    expect(refused.missing).toEqual(['payer']);
    expect(refused.message).toMatch(/"payer" has no checkpoint "planned"/);
    expect(await versions(store, 'g5')).toEqual(before);
    expect(world.calls.length).toBe(calls);

    // A label every agent has works.
    await expect(coordinator.rollback('g5', { label: 'nope', reason: 'x' })).rejects.toMatchObject({ missing: AGENTS });
    await expect(coordinator.rollback('g5', { label: 'planned', reason: '' })).rejects.toMatchObject({ code: 'VALIDATION' });
    await expect(coordinator.get('nobody')).rejects.toMatchObject({ code: 'GROUP_NOT_FOUND' });
  });

  it('after a group rollback the group resumes: every agent goes on from its checkpoint', async () => {
    const store = await makeStore();
    const world = new AgentsWorld();
    const coordinator = createCoordinator(createRuntime({ store }));
    expect((await coordinator.start(tripGroup(world), 'g6')).status).toBe('rolled_back');
    world.declineCards = false;
    const again = await coordinator.resume('g6');
    expect(again.status).toBe('completed');
    expect(again.participants.map((p) => p.status)).toEqual(['completed', 'completed', 'completed']);
    // New bookings under new keys; the cancelled ones stay cancelled.
    expect([...world.bookings.values()].map((b) => b.status).sort()).toEqual(['booked', 'booked', 'cancelled', 'cancelled']);
  });
});

describe.skipIf(process.env.REWIND_SKIP_POSTGRES === '1')('coordinator on PostgreSQL', () => {
  it('crash before the markers, resumed; a reader on another connection never sees a partial group rollback', async () => {
    const schema = uniqueSchema();
    const store = await openTestPostgresStore({ schema });
    const reader = await openTestPostgresStore({ schema });
    try {
      await crashBeforeMarkers(store, reader, 'pg1');
    } finally {
      await reader.close();
      await store.close();
    }
  });
});

const CHILD = join(import.meta.dirname, '../fixtures/coordinator-child.ts');

describe('coordinator under SIGKILL (SQLite, real processes)', () => {
  it('a coordinator killed in the middle of a group rollback, again and again, completes it; another process never sees a partial one', async () => {
    const dir = tempDir('rewind-coord-kill-');
    const db = join(dir, 'runs.db');
    const effects = join(dir, 'effects.log');
    // The reader is this process, on its own connection to the file the children write.
    const reader = await openStore(`sqlite:${db}`);
    const watcher = watchSqlite(reader, 'k');
    let last = '';
    let kills = 0;
    const statuses = new Set<string>();
    for (let i = 0; i < 30 && last !== 'rolled_back'; i++) {
      const kill = i === 0 ? 'compensating' : i < 8 ? 20 + Math.floor(Math.random() * 120) : undefined;
      last = await runChild(CHILD, [db, effects, 'k', i === 0 ? 'start' : 'resume'], kill);
      if (last === 'killed') {
        kills++;
        const [tail] = await reader.read(groupStreamOf('k'), { direction: 'backward', limit: 1 });
        if (tail) statuses.add(groupStatusAfter(tail.type));
        // Killed after the markers' commit but before it could say so: the rollback is complete, and
        // resuming a rolled-back group would retry it (and roll it back again), which is not this test.
        if (tail && groupStatusAfter(tail.type) === 'rolled_back') last = 'rolled_back';
      }
    }
    await watcher.stop();
    expect(kills).toBeGreaterThan(0);
    // The first child died inside the group's compensations.
    expect(statuses).toContain('rolling_back');
    expect(last).toBe('rolled_back');
    expect(watcher.violations).toEqual([]);

    const lines = readFileSync(effects, 'utf8').trim().split('\n');
    expect(lines.filter((l) => l.startsWith('VIOLATION'))).toEqual([]);
    // Every effect of the three agents was undone (at least once, under its key).
    const done = lines.filter((l) => l.startsWith('do ')).map((l) => l.slice(3));
    expect(done.length).toBeGreaterThanOrEqual(6);
    for (const key of new Set(done)) expect(lines).toContain(`undo ${key}`);
    for (const s of streams('k')) expect(rolledBackCount(await reader.read(s))).toBe(1);
    expect((await reader.verify()).ok).toBe(true);
    await reader.close();
  }, 120_000);
});

/** Polls a store another process writes to, counting RolledBack markers per agent in one read. */
function watchSqlite(store: EventStore, groupId: string) {
  const violations: string[] = [];
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      const all = await store.readAll({ filter: { streamPrefix: `run-${groupId}.`, types: [RunEvents.RolledBack] } });
      const counts = streams(groupId).map((s) => all.filter((e) => e.streamId === s).length);
      if (new Set(counts).size > 1) violations.push(`partial group rollback seen: ${counts.join(',')}`);
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  return {
    violations,
    stop: async () => {
      stop = true;
      await loop;
    },
  };
}
