import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EventEnvelope } from '../../src/events/envelope.js';
import type { Coordinator, GroupDefinition, GroupInfo } from '../../src/runtime/coordinator.js';
import {
  type CompensationIO,
  defineWorkflow,
  type FailurePolicy,
  isRunEvent,
  type RollbackRequest,
  type RunContext,
  RunEvents,
  type RunInfo,
  type Runtime,
  type StepIO,
  type Workflow,
} from '../../src/runtime/index.js';
import type { Ledger } from './ledger.js';

// The workflows of the crash tests, and for each the operator who drives it
// to its end: a script that reads the run's log and says the next move, so a
// process killed anywhere is picked up by the next one from the log alone.

/** What a scenario's code and its operator reach outside the log. */
export interface World {
  ledger: Ledger;
  /** A folder for the operator's own notes (a fixed external system is a file here). */
  dir: string;
}

export type Move =
  | { kind: 'start' }
  /** A process that died left the run mid-way: a worker drives it from where its log ends. */
  | { kind: 'drive' }
  | { kind: 'rollback'; request: RollbackRequest }
  | { kind: 'resume' }
  | { kind: 'retry' }
  | { kind: 'resolve' }
  /** `id`: the operator sends each signal once, so one sent just before a crash is not sent twice. */
  | { kind: 'signal'; name: string; payload: unknown; id: string }
  | { kind: 'decide'; label: string; approved: boolean; id: string }
  /** The coordinator starts a group, or picks it up where its log ends. */
  | { kind: 'start-group' }
  | { kind: 'resume-group' };

export interface RunState {
  info: RunInfo | undefined;
  events: EventEnvelope[];
  /** For a group scenario: the group as the coordinator reads it. */
  group?: GroupInfo;
}

