import { canonicalJson } from '../events/canonical.js';
import type { EventEnvelope, Json } from '../events/envelope.js';
import { ConcurrencyError, ValidationError } from '../events/errors.js';
import { uuidv7 } from '../events/ids.js';
import type { EventStore } from '../store/types.js';
import { type BreakerOptions, type BreakerState, Breakers } from './breaker.js';
import { type Clock, systemClock } from './clock.js';
import { type Compensator, Halt, jsonOrThrow, Pass } from './context.js';
import {
  CheckpointNotFoundError,
  NonDeterminismError,
  RunConflictError,
  RunNotFoundError,
  RunStateError,
  type SerializedError,
  serializeError,
  UnknownWorkflowError,
} from './errors.js';
import {
  type CheckpointData,
  type CheckpointIndex,
  type NeedsAttentionData,
  type RollbackAfter,
  type RollbackRequestedData,
  type RolledBackData,
  RunEvents,
  type RunStartedData,
  START_LABEL,
} from './events.js';
import { effectiveEvents, foldState, lastAttention, pendingRollback, type RunStatus, rollbacksOf, statusAfter } from './history.js';
import type { RetryOptions } from './policy.js';
import { carryOutRollback, declaredCompensators, undoneSteps } from './rollback.js';
import { RunLog, streamOf } from './run-log.js';
import type { RunQueue, RunRequest } from './run-queue.js';
import {
  type At,
  diffStoredRuns,
  type ForkOptions,
  historyOf,
  type RunDiff,
  type RunHistory,
  readStateAt,
  type StateAt,
  writeFork,
} from './time-travel.js';
import type { RollbackInfo, Workflow } from './workflow.js';

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
/** The largest page listPage() answers (and the most streams it reads from the store's list at once). */
export const MAX_RUNS_PAGE = 1000;

/** A run as it stands. `S` is the workflow's state, `O` what its `run` returns (see `runtime.start`). */
export interface RunInfo<S = unknown, O = unknown> {
  runId: string;
  workflow: string;
  workflowVersion: string;
  status: RunStatus;
  /** The stream's version: how many events the run has. */
  version: number;
  /** Reducer state of the effective history (undefined when this runtime does not know the workflow). */
  state: S;
  input: unknown;
  /** What `run` returned, once the run completed. */
  output?: O;
  error?: SerializedError;
  rollbacks: RollbackInfo[];
  /** Why the run needs attention, when it does. */
  attention?: NeedsAttentionData;
  startedAt: string;
  updatedAt: string;
}

export interface RunSummary {
  runId: string;
  workflow: string;
  status: RunStatus;
  version: number;
  startedAt: string;
  updatedAt: string;
}

export interface RunFilter {
  status?: RunStatus;
  workflow?: string;
}

export interface StartOptions {
  /** Starting the same id twice is idempotent (same workflow and input) and joins the run. */
  runId?: string;
  /** Return once the run is recorded; `wait(runId)` settles when it stops. */
  detach?: boolean;
}

export interface RollbackRequest {
  /** 'latest', 'start', a checkpoint label, or the version of an effective checkpoint. */
  to: 'latest' | 'start' | (string & {}) | number;
  reason: string;
  /** After the rollback: stay rolled back until resume() ('stop', default), continue at once ('retry'), or fail. */
  after?: RollbackAfter;
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
export interface RuntimeInternals {
  workflow(name: string): Workflow;
  clock: Clock;
  breakers: Breakers;
  compensationRetry: RetryOptions;
  hold(runId: string): Promise<void>;
}

export function createRuntime(options: RuntimeOptions): Runtime {
  return new Runtime(options);
}

/**
 * The imperative shell: reads a run's stream, lets the pure parts decide, and
 * appends with the version it read. Many runtimes (processes) may share one
 * store; the expected version on every append is the only lock they need.
 */
export class Runtime {
  readonly store: EventStore;
  readonly #workflows = new Map<string, Workflow>();
  readonly #active = new Map<string, Active>();
  readonly #clock: Clock;
  readonly #breakers: Breakers;
  readonly #compensationRetry: RetryOptions;
  readonly #queue: RunQueue | undefined;

