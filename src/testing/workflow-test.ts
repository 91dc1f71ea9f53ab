import type { EventEnvelope } from '../events/envelope.js';
import { isRunEvent, RunEvents } from '../runtime/events.js';
import { effectiveEvents, isDomainEvent } from '../runtime/journal.js';
import { Closures } from '../runtime/rollback/closures.js';
import { nextAction, type ProtocolAction } from '../runtime/rollback/decide.js';
import { type ExportedRun, importRun, parseExportedRun, RUN_EXPORT_FORMAT, readExportedRun } from '../runtime/run-export.js';
import type { RunInfo } from '../runtime/run-info.js';
import { streamOf } from '../runtime/run-log.js';
import { createRuntime, type RollbackRequest, type Runtime, type RuntimeOptions, type StartOptions } from '../runtime/runtime.js';
import type { DomainEvent, Workflow } from '../runtime/workflow.js';
import { openStore } from '../store/open.js';
import type { EventStore } from '../store/types.js';
import { FakeClock } from './fake-clock.js';
import { type StubCall, type Stubs, stubbed } from './stubs.js';

// Workflow tests as specifications: given a workflow, stubbed step results
// (or a recorded run), when it runs / resumes / rolls back / gets any other
// request, then its status, state, events and compensations. Real runtime,
// real in-memory store, fake clock.

/** A recorded run to start from: a file written by `rewind export`, its contents, or a run's events. */
export type Recorded = string | ExportedRun | readonly EventEnvelope[];

export interface Given extends Stubs {
  /** Runs already in the log before the test acts (see `Recorded`). */
  recorded?: Recorded | readonly Recorded[];
  /** Where fake time starts. Default 2026-01-01T00:00:00Z. */
  now?: number | string | Date;
  /** Default a fresh in-memory store. */
  store?: EventStore;
  /** Passed on to createRuntime. */
  runtime?: Omit<RuntimeOptions, 'store' | 'workflows' | 'clock' | 'queue'>;
}

/** A run as the test sees it after acting: its RunInfo, plus what happened, in forms easy to compare. */
export interface TestRun<S = unknown, O = unknown> extends RunInfo<S, O> {
  /** Every event of the run's stream, in order, rolled-back ones included. */
  events: EventEnvelope[];
  /** Their types, in order. */
  types: string[];
  /** The domain events that count (ctx.emit's, not undone by a rollback), in order. */
  emitted: DomainEvent[];
  /** The steps that count and completed, in order. */
  steps: string[];
  /** The steps whose compensation completed, in the order they ran (newest step first in each rollback). */
  compensated: string[];
  /** Fake time the action took, in ms. */
  elapsedMs: number;
}

export interface TestStartOptions extends Pick<StartOptions, 'runId'> {
  /** Stop the run, as a process killed right after an append, once an event it appends matches (see stepCompleted / stepStarted). */
  crashAfter?: (event: EventEnvelope) => boolean;
}

/**
 * Given a workflow (several, for several versions) and what its steps do,
 * a harness to act on its runs and look at them. Each action resolves when
 * the run rests, however much fake time that takes.
 *
 *   const t = testWorkflow(order, { steps: { ship: fails('out of stock') } });
 *   const run = await t.start({ amount: 90 });
 *   expect(run).toMatchObject({ status: 'failed', compensated: ['charge'] });
 */
export function testWorkflow<I, S, O>(workflow: Workflow<I, S, any, O> | Workflow[], given: Given = {}): WorkflowTest<I, S, O> {
  return new WorkflowTest(Array.isArray(workflow) ? workflow : [workflow], given);
}

export class WorkflowTest<I = unknown, S = unknown, O = unknown> {
  readonly clock: FakeClock;
  /** Every call of a step's function or an undo hook, in order: what the world saw. */
  readonly calls: StubCall[] = [];
  readonly #workflows: Workflow[];
  readonly #given: Given;
  #ready: Promise<{ store: EventStore; runtime: Runtime }> | undefined;

