import { canonicalJson } from '../events/canonical.js';
import type { Json } from '../events/envelope.js';
import { ConcurrencyError, ValidationError } from '../events/errors.js';
import { uuidv7 } from '../events/ids.js';
import type { EventStore } from '../store/types.js';
import { type BreakerOptions, type BreakerState, Breakers } from './breaker.js';
import { type Clock, systemClock } from './clock.js';
import { type DriverContext, driveRun } from './driver.js';
import { RunConflictError, RunNotFoundError, RunStateError, UnknownWorkflowError } from './errors.js';
import { isRunEvent, RunEvents, type RunStartedData } from './events.js';
import { type ForkOptions, writeFork } from './fork.js';
import { statusAfter } from './journal.js';
import { historyOf, type RunHistory } from './model/history.js';
import type { At } from './model/point.js';
import type { RunDiff } from './model/run-diff.js';
import type { StateAt } from './model/state-at.js';
import type { RetryOptions } from './policy.js';
import { type ReplayCheckOptions, type ReplayReport, replayCheck } from './replay-check.js';
import {
  appendChecked,
  blockedStep,
  checkIrreversible,
  checkRollbackRequest,
  type RollbackRequest,
  resolveTarget,
} from './rollback/commands.js';
import { infoOf, MAX_RUNS_PAGE, type RunFilter, type RunInfo, type RunSummary, readRunInfo, requireRun, runSummaries } from './run-info.js';
import { streamOf } from './run-log.js';
import type { RunQueue, RunRequest } from './run-queue.js';
import { postSignal } from './signals.js';
import { jsonOrThrow } from './step-attempt.js';
import { diffStoredRuns, readStateAt } from './time-travel.js';
import { WorkflowRegistry } from './versioning.js';
import type { Workflow } from './workflow.js';

export { MAX_RUNS_PAGE, type RollbackRequest, type RunFilter, type RunInfo, type RunSummary };

export interface RuntimeOptions {
  store: EventStore;
  workflows?: Workflow[];
  clock?: Clock;
  /** Defaults for every breaker, and per-name settings. */
  breakerDefaults?: BreakerOptions;
  breakers?: Record<string, BreakerOptions>;
  /** Retries of a compensation before the run needs attention. Default 3 attempts from 100 ms. */
  compensationRetry?: RetryOptions;
  /**
   * Workers drive the runs (see worker.ts): `start(…, { detach: true })`, resume,
   * rollback, retryCompensation and resolveByHand record the request in the
   * log, queue the run and return without driving it here.
   */
  queue?: RunQueue;
}

/** How long a run queued ahead of its first event waits before a worker may look for it (see start()). */
const HANDOFF_GRACE_MS = 30_000;

export interface SignalOptions {
  /** Who sends it, recorded with it (and with the wait it answers). */
  actor?: string;
  /** Sending the same id twice sends one signal. */
  id?: string;
}

export interface StartOptions {
  /** Starting the same id twice is idempotent (same workflow and input) and joins the run. */
  runId?: string;
  /** Return once the run is recorded; `wait(runId)` settles when it stops. */
  detach?: boolean;
}

interface Active {
  promise: Promise<RunInfo>;
  controller: AbortController;
  pause: boolean;
}

const RUN_ID = /^[A-Za-z0-9_.:@-]{1,200}$/;

/** @internal */
export const RUNTIME_INTERNALS = Symbol('rewind.runtime.internals');
/** @internal */
export interface RuntimeInternals extends DriverContext {
  hold(runId: string): Promise<void>;
}

export function createRuntime(options: RuntimeOptions): Runtime {
  return new Runtime(options);
}

/**
 * The facade over runs: starts them, reads them, takes operators' requests,
 * and drives each run this process holds (driver.ts) or hands it to the
 * workers through the queue. Many runtimes (processes) may share one store;
 * the expected version on every append is the only lock they need.
 */