  constructor(options: RuntimeOptions) {
    this.store = options.store;
    this.#clock = options.clock ?? systemClock;
    this.#breakers = new Breakers(this.store, () => this.#clock.now(), options.breakerDefaults);
    for (const [name, o] of Object.entries(options.breakers ?? {})) this.#breakers.configure(name, o);
    this.#compensationRetry = options.compensationRetry ?? { attempts: 3, initialDelayMs: 100 };
    this.#queue = options.queue;
    for (const workflow of options.workflows ?? []) this.register(workflow);
  }

  register(workflow: Workflow): this {
    if (!workflow || typeof workflow.run !== 'function') throw new ValidationError('register() needs a workflow made by defineWorkflow()');
    this.#workflows.set(workflow.name, workflow);
    return this;
  }

  configureBreaker(name: string, options: BreakerOptions): void {
    this.#breakers.configure(name, options);
  }

  breaker(name: string): Promise<BreakerState> {
    return this.#breakers.state(name);
  }

  async start<I, S, O>(workflow: Workflow<I, S, any, O> | string, input: I, options: StartOptions = {}): Promise<RunInfo<S, O>> {
    const wf = typeof workflow === 'string' ? this.#workflow(workflow) : workflow;
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
    const queue = options.detach ? this.#queue : undefined;
    // Queued before the append (due only after a grace), so a crash between the append and the enqueue below cannot leave a run no worker finds.
    await queue?.enqueue(runId, wf.name, 'start', { delayMs: HANDOFF_GRACE_MS });
    try {
      await this.store.append(streamOf(runId), [{ type: RunEvents.RunStarted, data }], { expectedVersion: 'no_stream' });
    } catch (error) {
      if (!(error instanceof ConcurrencyError)) throw error;
      const [first] = await this.store.read(streamOf(runId), { from: 1, to: 1 });
      const existing = first?.data as RunStartedData | undefined;
      if (existing?.workflow !== wf.name) throw new RunConflictError(runId, `as a run of workflow "${existing?.workflow}"`);
      if (canonicalJson(existing.input) !== canonicalJson(value)) throw new RunConflictError(runId, 'with other input');
    }
    if (queue) {
      await queue.enqueue(runId, wf.name, 'start');
      return (await this.get(runId)) as RunInfo<S, O>;
    }
    // Just started (or joined): nothing to finish from the tail, so the one read is the full one.
    const promise = this.#drive(runId, false, false);
    if (options.detach) {
      promise.catch(() => {});
      return (await this.get(runId)) as RunInfo<S, O>;
    }
    return (await promise) as RunInfo<S, O>;
  }

  /** Continues a run from where its log ends: after a crash, a rollback that stopped, or an operator's fix. */
  resume(runId: string): Promise<RunInfo> {
    return this.#handOff(runId, 'resume', true);
  }

  /**
   * What a worker does with a run it claimed: drives it from where its log ends,
   * like resume(), except that a run rolled back with after 'stop' stays stopped.
   */
  drive(runId: string): Promise<RunInfo> {
    return this.#drive(runId, false);
  }