  constructor(workflows: Workflow[], given: Given) {
    this.#given = given;
    this.clock = new FakeClock(given.now === undefined ? {} : { now: given.now });
    this.#workflows = workflows.map((w) => stubbed(w, given, this.calls));
  }

  /** The store, once the recorded runs are in it. */
  async store(): Promise<EventStore> {
    return (await this.#setUp()).store;
  }

  /** The runtime the actions go through. */
  async runtime(): Promise<Runtime> {
    return (await this.#setUp()).runtime;
  }

  /** When it runs: starts a run under the workflow registered last (the first given, when one). */
  async start(input: I, options: TestStartOptions = {}): Promise<TestRun<S, O>> {
    const { store, runtime } = await this.#setUp();
    const workflow = this.#workflows.at(-1) as Workflow;
    const runId = options.runId ?? `${workflow.name}-${(await store.listStreams({ prefix: 'run-' })).length + 1}`;
    const crashAfter = options.crashAfter;
    if (!crashAfter) return this.act(runId, () => runtime.start(workflow, input, { runId }));
    return this.act(runId, async () => {
      const crashing = createRuntime({
        ...this.#given.runtime,
        store: crashingStore(store, crashAfter),
        workflows: this.#workflows,
        clock: this.clock,
      });
      await crashing.start(workflow, input, { runId }).catch((error: unknown) => {
        if (!(error instanceof SimulatedCrash)) throw error;
      });
      await crashing.close();
    });
  }

  /** When it resumes (after a crash, or a rollback that stopped). */
  resume(runId: string): Promise<TestRun<S, O>> {
    return this.act(runId, (runtime) => runtime.resume(runId));
  }

  /** When an operator rolls it back. */
  rollback(runId: string, request: RollbackRequest): Promise<TestRun<S, O>> {
    return this.act(runId, (runtime) => runtime.rollback(runId, request));
  }

  cancel(runId: string, reason?: string): Promise<TestRun<S, O>> {
    return this.act(runId, (runtime) => runtime.cancel(runId, reason));
  }

  retryCompensation(runId: string, note?: string): Promise<TestRun<S, O>> {
    return this.act(runId, (runtime) => runtime.retryCompensation(runId, note));
  }

  resolveByHand(runId: string, note: string): Promise<TestRun<S, O>> {
    return this.act(runId, (runtime) => runtime.resolveByHand(runId, note));
  }

  /**
   * When anything else happens to it: `act` runs what it is given against the
   * runtime, then reads the run. Requests the kit has no shortcut for go
   * through here, e.g. a signal once the runtime takes them:
   * `t.act(runId, (runtime) => runtime.signal(runId, 'approved', { by: 'ada' }))`.
   */
  async act(runId: string, action: (runtime: Runtime) => Promise<unknown>): Promise<TestRun<S, O>> {
    const { runtime } = await this.#setUp();
    const from = this.clock.now();
    await action(runtime);
    await runtime.wait(runId);
    return this.#read(runId, this.clock.now() - from);
  }

  /** Then: the run as it stands, without acting on it. */
  read(runId: string): Promise<TestRun<S, O>> {
    return this.#read(runId, 0);
  }

  /** What the rollback protocol's decider says comes next for the run as it stands (see nextActionOf). */
  async nextAction(runId: string): Promise<ProtocolAction> {
    const { store } = await this.#setUp();
    const events = await store.read(streamOf(runId));
    const started = events[0];
    const name = started && isRunEvent(started, RunEvents.RunStarted) ? started.data : undefined;
    const workflow = this.#workflows.find((w) => w.name === name?.workflow && w.version === name?.workflowVersion);
    return nextActionOf(events, workflow ? { workflow } : {});
  }

  async #read(runId: string, elapsedMs: number): Promise<TestRun<S, O>> {
    const { store, runtime } = await this.#setUp();
    const info = (await runtime.get(runId)) as RunInfo<S, O>;
    const events = await store.read(streamOf(runId));
    const effective = effectiveEvents(events);
    return {
      ...info,
      events,
      types: events.map((e) => e.type),
      emitted: effective.filter(isDomainEvent).map((e) => ({ type: e.type, data: e.data })),
      steps: effective.flatMap((e) => (isRunEvent(e, RunEvents.StepCompleted) ? [e.data.name] : [])),
      compensated: events.flatMap((e) => (isRunEvent(e, RunEvents.CompensationCompleted) ? [e.data.step] : [])),
      elapsedMs,
    };
  }

  #setUp(): Promise<{ store: EventStore; runtime: Runtime }> {
    this.#ready ??= (async () => {
      const store = this.#given.store ?? (await openStore('memory:'));
      const recorded = this.#given.recorded;
      const runs = recorded === undefined ? [] : isList(recorded) ? recorded : [recorded];
      for (const run of runs) await importRun(store, exportedOf(run));
      const runtime = createRuntime({ ...this.#given.runtime, store, workflows: this.#workflows, clock: this.clock });
      return { store, runtime };
    })();
    return this.#ready;
  }
}