export interface Scenario {
  name: string;
  /** A group of agents: the run id is the group's id, and `next` moves the coordinator. */
  group?: (world: World) => GroupDefinition;
  /** Compensations given inline to each step, or declared on the workflow by step name. */
  hooks: 'inline' | 'declared';
  workflow: (world: World) => Workflow;
  /** The operator's next move; undefined once the scenario is over. */
  next: (state: RunState, world: World) => Move | undefined;
  /** Steps racing in parallel: the number and order of boundaries may differ from one run to the next. */
  racing?: boolean;
  /** What the run ends as, and the effects left in the world (step names, sorted). */
  expect: { status: RunInfo['status']; rollbacks: number; net: string[] };
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Body {
  /** A step whose effect the ledger holds under its key; `undo` says whether it has a compensation. */
  act(
    name: string,
    options?: { retry?: number; failUntil?: number; policy?: FailurePolicy; ms?: number; irreversible?: boolean; body?: string },
  ): Promise<unknown>;
  /** A step with no effect that fails while `fails` holds. */
  check(name: string, fails: boolean, policy?: FailurePolicy): Promise<unknown>;
}

/**
 * Builds a scenario's workflow twice over: with each step's compensation
 * inline, and with the same compensations declared by step name.
 */
function flow(
  name: string,
  hooks: Scenario['hooks'],
  world: World,
  o: {
    onFailure?: FailurePolicy;
    undoable: string[];
    /** Steps whose compensation fails until this attempt. */
    flakyUndo?: Record<string, number>;
    /** The step whose compensation fails until the operator fixes the external system. */
    operatorFixed?: string;
  },
  body: (ctx: RunContext<number>, b: Body) => Promise<unknown>,
): Workflow {
  const fixed = () => (o.operatorFixed ? existsSync(join(world.dir, 'fixed')) : true);
  const undoOf = (step: string) => (_r: unknown, io: CompensationIO) => {
    if (io.attempt < (o.flakyUndo?.[step] ?? 0)) throw new Error(`undo of ${step} failed (attempt ${io.attempt})`);
    if (step === o.operatorFixed && !fixed()) throw new Error(`undo of ${step} needs an operator`);
    world.ledger.undo(io.stepKey, step);
  };
  const make = (ctx: RunContext<number>): Body => ({
    act: async (step, a = {}) => {
      const flaky = o.flakyUndo?.[step];
      return ctx.step(
        step,
        async (io: StepIO) => {
          if (a.ms) await pause(a.ms);
          if (io.attempt < (a.failUntil ?? 0)) throw new Error(`${step} failed (attempt ${io.attempt})`);
          return world.ledger.do(io.idempotencyKey, step, a.body);
        },
        {
          ...(hooks === 'inline' && o.undoable.includes(step) && !a.irreversible ? { compensate: undoOf(step) } : {}),
          ...(a.irreversible ? { irreversible: true } : {}),
          ...(a.retry ? { retry: { attempts: a.retry, initialDelayMs: 1 } } : {}),
          ...(flaky ? { compensationRetry: { attempts: flaky + 1, initialDelayMs: 1 } } : {}),
          ...(a.policy ? { onFailure: a.policy } : {}),
        },
      );
    },
    check: (step, fails, policy) =>
      ctx.step(
        step,
        () => {
          if (fails) throw new Error(`${step} failed`);
          return 'ok';
        },
        policy ? { onFailure: policy } : {},
      ),
  });
  return defineWorkflow({
    name: `torture-${name}-${hooks}`,
    initialState: 0,
    apply: (s: number, e) => s + (e.data as number),
    ...(o.onFailure ? { onFailure: o.onFailure } : {}),
    ...(hooks === 'declared' ? { compensations: Object.fromEntries(o.undoable.map((s) => [s, undoOf(s)])) } : {}),
    run: async (ctx) => {
      const out = await body(ctx, make(ctx));
      await ctx.emit({ type: 'Done', data: 1 });
      return out ?? ctx.state;
    },
  });
}

const requested = (events: EventEnvelope[]) =>
  events.some((e) => isRunEvent(e, RunEvents.RollbackRequested) && e.data.trigger.kind === 'requested');

/** A crashed run is driven on; a resting one is over unless the scenario's operator has more to do. */
function operator(more: (state: RunState, world: World) => Move | undefined = () => undefined) {
  return (state: RunState, world: World): Move | undefined => {
    if (!state.info) return { kind: 'start' };
    if (state.info.status === 'running' || state.info.status === 'rolling_back') return { kind: 'drive' };
    return more(state, world);
  };
}

/** Roll back once, by the operator, after the run completed; then resume it. */
function rollbackThenResume(request: RollbackRequest) {
  return operator((state) => {
    if (state.info?.status === 'rolled_back') return { kind: 'resume' };
    if (state.info?.status === 'completed' && !requested(state.events)) return { kind: 'rollback', request };
    return undefined;
  });
}

type Def = Omit<Scenario, 'hooks' | 'workflow'> & {
  workflow: (hooks: Scenario['hooks'], world: World) => Workflow;
};

const defs: Def[] = [
  {
    name: 'plain',
    workflow: (h, w) =>
      flow('plain', h, w, { undoable: ['s1', 's2', 's3'] }, async (_ctx, b) => {
        await b.act('s1');
        await b.act('s2');
        await b.act('s3');
      }),
    next: operator(),
    expect: { status: 'completed', rollbacks: 0, net: ['s1', 's2', 's3'] },
  },
  {
    // Values drawn between steps (written with the next step's start) and sent with the effects: the provider
    // refuses a key reused with other parameters. A sleep between steps, then a rollback past the values.
    name: 'values',
    workflow: (h, w) =>
      flow('values', h, w, { undoable: ['s1', 's2', 's3'] }, async (ctx, b) => {
        const order = await ctx.uuid();
        await b.act('s1', { body: order });
        await ctx.emit({ type: 'Add', data: 2 });
        const at = await ctx.now();
        await ctx.checkpoint('cp');
        await b.act('s2', { body: `${order}@${at}` });
        await ctx.sleep(20);
        await b.act('s3', { body: String(await ctx.random()) });
        await b.check('fragile', ctx.rollbacks.length < 1, { rollbackTo: 'cp' });
      }),
    next: operator(),
    expect: { status: 'completed', rollbacks: 1, net: ['s1', 's2', 's3'] },
  },
  {
    // One rollback, retried; the path after it fails too and is rolled back again.
    name: 'two-rollbacks',
    workflow: (h, w) =>
      flow('two-rollbacks', h, w, { undoable: ['s1', 's2', 's3', 's4'] }, async (ctx, b) => {
        await b.act('s1');
        await ctx.checkpoint('cp');
        await b.act('s2');
        await ctx.emit({ type: 'Add', data: 10 });
        await b.act('s3');
        await b.check('fragile', ctx.rollbacks.length < 2, { rollbackTo: 'cp' });
        await b.act('s4');
      }),
    next: operator(),
    expect: { status: 'completed', rollbacks: 2, net: ['s1', 's2', 's3', 's4'] },
  },
  {
    name: 'compensate-and-fail',
    workflow: (h, w) =>
      flow('compensate-and-fail', h, w, { onFailure: 'compensate-and-fail', undoable: ['s1', 's2'] }, async (ctx, b) => {
        await b.act('s1');
        await ctx.checkpoint('cp');
        await b.act('s2');
        await b.check('breaks', true);
      }),
    next: operator(),
    expect: { status: 'failed', rollbacks: 1, net: [] },
  },
  {
    name: 'rollback-then-fail',
    workflow: (h, w) =>
      flow('rollback-then-fail', h, w, { undoable: ['s1', 's2', 's3'] }, async (ctx, b) => {
        await b.act('s1');
        await ctx.checkpoint('cp');
        await b.act('s2');
        await b.act('s3');
        await b.check('breaks', true, { rollbackTo: 'cp', after: 'fail' });
      }),
    next: operator(),
    expect: { status: 'failed', rollbacks: 1, net: ['s1'] },
  },
  {
    name: 'explicit-label',
    workflow: (h, w) =>
      flow('explicit-label', h, w, { undoable: ['s1', 's2', 's3'] }, async (ctx, b) => {
        await b.act('s1');
        await ctx.checkpoint('cp');
        await b.act('s2');
        await b.act('s3');
      }),
    next: rollbackThenResume({ to: 'cp', reason: 'operator: redo after cp' }),
    expect: { status: 'completed', rollbacks: 1, net: ['s1', 's2', 's3'] },
  },
  {
    name: 'explicit-start',
    workflow: (h, w) =>
      flow('explicit-start', h, w, { undoable: ['s1', 's2'] }, async (ctx, b) => {
        await b.act('s1');
        await ctx.checkpoint('cp');
        await b.act('s2');
      }),
    next: rollbackThenResume({ to: 'start', reason: 'operator: start over' }),
    expect: { status: 'completed', rollbacks: 1, net: ['s1', 's2'] },
  },
  {
    name: 'parallel',
    racing: true,
    workflow: (h, w) =>
      flow('parallel', h, w, { undoable: ['a', 'b', 'c'] }, async (ctx, b) => {
        await ctx.checkpoint('cp');
        const first = ctx.rollbacks.length === 0;
        await Promise.all([
          b.act('a', { ms: 2, failUntil: first ? 9 : 0, policy: { rollbackTo: 'cp' } }),
          b.act('b', { ms: 15 }),
          b.act('c', { ms: 5 }),
        ]);
      }),
    next: operator(),
    expect: { status: 'completed', rollbacks: 1, net: ['a', 'b', 'c'] },
  },
  {
    name: 'flaky',
    workflow: (h, w) =>
      flow('flaky', h, w, { undoable: ['s1', 's2', 's3'], flakyUndo: { s3: 2 } }, async (ctx, b) => {
        await b.act('s1');
        await ctx.checkpoint('cp');
        await b.act('s2', { retry: 3, failUntil: 3 });
        await b.act('s3');
        await b.check('fragile', ctx.rollbacks.length < 1, { rollbackTo: 'cp' });
      }),
    next: operator(),
    expect: { status: 'completed', rollbacks: 1, net: ['s1', 's2', 's3'] },
  },
  {
    name: 'operator-retry',
    workflow: (h, w) =>
      flow('operator-retry', h, w, { undoable: ['s1', 's2', 's3'], operatorFixed: 's2' }, async (ctx, b) => {
        await b.act('s1');
        await ctx.checkpoint('cp');
        await b.act('s2');
        await b.act('s3');
        await b.check('fragile', ctx.rollbacks.length < 1, { rollbackTo: 'cp' });
      }),
    next: operator((state, world) => {
      if (state.info?.status !== 'needs_attention') return undefined;
      writeFileSync(join(world.dir, 'fixed'), 'the airline API is back\n');
      return { kind: 'retry' };
    }),
    expect: { status: 'completed', rollbacks: 1, net: ['s1', 's2', 's3'] },
  },
  {
    name: 'operator-resolve',
    workflow: (h, w) =>
      flow('operator-resolve', h, w, { undoable: ['s1', 's2', 's3'], operatorFixed: 's2' }, async (ctx, b) => {
        await b.act('s1');
        await ctx.checkpoint('cp');
        await b.act('s2');
        await b.act('s3');
        await b.check('fragile', ctx.rollbacks.length < 1, { rollbackTo: 'cp' });
      }),
    next: operator((state, world) => {
      const attention = state.info?.status === 'needs_attention' ? state.info.attention : undefined;
      if (!attention) return undefined;
      // The operator undoes the effect by hand at the provider (a repeat is deduplicated), then says so.
      world.ledger.undo(attention.stepKey, attention.step, 'by hand');
      return { kind: 'resolve' };
    }),
    expect: { status: 'completed', rollbacks: 1, net: ['s1', 's2', 's3'] },
  },
  {
    name: 'wait-signal',
    workflow: (h, w) =>
      flow('wait-signal', h, w, { undoable: ['s1', 's2'] }, async (ctx, b) => {
        await b.act('s1');
        await ctx.checkpoint('cp');
        await ctx.waitFor<string>('go');
        await b.act('s2');
      }),
    next: operator((state) => (state.info?.status === 'waiting' ? { kind: 'signal', name: 'go', payload: 'go', id: 'go-1' } : undefined)),
    expect: { status: 'completed', rollbacks: 0, net: ['s1', 's2'] },
  },
  {
    // A reviewer rejects the first payment (a trigger: back to cp, compensating), then approves the retry.
    name: 'approval-rejected',
    workflow: (h, w) =>
      flow('approval-rejected', h, w, { undoable: ['s1', 's2', 's3'], onFailure: { rollbackTo: 'cp' } }, async (ctx, b) => {
        await b.act('s1');
        await ctx.checkpoint('cp');
        await b.act('s2');
        await ctx.approve('pay');
        await b.act('s3');
      }),
    next: operator((state) => {
      const approval = state.info?.status === 'waiting' ? state.info.waiting?.approval : undefined;
      if (!approval) return undefined;
      const path = state.info?.rollbacks.length ?? 0;
      return { kind: 'decide', label: approval.label, approved: path > 0, id: `${approval.label}-on-path-${path}` };
    }),
    expect: { status: 'completed', rollbacks: 1, net: ['s1', 's2', 's3'] },
  },
  {
    // The operator rolls back past an irreversible step, accepting it: its effect stands, the rest is undone.
    name: 'irreversible-past',
    workflow: (h, w) =>
      flow('irreversible-past', h, w, { undoable: ['s1', 's3'] }, async (ctx, b) => {
        await b.act('s1');
        await ctx.checkpoint('cp');
        await b.act('s2', { irreversible: true });
        await b.act('s3');
      }),
    next: rollbackThenResume({ to: 'cp', reason: 'operator: again, the email stands', past: 'irreversible' }),
    expect: { status: 'completed', rollbacks: 1, net: ['s1', 's2', 's2', 's3'] },
  },
  {
    name: 'rollback-not-resume',
    workflow: (h, w) =>
      flow('rollback-not-resume', h, w, { undoable: ['s1', 's2', 's3'] }, async (ctx, b) => {
        await b.act('s1');
        await ctx.checkpoint('cp');
        await b.act('s2');
        await b.act('s3');
      }),
    // The operator finds the run stopped mid-way (or finished) and rolls it back instead of resuming it.
    next: (state, world) => {
      if (state.info && !requested(state.events) && (state.info.status === 'running' || state.info.status === 'completed'))
        return { kind: 'rollback', request: { to: 'latest', reason: 'operator: back to the latest checkpoint' } };
      if (state.info?.status === 'rolled_back') return { kind: 'resume' };
      return operator()(state, world);
    },
    expect: { status: 'completed', rollbacks: 1, net: ['s1', 's2', 's3'] },
  },
];

/**
 * Three agents, two compensable steps each after "planned"; the payer's charge
 * fails on its first path, so the group rolls back to "planned" together and
 * the operator resumes it. Each agent's `expect` is in `participants`.
 */
export const PARTICIPANTS = ['planner', 'booker', 'payer'] as const;
function agents(hooks: Scenario['hooks'], world: World): GroupDefinition {
  const agent = (name: string) =>
    flow(`group-${name}`, hooks, world, { undoable: ['one', 'two', 'charge'] }, async (ctx, b) => {
      await ctx.checkpoint('planned');
      await b.act('one');
      await b.act('two');
      if (name === 'payer') {
        await b.check('card', ctx.rollbacks.length < 1);
        await b.act('charge');
      }
    });
  return {
    name: `torture-group-${hooks}`,
    participants: PARTICIPANTS.map((name) => ({ name, workflow: agent(name), input: null })),
    onFailure: { rollbackTo: 'planned' },
  };
}
const group: Def = {
  name: 'group',
  workflow: (h, w) => (agents(h, w).participants[0] as { workflow: Workflow }).workflow,
  next: (state) => {
    if (!state.group) return { kind: 'start-group' };
    if (state.group.status === 'completed') return undefined;
    return { kind: 'resume-group' };
  },
  // Per agent; the payer also keeps its charge.
  expect: { status: 'completed', rollbacks: 1, net: ['one', 'two'] },
};

export const scenarios: Scenario[] = [...defs, group].flatMap((d) =>
  (['inline', 'declared'] as const).map((hooks) => ({
    ...d,
    hooks,
    workflow: (world: World) => d.workflow(hooks, world),
    ...(d === group ? { group: (world: World) => agents(hooks, world) } : {}),
  })),
);

export function scenario(name: string, hooks: string): Scenario {
  const found = scenarios.find((s) => s.name === name && s.hooks === hooks);
  if (!found) throw new Error(`no scenario ${name}/${hooks}`);
  return found;
}

/** Carries out one move of the operator's. */
export async function play(
  runtime: Runtime,
  workflow: Workflow,
  runId: string,
  move: Move,
  group?: { coordinator: Coordinator; definition: GroupDefinition },
): Promise<void> {
  switch (move.kind) {
    case 'start-group':
      await group?.coordinator.start(group.definition, runId);
      return;
    case 'resume-group':
      await group?.coordinator.resume(runId);
      return;
    case 'start':
      await runtime.start(workflow, null, { runId });
      return;
    case 'drive':
      await runtime.drive(runId);
      return;
    case 'rollback':
      await runtime.rollback(runId, move.request);
      return;
    case 'resume':
      await runtime.resume(runId);
      return;
    case 'retry':
      await runtime.retryCompensation(runId, 'fixed');
      return;
    case 'resolve':
      await runtime.resolveByHand(runId, 'undone by hand at the provider');
      return;
    case 'signal':
      await runtime.signal(runId, move.name, move.payload, { actor: 'operator', id: `${runId}:${move.id}` });
      return;
    case 'decide': {
      const signal = { actor: 'reviewer', id: `${runId}:${move.id}` };
      if (move.approved) await runtime.approve(runId, move.label, signal);
      else await runtime.reject(runId, move.label, { reason: 'not this one', ...signal });
      return;
    }
  }
}