  /** Stops driving one run without writing anything (its steps see an aborted signal): a worker that lost the run's lease lets go. */
  async abandon(runId: string, reason = 'run abandoned'): Promise<void> {
    const active = this.#active.get(runId);
    if (!active) return;
    // Both: the abort reaches a step in flight, the pause stops the code at its next ctx call should a step ignore the abort.
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

  /**
   * Reads the run from its newest Checkpoint (or the target of its newest
   * RolledBack marker) to the end, plus RunStarted: the checkpoint carries the
   * state and the rollbacks before it, so the cost follows the distance to that
   * checkpoint, not the run's length. A run with no checkpoint is read whole.
   */
  async get<S = unknown, O = unknown>(runId: string): Promise<RunInfo<S, O>> {
    const stream = streamOf(runId);
    const newestFirst: EventEnvelope[] = [];
    let start: number | undefined;
    let from: number | undefined;
    let limit = 16;
    while (start === undefined) {
      const page = await this.store.read(stream, { direction: 'backward', ...(from === undefined ? {} : { from }), limit });
      for (const event of page) {
        newestFirst.push(event);
        if (event.type === RunEvents.Checkpoint) start = event.version;
        else if (event.type === RunEvents.RolledBack) start = (event.data as RolledBackData).targetVersion;
        if (start !== undefined) break;
      }
      const oldest = page.at(-1)?.version ?? 1;
      if (oldest <= 1) break;
      from = oldest - 1;
      limit = Math.min(limit * 4, 1000);
    }
    if (newestFirst.length === 0) throw new RunNotFoundError(runId);
    const tail = newestFirst.reverse();
    const lowest = (tail[0] as EventEnvelope).version;
    start = Math.max(1, Math.min(start ?? 1, lowest));
    const window = lowest > start ? [...(await this.store.read(stream, { from: start, to: lowest - 1 })), ...tail] : tail;
    const first = start === 1 ? window[0] : (await this.store.read(stream, { from: 1, to: 1 }))[0];
    const info = first && this.#infoFrom(first, window);
    if (info) return info as RunInfo<S, O>;
    // A checkpoint written before checkpoints carried the rollbacks: only the whole stream has them.
    const events = await this.store.read(stream);
    if (events.length === 0) throw new RunNotFoundError(runId);
    return this.#info(events) as RunInfo<S, O>;
  }

  // --- Time travel (time-travel.ts) ---

  /** Every event with its effective / rolled-back mark, the checkpoints, and the rollbacks and why. */
  async history(runId: string): Promise<RunHistory> {
    const events = await this.store.read(streamOf(runId));
    if (events.length === 0) throw new RunNotFoundError(runId);
    return historyOf(events);
  }

  /** The state as it was at a version, a time or a checkpoint label: a later rollback does not change it. */
  stateAt<S = unknown>(runId: string, at: At): Promise<StateAt<S>> {
    return readStateAt<S>(this.store, runId, (name) => this.#workflow(name), at);
  }

  /** A new run with this one's history up to `at` (default its end), continued under other input or code like a start. */
  async fork(runId: string, options: ForkOptions = {}): Promise<RunInfo> {
    if (options.workflow && typeof options.workflow !== 'string') this.register(options.workflow);
    const forkId = await writeFork(this.store, runId, options, (name) => this.#workflow(name));
    if (options.detach && !this.#queue) {
      this.#drive(forkId, false).catch(() => {});
      return this.get(forkId);
    }
    return this.#handOff(forkId, 'start', false);
  }

  /** The first divergent effective event of two runs, and a structural diff of their states (at the ends, or at `at`). */
  diff(a: string, b: string, options: { at?: At | [At, At] } = {}): Promise<RunDiff> {
    return diffStoredRuns(this.store, a, b, options, (name) => this.#workflows.get(name));
  }

  /** @internal What coordinator.ts needs to carry out a participant's part of a coordinated rollback. */
  [RUNTIME_INTERNALS](): RuntimeInternals {
    return {
      workflow: (name) => this.#workflow(name),
      clock: this.#clock,
      breakers: this.#breakers,
      compensationRetry: this.#compensationRetry,
      // As rollback() does: a run this runtime drives stops at its next ctx call, so no step completes unrecorded.
      hold: async (runId) => {
        const active = this.#active.get(runId);
        if (active) {
          active.pause = true;
          await active.promise.catch(() => {});
        }
      },
    };
  }

  /** Every run in id order that matches the filter. */
  async list(filter: RunFilter = {}): Promise<RunSummary[]> {
    const out: RunSummary[] = [];
    for await (const summary of this.#summaries(filter, undefined, MAX_RUNS_PAGE)) out.push(summary);
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
    for await (const summary of this.#summaries(filter, after, batch)) {
      if (runs.length === limit) return { runs, next: (runs.at(-1) as RunSummary).runId };
      runs.push(summary);
    }
    return { runs };
  }

  /** One RunStarted and one last event per run: the status is decided by the last event alone. */
  async *#summaries(filter: RunFilter, after: string | undefined, batch: number): AsyncGenerator<RunSummary> {
    let from = after === undefined ? undefined : streamOf(after);
    for (;;) {
      const page = await this.store.listStreams({ prefix: 'run-', limit: batch, ...(from ? { after: from } : {}) });
      for (const stream of page) {
        const [first] = await this.store.read(stream.streamId, { from: 1, to: 1 });
        const [last] = await this.store.read(stream.streamId, { direction: 'backward', limit: 1 });
        if (first?.type !== RunEvents.RunStarted || !last) continue;
        const started = first.data as RunStartedData;
        const summary: RunSummary = {
          runId: started.runId,
          workflow: started.workflow,
          status: statusAfter(last.type),
          version: last.version,
          startedAt: first.recordedAt,
          updatedAt: last.recordedAt,
        };
        if ((!filter.status || filter.status === summary.status) && (!filter.workflow || filter.workflow === summary.workflow))
          yield summary;
      }
      if (page.length < batch) return;
      from = page.at(-1)?.streamId;
    }
  }

  async cancel(runId: string, reason = 'cancelled'): Promise<RunInfo> {
    await this.#appendChecked(
      runId,
      ['running', 'rolled_back'],
      'cancel',
      'a rollback in progress must finish first (retryCompensation / resolveByHand)',
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
   * An explicit rollback. The target is found by reading the stream backwards
   * to the newest Checkpoint or RolledBack event, both of which carry the
   * checkpoint index: the cost depends on the distance to that event, not on
   * the length of the run. A run this runtime is driving is first paused at
   * its next ctx call, so no step completes unrecorded under the request.
   */
  async rollback(runId: string, request: RollbackRequest): Promise<RunInfo> {
    if (!request || typeof request.reason !== 'string' || request.reason.trim() === '') {
      throw new ValidationError('a rollback needs a reason', [], "runtime.rollback(runId, { to: 'latest', reason: 'why' })");
    }
    const after = request.after ?? 'stop';
    if (!['stop', 'retry', 'fail'].includes(after))
      throw new ValidationError(`after must be 'stop', 'retry' or 'fail', got ${JSON.stringify(after)}`);
    const active = this.#active.get(runId);
    if (active) {
      active.pause = true;
      await active.promise.catch(() => {});
    }
    await this.#appendChecked(
      runId,
      ['running', 'rolled_back', 'completed', 'failed'],
      'roll back',
      'resume or resolve the rollback in progress first',
      async (tail) => {
        const target = await this.#resolveTarget(runId, tail, request.to);
        await this.#preQueue(runId, 'rollback');
        return [
          {
            type: RunEvents.RollbackRequested,
            data: { targetVersion: target.version, label: target.label, reason: request.reason, trigger: { kind: 'requested' }, after },
          },
        ];
      },
    );
    return this.#handOff(runId, 'rollback', false);
  }

  /** Runs the blocked compensation again (fresh retry budget, same idempotency key), then the rest of the rollback. */
  async retryCompensation(runId: string, note?: string): Promise<RunInfo> {
    await this.#appendChecked(
      runId,
      ['needs_attention'],
      'retry a compensation',
      'only a run that needs attention has one to retry',
      async (tail) => {
        await this.#preQueue(runId, 'retry');
        return [
          { type: RunEvents.CompensationRetried, data: { stepKey: (tail.data as NeedsAttentionData).stepKey, ...(note ? { note } : {}) } },
        ];
      },
    );
    return this.#handOff(runId, 'retry', false);
  }

  /** Records that an operator undid the blocked step's effect by hand; the rollback goes on. */
  async resolveByHand(runId: string, note: string): Promise<RunInfo> {
    if (typeof note !== 'string' || note.trim() === '') throw new ValidationError('resolveByHand needs a note saying what was done');
    await this.#appendChecked(
      runId,
      ['needs_attention'],
      'resolve by hand',
      'only a run that needs attention has something to resolve',
      async (tail) => {
        await this.#preQueue(runId, 'resolve');
        return [{ type: RunEvents.ResolvedByHand, data: { stepKey: (tail.data as NeedsAttentionData).stepKey, note } }];
      },
    );
    return this.#handOff(runId, 'resolve', false);
  }

  /** Stops driving every run (their steps see an aborted signal) and waits for them to let go. */
  async close(): Promise<void> {
    const active = [...this.#active.values()];
    for (const a of active) a.controller.abort(new Error('runtime closed'));
    await Promise.allSettled(active.map((a) => a.promise));
  }

  #workflow(name: string): Workflow {
    const workflow = this.#workflows.get(name);
    if (!workflow) throw new UnknownWorkflowError(name);
    return workflow;
  }

  /** Reads the last event, checks the status, appends at exactly that version; re-decides if someone wrote in between. */
  async #appendChecked(
    runId: string,
    allowed: RunStatus[],
    wanted: string,
    hint: string,
    make: (tail: EventEnvelope) => Array<{ type: string; data: unknown }> | Promise<Array<{ type: string; data: unknown }>>,
  ): Promise<void> {
    for (let tries = 0; ; tries++) {
      const [tail] = await this.store.read(streamOf(runId), { direction: 'backward', limit: 1 });
      if (!tail) throw new RunNotFoundError(runId);
      const status = statusAfter(tail.type);
      if (!allowed.includes(status)) throw new RunStateError(runId, status, wanted, hint);
      const events = await make(tail);
      try {
        await this.store.append(streamOf(runId), events, { expectedVersion: tail.version });
        return;
      } catch (error) {
        if (!(error instanceof ConcurrencyError) || tries >= 20) throw error;
      }
    }
  }

  async #resolveTarget(runId: string, tail: EventEnvelope, to: RollbackRequest['to']): Promise<{ version: number; label: string }> {
    if (to === 'start') return { version: 1, label: START_LABEL };
    let index: CheckpointIndex | undefined;
    for (let from = tail.version; from >= 1 && !index; from -= 100) {
      const page = await this.store.read(streamOf(runId), { direction: 'backward', from, limit: 100 });
      for (const event of page) {
        if (event.type === RunEvents.Checkpoint) index = (event.data as CheckpointData).index;
        else if (event.type === RunEvents.RolledBack) index = (event.data as RolledBackData).index;
        if (index) break;
      }
    }
    index ??= {};
    const entries = Object.entries(index).sort((a, b) => b[1] - a[1]);
    if (to === 'latest') {
      const [label, version] = entries[0] ?? [START_LABEL, 1];
      return { version, label };
    }
    if (typeof to === 'number') {
      if (to === 1) return { version: 1, label: START_LABEL };
      const hit = entries.find(([, v]) => v === to);
      if (hit) return { version: to, label: hit[0] };
    } else if (typeof to === 'string' && index[to] !== undefined) {
      return { version: index[to] as number, label: to };
    }
    throw new CheckpointNotFoundError(
      runId,
      to,
      entries.map(([l, v]) => `${l}@${v}`),
    );
  }