/**
 * The rollback protocol's decider on a run's events: what it does next
 * (rollback/decide.ts). With the workflow, its declared compensations count;
 * a step whose hooks neither its events nor the workflow name gets 'replay'.
 */
export function nextActionOf(
  events: readonly EventEnvelope[],
  options: { workflow?: Workflow; resume?: boolean; compensationRetry?: RuntimeOptions['compensationRetry'] } = {},
): ProtocolAction {
  const closures = new Closures(options.workflow ?? {});
  return nextAction(events, {
    hooks: (step) => closures.hooks(step),
    compensationRetry: options.compensationRetry ?? { attempts: 3, initialDelayMs: 100 },
    ...(options.resume ? { resume: true } : {}),
  });
}

/**
 * A predicate for `crashAfter`: the step's end is recorded. It is written with
 * what comes next (the next step's start, or the run's end for the last
 * step), so the crash comes after that too; `stepStarted` of the next step
 * crashes at the same append.
 */
export const stepCompleted = (name: string) => (e: EventEnvelope) => isRunEvent(e, RunEvents.StepCompleted) && e.data.name === name;

/** A predicate for `crashAfter`: the step's start is recorded, its function not run yet. */
export const stepStarted = (name: string) => (e: EventEnvelope) => isRunEvent(e, RunEvents.StepStarted) && e.data.name === name;

/** What a process killed right after an append leaves: the events are in the log, and it writes nothing more. */
export class SimulatedCrash extends Error {
  constructor() {
    super('simulated crash right after an append');
  }
}

function crashingStore(store: EventStore, after: (event: EventEnvelope) => boolean): EventStore {
  let dead = false;
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'append') {
        return async (...args: Parameters<EventStore['append']>) => {
          if (dead) throw new SimulatedCrash();
          const result = await target.append(...args);
          if (result.events.some(after)) {
            dead = true;
            throw new SimulatedCrash();
          }
          return result;
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

function isList(recorded: Recorded | readonly Recorded[]): recorded is readonly Recorded[] {
  return Array.isArray(recorded) && (recorded.length === 0 || !isEnvelope(recorded[0]));
}

function isEnvelope(value: unknown): value is EventEnvelope {
  return typeof value === 'object' && value !== null && 'streamId' in value && 'type' in value;
}

/** A recorded run in the export's shape (read from its file when given as a path), checked: a typed error when it is not a whole run. */
export function exportedOf(recorded: Recorded): ExportedRun {
  if (typeof recorded === 'string') return readExportedRun(recorded);
  if (!Array.isArray(recorded)) return parseExportedRun(recorded);
  const events = recorded as readonly EventEnvelope[];
  const runId = (events[0]?.data as { runId?: unknown } | undefined)?.runId;
  return parseExportedRun(
    { format: RUN_EXPORT_FORMAT, formatVersion: 1, runId, exportedAt: new Date(0).toISOString(), events: [...events] },
    'the recorded events',
  );
}