export class Runtime {
  readonly store: EventStore;
  readonly #workflows = new WorkflowRegistry();
  readonly #active = new Map<string, Active>();
  readonly #queue: RunQueue | undefined;
  readonly #driver: DriverContext;
  /** Without a queue: runs parked on a wait with a timeout, woken here when it runs out (unref'd: they keep no process alive). */
  readonly #wakeups = new Map<string, NodeJS.Timeout>();

  constructor(options: RuntimeOptions) {
    if (typeof options?.store?.append !== 'function')
      throw new ValidationError(
        'createRuntime needs a store',
        [],
        "open one first: createRuntime({ store: await openStore('sqlite:./rewind.db') })",
      );
    this.store = options.store;
    const clock = options.clock ?? systemClock;
    const breakers = new Breakers(this.store, () => clock.now(), options.breakerDefaults);
    for (const [name, o] of Object.entries(options.breakers ?? {})) breakers.configure(name, o);
    this.#driver = {
      store: this.store,
      workflow: (name, version) => this.#workflows.get(name, version),
      clock,
      breakers,
      compensationRetry: options.compensationRetry ?? { attempts: 3, initialDelayMs: 100 },
    };
    this.#queue = options.queue;
    for (const workflow of options.workflows ?? []) this.register(workflow);
  }

  /**
   * Adds a workflow's code. Registering another version of a registered
   * workflow keeps the ones before: a run goes on under the version it
   * started under until it ends, and new runs start under the version
   * registered last (versioning.ts).
   */
  register(workflow: Workflow): this {
    this.#workflows.register(workflow);
    return this;
  }

  configureBreaker(name: string, options: BreakerOptions): void {
    this.#driver.breakers.configure(name, options);
  }

  breaker(name: string): Promise<BreakerState> {
    return this.#driver.breakers.state(name);
  }

  async start<I, S, O>(workflow: Workflow<I, S, any, O> | string, input: I, options: StartOptions = {}): Promise<RunInfo<S, O>> {
    const wf = typeof workflow === 'string' ? this.#workflows.get(workflow) : workflow;
    if (typeof workflow !== 'string') this.register(wf);
    let value: unknown = input;
    if (wf.input) {
      const parsed = wf.input.safeParse(input);
      if (!parsed.success) {
        throw new ValidationError(
          `input of workflow "${wf.name}" is invalid`,
          parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`),
        );
      }
      value = parsed.data;
    }
    value ??= null;
    jsonOrThrow(value, `input of workflow "${wf.name}"`);
    const runId = options.runId ?? uuidv7();
    if (typeof runId !== 'string' || !RUN_ID.test(runId)) {
      throw new ValidationError(`invalid run id ${JSON.stringify(runId)}`, [], 'use 1-200 letters, digits and _ . : @ -');
    }
    const data: RunStartedData = { runId, workflow: wf.name, workflowVersion: wf.version, input: value as Json };
    if (!options.detach) {
      const created = await this.#create(runId, data);
      if (created) return created as RunInfo<S, O>;
    }
    const queue = options.detach ? this.#queue : undefined;
    // Queued before the append (due only after a grace), so a crash between the append and the enqueue below cannot leave a run no worker finds.
    await queue?.enqueue(runId, wf.name, 'start', { delayMs: HANDOFF_GRACE_MS });
    try {
      await this.store.append(streamOf(runId), [{ type: RunEvents.RunStarted, data }], { expectedVersion: 'no_stream' });
    } catch (error) {
      if (!(error instanceof ConcurrencyError)) throw error;
      await this.#sameStart(data);
    }
    if (queue) {
      await queue.enqueue(runId, wf.name, 'start');
      return (await this.get(runId)) as RunInfo<S, O>;
    }
    const promise = this.#drive(runId, 'drive');
    if (options.detach) {
      promise.catch(() => {});
      return (await this.get(runId)) as RunInfo<S, O>;
    }
    return (await promise) as RunInfo<S, O>;
  }

  /** Continues a run from where its log ends: after a crash, a rollback that stopped, or an operator's fix. */
  resume(runId: string): Promise<RunInfo> {
    return this.#handOff(runId, 'resume');
  }

  /**
   * What a worker does with a run it claimed: drives it from where its log ends,
   * like resume(), except that a run rolled back with after 'stop' stays stopped.
   */
  drive(runId: string): Promise<RunInfo> {
    return this.#drive(runId, 'drive');
  }

  /** Stops driving one run without writing anything (its steps see an aborted signal): a worker that lost the run's lease lets go. */
  async abandon(runId: string, reason = 'run abandoned'): Promise<void> {
    const active = this.#active.get(runId);
    if (!active) return;
    active.pause = true;
    active.controller.abort(new Error(reason));
    await active.promise.catch(() => {});
  }

  /** Settles when this runtime stops driving the run (at once when it is not driving it). */
  async wait(runId: string): Promise<RunInfo> {
    const active = this.#active.get(runId);
    if (active) return active.promise;
    return this.get(runId);
  }

  /** The run as its newest checkpoint and the events after it tell (see run-info.ts). */
  async get<S = unknown, O = unknown>(runId: string): Promise<RunInfo<S, O>> {
    return (await readRunInfo(this.store, runId, (name, version) => this.#workflows.reducer(name, version))) as RunInfo<S, O>;
  }

  // --- Time travel (the run model in model/; the reads in time-travel.ts, forks in fork.ts) ---

  /** Every event with its effective / rolled-back mark, the checkpoints, and the rollbacks and why. */
  async history(runId: string): Promise<RunHistory> {
    const events = await this.store.read(streamOf(runId));
    if (events.length === 0) throw new RunNotFoundError(runId);
    return historyOf(events);
  }

  /** The state as it was at a version, a time or a checkpoint label: a later rollback does not change it. */
  stateAt<S = unknown>(runId: string, at: At): Promise<StateAt<S>> {
    return readStateAt<S>(this.store, runId, (name, version) => this.#reducer(name, version), at);
  }

  /** A new run with this one's history up to `at` (default its end), continued under other input or code like a start. */
  async fork(runId: string, options: ForkOptions = {}): Promise<RunInfo> {
    if (options.workflow && typeof options.workflow !== 'string') this.register(options.workflow);
    const forkId = await writeFork(this.store, runId, options, (name, version) => this.#workflows.get(name, version));
    if (options.detach && !this.#queue) {
      this.#drive(forkId, 'drive').catch(() => {});
      return this.get(forkId);
    }
    return this.#handOff(forkId, 'start');
  }

  /** The first divergent effective event of two runs, and a structural diff of their states (at the ends, or at `at`). */
  diff(a: string, b: string, options: { at?: At | [At, At] } = {}): Promise<RunDiff> {
    return diffStoredRuns(this.store, a, b, options, (name, version) => this.#workflows.reducer(name, version));
  }

  /** @internal What coordinator.ts needs to carry out a participant's part of a coordinated rollback. */
  [RUNTIME_INTERNALS](): RuntimeInternals {
    return {
      ...this.#driver,
      // As rollback() does: a run this runtime drives stops at its next ctx call, so no step completes unrecorded.
      hold: (runId) => this.#hold(runId),
    };
  }

  /** Every run in id order that matches the filter. */
  async list(filter: RunFilter = {}): Promise<RunSummary[]> {
    const out: RunSummary[] = [];
    for await (const summary of runSummaries(this.store, filter, undefined, MAX_RUNS_PAGE)) out.push(summary);
    return out;
  }

  /**
   * One page of `list`: at most `limit` runs (default 100) with ids after
   * `after`, and `next`, the id to pass as `after` for the following page, when
   * there is one. Reads only as far as the page and one more match.
   */
  async listPage(options: RunFilter & { after?: string; limit?: number } = {}): Promise<{ runs: RunSummary[]; next?: string }> {
    const { after, limit = 100, ...filter } = options;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_RUNS_PAGE)
      throw new ValidationError(`listPage: limit must be an integer from 1 to ${MAX_RUNS_PAGE}, got ${String(limit)}`);
    if (after !== undefined && typeof after !== 'string')
      throw new ValidationError('listPage: after must be a run id (the "next" of the previous page)');
    const runs: RunSummary[] = [];
    // Unfiltered, every run stream is a match: list no more of them than the page needs.
    const batch = filter.status || filter.workflow ? MAX_RUNS_PAGE : limit + 1;
    for await (const summary of runSummaries(this.store, filter, after, batch)) {
      if (runs.length === limit) return { runs, next: (runs.at(-1) as RunSummary).runId };
      runs.push(summary);
    }
    return { runs };
  }

  /**
   * Sends a signal to a run: kept in its mailbox until a `ctx.waitFor(name)`
   * uses it (now, or when the run gets there), and wakes the run if it waits.
   * `actor` names the sender in the log; the same `id` twice is one signal.
   */
  async signal(runId: string, name: string, payload?: unknown, options: SignalOptions = {}): Promise<RunInfo> {
    if (typeof name !== 'string' || name.length === 0) throw new ValidationError('a signal needs a non-empty name');
    if (options.actor !== undefined && (typeof options.actor !== 'string' || options.actor.length === 0))
      throw new ValidationError('actor must be a non-empty string naming who sends the signal');
    const value = payload === undefined ? null : payload;
    jsonOrThrow(value, `payload of signal "${name}"`);
    const tail = await requireRun(this.store, runId);
    const status = statusAfter(tail);
    if (status === 'completed' || status === 'failed' || status === 'cancelled')
      throw new RunStateError(runId, status, `take signal "${name}"`, 'a run that has ended waits for nothing; start a new one');
    await postSignal(this.store, runId, {
      name,
      payload: value as Json,
      ...(options.actor ? { actor: options.actor } : {}),
      ...(options.id ? { id: options.id } : {}),
    });
    // Driven here already: its pass reads the mailbox when it reaches the wait.
    if (this.#active.has(runId)) return this.get(runId);
    return this.#handOff(runId, 'signal');
  }

  /** A reviewer's yes to `ctx.approve(label)`: the run goes on. */
  async approve(runId: string, label: string, options: { reason?: string } & SignalOptions = {}): Promise<RunInfo> {
    const { reason, ...rest } = options;
    return this.signal(runId, `approval:${label}`, { approved: true, ...(reason === undefined ? {} : { reason }) }, rest);
  }

  /** A reviewer's no to `ctx.approve(label)`: a trigger (kind 'rejected') that goes through the run's policy. */
  async reject(runId: string, label: string, options: { reason: string } & SignalOptions): Promise<RunInfo> {
    if (typeof options?.reason !== 'string' || options.reason.trim() === '') throw new ValidationError('a rejection needs a reason');
    const { reason, ...rest } = options;
    return this.signal(runId, `approval:${label}`, { approved: false, reason }, rest);
  }

  async cancel(runId: string, reason = 'cancelled'): Promise<RunInfo> {
    await appendChecked(
      this.store,
      runId,
      ['running', 'rolled_back'],
      'cancel',
      (status) =>
        status === 'waiting'
          ? 'a waiting run is not cancelled: send the signal it waits for (signal / approve / reject), or let its wait time out'
          : status === 'rolling_back' || status === 'needs_attention'
            ? 'a rollback in progress must finish first (retryCompensation / resolveByHand)'
            : 'it has ended: there is nothing left to cancel',
      () => [{ type: RunEvents.RunCancelled, data: { reason } }],
    );
    const active = this.#active.get(runId);
    if (active) {
      active.controller.abort(new Error(`run cancelled: ${reason}`));
      await active.promise.catch(() => {});
    }
    return this.get(runId);
  }

  /**
   * An explicit rollback: the request is recorded (stages 1-2), then carried
   * out like any other (driver.ts). A run this runtime is driving is first
   * paused at its next ctx call, so no step of it starts under the request;
   * a step left open by a crash is settled by the protocol (rollback/decide.ts).
   */
  async rollback(runId: string, request: RollbackRequest): Promise<RunInfo> {
    const after = checkRollbackRequest(request);
    await this.#hold(runId);
    await appendChecked(
      this.store,
      runId,
      ['running', 'rolled_back', 'completed', 'failed'],
      'roll back',
      (status) =>
        status === 'waiting'
          ? 'a waiting run is not rolled back: send the signal it waits for (signal / approve / reject), or let its wait time out'
          : status === 'cancelled'
            ? 'a cancelled run stays as it is'
            : 'resume or resolve the rollback in progress first',
      async (tail) => {
        const target = await resolveTarget(this.store, runId, tail, request.to);
        await checkIrreversible(this.store, runId, target.version, tail, request.past);
        await this.#preQueue(runId, 'rollback');
        const { version: targetVersion, label } = target;
        const past = request.past ? { past: request.past } : {};
        return [
          {
            type: RunEvents.RollbackRequested,
            data: { targetVersion, label, reason: request.reason, trigger: { kind: 'requested' }, after, ...past },
          },
        ];
      },
    );
    return this.#handOff(runId, 'rollback');
  }

  /** Runs the blocked compensation again (fresh retry budget, same idempotency key), then the rest of the rollback. */
  async retryCompensation(runId: string, note?: string): Promise<RunInfo> {
    await appendChecked(
      this.store,
      runId,
      ['needs_attention'],
      'retry a compensation',
      'only a run that needs attention has one to retry',
      async (tail) => {
        await this.#preQueue(runId, 'retry');
        return [{ type: RunEvents.CompensationRetried, data: { stepKey: blockedStep(tail), ...(note ? { note } : {}) } }];
      },
    );
    return this.#handOff(runId, 'retry');
  }

  /** Records that an operator undid the blocked step's effect by hand; the rollback goes on. */
  async resolveByHand(runId: string, note: string): Promise<RunInfo> {
    if (typeof note !== 'string' || note.trim() === '') throw new ValidationError('resolveByHand needs a note saying what was done');
    await appendChecked(
      this.store,
      runId,
      ['needs_attention'],
      'resolve by hand',
      'only a run that needs attention has something to resolve',
      async (tail) => {
        await this.#preQueue(runId, 'resolve');
        return [{ type: RunEvents.ResolvedByHand, data: { stepKey: blockedStep(tail), note } }];
      },
    );
    return this.#handOff(runId, 'resolve');
  }

  /** Stops driving every run (nothing new starts; their steps see an aborted signal) and waits for them to let go. */
  async close(): Promise<void> {
    for (const timer of this.#wakeups.values()) clearTimeout(timer);
    this.#wakeups.clear();
    const active = [...this.#active.values()];
    for (const a of active) a.controller.abort(new Error('runtime closed'));
    await Promise.allSettled(active.map((a) => a.promise));
  }

  /**
   * Replays stored runs against the code registered here without running any
   * effect, and reports every run that would diverge, with the first call
   * where the journal and the code part (replay-check.ts). What `rewind
   * replay` runs before a deploy.
   */
  replayCheck(options: ReplayCheckOptions = {}): Promise<ReplayReport> {
    const { clock, breakers } = this.#driver;
    return replayCheck(this.store, { workflow: (name, version) => this.#workflows.get(name, version), clock, breakers }, options);
  }

  #reducer(name: string, version?: string): Workflow {
    const workflow = this.#workflows.reducer(name, version);
    if (!workflow) throw new UnknownWorkflowError(name);
    return workflow;
  }

  /** A run this runtime drives stops at its next ctx call; settles once it has let go. */
  async #hold(runId: string): Promise<void> {
    const active = this.#active.get(runId);
    if (!active) return;
    active.pause = true;
    await active.promise.catch(() => {});
  }

  /**
   * With a queue the request is already in the log (or, for resume, needs none):
   * the queue only tells the workers the run needs driving.
   */
  async #handOff(runId: string, request: RunRequest): Promise<RunInfo> {
    if (!this.#queue) return this.#drive(runId, request === 'resume' ? 'resume' : 'drive');
    const info = await this.get(runId);
    await this.#queue.enqueue(runId, info.workflow, request);
    return info;
  }

  /**
   * With a queue, once a request is known to be valid and just before it is
   * appended: the run is queued due only after a grace, so a crash between the
   * append and #handOff's enqueue still leaves it to a worker.
   */
  async #preQueue(runId: string, request: RunRequest): Promise<void> {
    if (!this.#queue) return;
    const [first] = await this.store.read(streamOf(runId), { from: 1, to: 1 });
    if (first && isRunEvent(first, RunEvents.RunStarted))
      await this.#queue.enqueue(runId, first.data.workflow, request, { delayMs: HANDOFF_GRACE_MS });
  }

  /** Drives the run again when its wait runs out. */
  #wakeAt(runId: string, at: number): void {
    clearTimeout(this.#wakeups.get(runId));
    const timer = setTimeout(
      () => {
        this.#wakeups.delete(runId);
        this.#drive(runId, 'drive').catch(() => {});
      },
      Math.max(0, at - this.#driver.clock.now()),
    );
    timer.unref();
    this.#wakeups.set(runId, timer);
  }

  /**
   * Creates a run and drives it in one go: its RunStarted is written with its
   * first step, one commit. Undefined when the run is being driven here
   * already (then once that drive is done): the caller goes the usual way,
   * appending RunStarted, which settles who started it and with what.
   */
  async #create(runId: string, data: RunStartedData): Promise<RunInfo | undefined> {
    const driving = this.#active.get(runId);
    if (!driving) return this.#drive(runId, 'drive', data);
    await driving.promise.catch(() => {});
    return undefined;
  }

  /** A start of a run that exists: the same workflow and input join it; anything else is a conflict. */
  async #sameStart(data: RunStartedData): Promise<void> {
    const { runId } = data;
    const [first] = await this.store.read(streamOf(runId), { from: 1, to: 1 });
    const existing = first && isRunEvent(first, RunEvents.RunStarted) ? first.data : undefined;
    if (existing?.workflow !== data.workflow) throw new RunConflictError(runId, `as a run of workflow "${existing?.workflow}"`);
    if (canonicalJson(existing.input) !== canonicalJson(data.input)) throw new RunConflictError(runId, 'with other input');
  }

  /** One driver per run per runtime; a second caller joins the first. */
  #drive(runId: string, mode: 'drive' | 'resume', create?: RunStartedData): Promise<RunInfo> {
    clearTimeout(this.#wakeups.get(runId));
    this.#wakeups.delete(runId);
    const existing = this.#active.get(runId);
    if (existing && !existing.pause) return existing.promise;
    const control = { controller: new AbortController(), pause: false };
    const promise = (async () => {
      const drive = (created?: RunStartedData) =>
        driveRun(this.#driver, runId, {
          signal: control.controller.signal,
          shouldPause: () => control.pause,
          mode,
          ...(created ? { create: created } : {}),
        });
      let result = await drive(create);
      // The run to create was there already, written by another start: the same one is joined.
      if (result.stop === 'exists' && create) {
        await this.#sameStart(create);
        result = await drive();
      }
      const log = 'log' in result ? result.log : undefined;
      if (result.stop === 'waiting' && result.until !== undefined && !this.#queue) this.#wakeAt(runId, result.until);
      const whole =
        log && log.base === 1 ? infoOf(log.started, log.events, (name, version) => this.#workflows.reducer(name, version)) : undefined;
      return whole ?? this.get(runId);
    })().finally(() => {
      if (this.#active.get(runId) === active) this.#active.delete(runId);
    });
    const active: Active = Object.assign(control, { promise });
    this.#active.set(runId, active);
    return active.promise;
  }
}