  /**
   * With a queue the request is already in the log (or, for resume, needs none):
   * the queue only tells the workers the run needs driving.
   */
  async #handOff(runId: string, request: RunRequest, resume: boolean): Promise<RunInfo> {
    if (!this.#queue) return this.#drive(runId, resume);
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
    if (first) await this.#queue.enqueue(runId, (first.data as RunStartedData).workflow, request, { delayMs: HANDOFF_GRACE_MS });
  }

  /** One driver per run per runtime; a second caller joins the first. */
  #drive(runId: string, resume: boolean, fromTail = true): Promise<RunInfo> {
    const existing = this.#active.get(runId);
    if (existing && !existing.pause) return existing.promise;
    const active: Active = { promise: undefined as unknown as Promise<RunInfo>, controller: new AbortController(), pause: false };
    active.promise = this.#loop(runId, resume, active, fromTail).finally(() => {
      if (this.#active.get(runId) === active) this.#active.delete(runId);
    });
    this.#active.set(runId, active);
    return active.promise;
  }

  async #loop(runId: string, resume: boolean, active: Active, fromTail: boolean): Promise<RunInfo> {
    const finished = fromTail ? await this.#rollbackFromTail(runId, resume, active) : undefined;
    if (finished) return finished;
    const events = await this.store.read(streamOf(runId));
    const first = events[0];
    if (!first) throw new RunNotFoundError(runId);
    const started = first.data as RunStartedData;
    const workflow = this.#workflow(started.workflow);
    const log = new RunLog(this.store, runId, events);
    let compensators: ReadonlyMap<string, Compensator> | undefined;
    const pass = (mode: 'run' | 'collect') =>
      new Pass({
        workflow,
        log,
        breakers: this.#breakers,
        clock: this.#clock,
        mode,
        signal: active.controller.signal,
        shouldPause: () => active.pause,
      });
    try {
      for (;;) {
        const last = log.events[log.events.length - 1] as EventEnvelope;
        const status = statusAfter(last.type);
        if (status === 'completed' || status === 'failed' || status === 'cancelled' || status === 'needs_attention') break;
        if (status === 'rolled_back' && (last.data as RolledBackData).after === 'stop' && !resume) break;
        if (active.pause || active.controller.signal.aborted) break;

        const request = pendingRollback(log.events);
        if (request) {
          // A coordinated rollback is finished by its coordinator, in one commit with the other participants' markers:
          // finishing it here would let a reader see this agent rolled back alone.
          if (request.data.coordinator !== undefined) break;
          if (!compensators) {
            // A rollback this process did not start: replay up to the end of the journal to get the steps' closures back.
            const collect = pass('collect');
            await workflow.run(collect, started.input).catch(() => {});
            if (collect.halt?.reason === 'error') throw collect.halt.error;
            compensators = collect.compensators;
          }
          await carryOutRollback({
            log,
            request,
            compensators,
            clock: this.#clock,
            signal: active.controller.signal,
            compensationRetry: this.#compensationRetry,
          });
          compensators = undefined;
          continue;
        }

        const forward = pass('run');
        let output: unknown;
        let thrown: unknown;
        let threw = false;
        try {
          output = await workflow.run(forward, started.input);
        } catch (error) {
          threw = true;
          thrown = error;
        }
        await forward.idle();
        if (forward.halt) {
          const { reason, error } = forward.halt;
          if (reason === 'rollback') {
            compensators = forward.compensators;
            continue;
          }
          if (reason === 'lost') throw error;
          if (reason === 'error') throw error;
          break;
        }
        const unconsumed = forward.unconsumed;
        if (unconsumed) throw new NonDeterminismError(runId, forward.seq, `${unconsumed.kind} "${unconsumed.name}"`, 'the end of run()');
        if (threw) {
          if (workflow.onFailure === 'compensate-and-fail') {
            const error = serializeError(thrown);
            await log.append([
              {
                type: RunEvents.RollbackRequested,
                data: {
                  targetVersion: 1,
                  label: START_LABEL,
                  reason: error.message,
                  trigger: { kind: 'run-failed', error },
                  after: 'fail',
                },
              },
            ]);
          } else {
            await log.append([{ type: RunEvents.RunFailed, data: { error: serializeError(thrown) } }]);
          }
          continue;
        }
        try {
          jsonOrThrow(output ?? null, `output of workflow "${workflow.name}"`);
        } catch (error) {
          await log.append([{ type: RunEvents.RunFailed, data: { error: serializeError(error) } }]);
          continue;
        }
        await log.append([{ type: RunEvents.RunCompleted, data: output === undefined ? {} : { output } }]);
      }
    } catch (error) {
      // Someone else wrote to the run (another worker, a cancel): it is theirs now. Report what the log says.
      if (error instanceof ConcurrencyError) return this.get(runId);
      if (error instanceof Halt && error.reason === 'paused') return this.#info(log.events);
      throw error;
    }
    return this.#info(log.events);
  }

  /**
   * Drives a run whose log ends with nothing to do but finish a rollback (or
   * nothing at all) from the events after the rollback's target alone: the
   * closures come from the workflow's declared compensations, not a replay.
   * Undefined when the full path must take over: the run goes on forward
   * afterwards (after 'retry', or a resume), or a closure can only be had by
   * replaying `run`. Resuming forward stays a replay of the whole journal.
   */
  async #rollbackFromTail(runId: string, resume: boolean, active: Active): Promise<RunInfo | undefined> {
    const stream = streamOf(runId);
    const [last] = await this.store.read(stream, { direction: 'backward', limit: 1 });
    if (!last) throw new RunNotFoundError(runId);
    const [first] = last.version === 1 ? [last] : await this.store.read(stream, { from: 1, to: 1 });
    if (!first) throw new RunNotFoundError(runId);
    // As the full path does: a runtime that does not know the workflow does not drive its runs.
    const workflow = this.#workflow((first.data as RunStartedData).workflow);
    const status = statusAfter(last.type);
    const stopped = status === 'rolled_back' && (last.data as RolledBackData).after === 'stop' && !resume;
    if (['completed', 'failed', 'cancelled', 'needs_attention'].includes(status) || stopped) return this.get(runId);
    if (status !== 'rolling_back') return undefined;
    if (active.pause || active.controller.signal.aborted) return this.get(runId);

    // The protocol's own events since the request: few, whatever the run's length.
    const newestFirst: EventEnvelope[] = [];
    let request: EventEnvelope<string, RollbackRequestedData> | undefined;
    for (let from = last.version; !request && from >= 1; ) {
      const page = await this.store.read(stream, { direction: 'backward', from, limit: 32 });
      if (page.length === 0) return undefined;
      for (const event of page) {
        newestFirst.push(event);
        if (event.type === RunEvents.RolledBack) return undefined;
        if (event.type === RunEvents.RollbackRequested) {
          request = event as EventEnvelope<string, RollbackRequestedData>;
          break;
        }
      }
      from = (page.at(-1) as EventEnvelope).version - 1;
    }
    if (!request) return undefined;
    // Finished by its coordinator, as in the full path.
    if (request.data.coordinator !== undefined) return this.get(runId);

    const { targetVersion } = request.data;
    const before = targetVersion < request.version ? await this.store.read(stream, { from: targetVersion, to: request.version - 1 }) : [];
    const window = [...before, ...newestFirst.reverse()];
    // Indexed by version like a full read (RunLog's version is its length); the holes before the target are never read.
    const events: EventEnvelope[] = [first];
    for (const event of window) events[event.version - 1] = event;
    const compensators = declaredCompensators(workflow, undoneSteps(events, request));
    if (!compensators) return undefined;

    const log = new RunLog(this.store, runId, events);
    try {
      await carryOutRollback({
        log,
        request,
        compensators,
        clock: this.#clock,
        signal: active.controller.signal,
        compensationRetry: this.#compensationRetry,
      });
    } catch (error) {
      if (error instanceof ConcurrencyError) return this.get(runId);
      if (error instanceof Halt && error.reason === 'paused') return this.get(runId);
      throw error;
    }
    const end = log.events[log.events.length - 1] as EventEnvelope;
    if (end.type === RunEvents.RolledBack && ((end.data as RolledBackData).after !== 'stop' || resume)) return undefined;
    const done = log.events.slice(targetVersion - 1);
    return this.#infoFrom(first, done) ?? this.get(runId);
  }

  #info(events: EventEnvelope[]): RunInfo {
    return this.#infoFrom(events[0] as EventEnvelope, events) as RunInfo;
  }

  /**
   * The info from RunStarted and the events from an effective checkpoint (or
   * version 1) to the end: the checkpoint's snapshot and its list of earlier
   * rollbacks stand for everything before it. Undefined when the checkpoint
   * predates that list.
   */
  #infoFrom(first: EventEnvelope, window: readonly EventEnvelope[]): RunInfo | undefined {
    const start = window[0] as EventEnvelope;
    let earlier: RollbackInfo[] = [];
    if (start.version > 1) {
      const carried = start.type === RunEvents.Checkpoint ? (start.data as CheckpointData).rollbacks : undefined;
      if (!Array.isArray(carried)) return undefined;
      earlier = carried;
    }
    const last = window[window.length - 1] as EventEnvelope;
    const started = first.data as RunStartedData;
    const workflow = this.#workflows.get(started.workflow);
    const status = statusAfter(last.type);
    const attention = lastAttention(window);
    return {
      runId: started.runId,
      workflow: started.workflow,
      workflowVersion: started.workflowVersion,
      status,
      version: last.version,
      state: workflow ? foldState(workflow, effectiveEvents(window)) : undefined,
      input: started.input,
      ...(status === 'completed' ? { output: (last.data as { output?: unknown }).output } : {}),
      ...(status === 'failed' ? { error: (last.data as { error: SerializedError }).error } : {}),
      rollbacks: [...earlier, ...rollbacksOf(window)],
      ...(attention ? { attention } : {}),
      startedAt: first.recordedAt,
      updatedAt: last.recordedAt,
    };
  }
}
