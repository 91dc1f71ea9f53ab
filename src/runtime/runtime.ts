import { setTimeout as sleep } from 'node:timers/promises';
import { canonicalJson } from '../events/canonical.js';
import type { EventEnvelope, Json } from '../events/envelope.js';
import { ConcurrencyError, RewindError, ValidationError } from '../events/errors.js';
import { uuidv7 } from '../events/ids.js';
import type { RunOrder } from '../store/run-index.js';
import type { EventStore, Fence, StreamLease } from '../store/types.js';
import { type BreakerOptions, type BreakerState, Breakers } from './breaker.js';
import { type Clock, systemClock } from './clock.js';
import { type DriveResult, type DriverContext, driveRun } from './driver.js';
import { RunConflictError, RunNotFoundError, RunStateError, UnknownWorkflowError } from './errors.js';
import { isRunEvent, RunEvents, type RunStartedData } from './events.js';
import { type ForkOptions, writeFork } from './fork.js';
import { type RunStatus, statusAfter } from './journal.js';
import { historyOf, type RunHistory } from './model/history.js';
import type { At } from './model/point.js';
import type { RunDiff } from './model/run-diff.js';
import type { StateAt } from './model/state-at.js';
import { Ownership } from './ownership.js';
import type { RetryOptions } from './policy.js';
import type { Reaction } from './reactions/definition.js';
import { Reactions } from './reactions/reactions.js';
import type { ReactionEvent } from './reactions/reactor.js';
import { type ReplayCheckOptions, type ReplayReport, replayCheck } from './replay-check.js';
import {
  effectOf,
  inboxOf,
  postRequest,
  RUN_REQUESTED,
  type RunRequestData,
  type RunRequestKind,
  readInbox,
  sameRequest,
} from './requests.js';
import { checkRollbackRequest, type RollbackRequest } from './rollback/commands.js';
import { countRuns, type IndexProgress, pageOfRuns, type RunCounts, type RunPage, type RunPageOptions } from './run-index.js';
import { infoOf, MAX_RUNS_PAGE, type RunFilter, type RunInfo, type RunSummary, readRunInfo, requireRun } from './run-info.js';
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
  /**
   * How long a run this runtime drives stays its own without renewal (renewed
   * every third of it): after a crash, another process takes the run over at
   * most this long after the last renewal (at once on PostgreSQL, where the
   * dead process's session ends with it). Default 5,000 ms.
   */
  leaseMs?: number;
  /** Names this runtime in run leases and in `drivenBy`. Default host:pid:random. */
  owner?: string;
  /**
   * Reactions (defineReaction) this runtime runs in the background until
   * close(): each follows the log while this process holds its lease, so
   * every process may be given the same ones. With a queue, the runs they
   * start are left to the workers.
   */
  reactions?: Reaction[];
  /** Told what the reactions do (acted, retrying, parked), for logs and metrics. */
  onReaction?: (event: ReactionEvent) => void;
  /** Told how far the one-time indexing of a log written before the runs index has got (at its first listing). */
  onIndexProgress?: IndexProgress;
}

/** Where a run stops for good (what `wait(runId, { until: 'end' })` waits for). */
const ENDED: ReadonlySet<RunStatus> = new Set(['completed', 'failed', 'cancelled']);

/** How long to wait between looks at a run another process drives. */
const LOOK_AGAIN_MS = { first: 10, most: 250 };

/** How long a run queued ahead of its first event waits before a worker may look for it (see start()). */
const HANDOFF_GRACE_MS = 30_000;

export interface SignalOptions {
  /** Who sends it, recorded with it (and with the wait it answers). */
  actor?: string;
  /** Sending the same id twice sends one signal. */
  id?: string;
  /** Return once the signal is recorded: the run goes on in the background here (or with its driver elsewhere). */
  detach?: boolean;
}

/** For requests (cancel, rollback, retryCompensation, resolveByHand) and resume. */
export interface RequestOptions {
  /**
   * For a run driven by another process: wait until it has carried the request
   * out (default), or return at once with `drivenBy` set; its owner carries it
   * out at its next safe point.
   */
  wait?: boolean;
  /** Who asks, recorded with the request and the events it leads to. */
  actor?: string;
  /** Return once the request is posted: its driver (this runtime, in the background, when no one drives the run) carries it out. */
  detach?: boolean;
}

export interface StartOptions {
  /** Starting the same id twice is idempotent (same workflow and input) and joins the run. */
  runId?: string;
  /** Return once the run is recorded; `wait(runId)` settles when it stops. */
  detach?: boolean;
}

/** A run this runtime drives. */
interface Active {
  promise: Promise<RunInfo>;
  /** Aborted on shutdown, abandon, or when the lease is lost: the drive stops and writes nothing more. */
  controller: AbortController;
  /** Aborted by a cancel request: the steps in flight see it; the driver then records the cancel. */
  cancelSteps: AbortController;
  /** A coordinated rollback holds the run: the drive stops at its next ctx call. */
  pause: boolean;
  /** Something was posted to the run's inbox here since the driver last looked. */
  poked: boolean;
  /** Requests may wait in the inbox: the pass stops at its next ctx call and the driver carries them out. */
  requested: boolean;
  /** The inbox's version as far as the watcher has looked. */
  inboxSeen: number;
  /** A renewal found the lease taken over: the run is another driver's now. */
  lost: boolean;
}

/** A run as a caller sees it when another process drives it. */
export type DrivenRunInfo<S = unknown, O = unknown> = RunInfo<S, O> & {
  /** Set when another runtime drives the run: who, and until when its lease runs unless renewed. */
  drivenBy?: { owner: string; until: string };
  /** A request this call posted that its driver (a worker, another process) has not carried out yet. */
  requested?: { id: string; kind: RunRequestKind };
};

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
  readonly #own: Ownership;
  /** Without a queue: runs parked on a wait with a timeout, woken here when it runs out (unref'd: they keep no process alive). */
  readonly #wakeups = new Map<string, NodeJS.Timeout>();
  readonly #onIndexProgress: IndexProgress | undefined;

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
    const leaseMs = options.leaseMs ?? 5_000;
    if (!Number.isInteger(leaseMs) || leaseMs < 100 || leaseMs > 3_600_000)
      throw new ValidationError(`leaseMs must be a whole number of milliseconds from 100 to 3,600,000, got ${String(leaseMs)}`);
    if (options.owner !== undefined && (typeof options.owner !== 'string' || options.owner.length === 0 || options.owner.length > 200))
      throw new ValidationError('owner must be a non-empty string of at most 200 characters');
    this.#own = new Ownership(this.store, { leaseMs, ...(options.owner ? { owner: options.owner } : {}) });
    for (const workflow of options.workflows ?? []) this.register(workflow);
    this.#onIndexProgress = options.onIndexProgress;
    this.reactions = new Reactions(this, this.#own, options.reactions ?? [], options.onReaction ?? (() => {}));
  }

  /** The reactions run here, and the status, skip and retry of every reaction of the log. */
  readonly reactions: Reactions;

  /** Names this runtime in the leases of the runs it drives (and in other processes' `drivenBy`). */
  get owner(): string {
    return this.#own.owner;
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
      if (created) return (created.drivenBy ? await this.#untilRest(runId, 'drive') : created) as RunInfo<S, O>;
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
    const info = await promise;
    return (info.drivenBy ? await this.#untilRest(runId, 'drive') : info) as RunInfo<S, O>;
  }

  /**
   * Continues a run from where its log ends: after a crash, a rollback that
   * stopped, or an operator's fix. A run another process drives is left to it:
   * resume waits until it rests there (and goes on from there when it stopped
   * or its owner died), or with `{ wait: false }` returns at once, `drivenBy` set.
   */
  async resume(runId: string, options: Pick<RequestOptions, 'wait'> = {}): Promise<DrivenRunInfo> {
    const info = await this.#handOff(runId, 'resume');
    return info.drivenBy && options.wait !== false ? this.#untilRest(runId, 'resume') : info;
  }

  /**
   * What a worker does with a run it claimed: drives it from where its log ends,
   * like resume(), except that a run rolled back with after 'stop' stays stopped.
   * A run another process drives is left to it (`drivenBy` set).
   */
  drive(runId: string): Promise<DrivenRunInfo> {
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

  /**
   * Settles when this runtime stops driving the run (at once when it is not
   * driving it); with `until: 'end'`, once the run has completed, failed or
   * been cancelled, wherever it is driven (a run that waits for a signal a
   * reaction sends, say). `timeoutMs` ends the wait with a RunStateError.
   */
  async wait(runId: string, options: { until?: 'rest' | 'end'; timeoutMs?: number } = {}): Promise<RunInfo> {
    const { until = 'rest', timeoutMs } = options;
    if (until !== 'rest' && until !== 'end') throw new ValidationError("until must be 'rest' or 'end'");
    if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs >= 0))
      throw new ValidationError('timeoutMs must be a number of milliseconds, at least 0');
    const deadline = Date.now() + (timeoutMs ?? Number.POSITIVE_INFINITY);
    for (let delay = LOOK_AGAIN_MS.first; ; delay = Math.min(delay * 2, LOOK_AGAIN_MS.most)) {
      const active = this.#active.get(runId);
      const info = active ? await active.promise : await this.get(runId);
      if (until === 'rest' || ENDED.has(info.status)) return info;
      if (Date.now() + delay > deadline)
        throw new RunStateError(
          runId,
          info.status,
          `end within ${timeoutMs} ms`,
          'wait longer, or look at what it waits for (runtime.get)',
        );
      await sleep(delay);
    }
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

  /** Every run that matches the filter, in id order (or `order`). Reads the runs index a page at a time. */
  async list(filter: RunFilter & { order?: RunOrder } = {}): Promise<RunSummary[]> {
    const out: RunSummary[] = [];
    let after: string | undefined;
    do {
      const page = await this.listPage({ ...filter, limit: MAX_RUNS_PAGE, ...(after === undefined ? {} : { after }) });
      out.push(...page.runs);
      after = page.next;
    } while (after !== undefined);
    return out;
  }

  /**
   * One page of `list`: at most `limit` runs (default 100) after `after`, and
   * `next`, what to pass as `after` for the following page, when there is one.
   * `order`: 'id' (default), 'newest' or 'oldest' (by start time). Filtered or
   * not, a page costs the same at a thousand runs as at a million: it reads
   * the runs index (built once, at the first listing of an older log).
   */
  listPage(options: RunPageOptions = {}): Promise<RunPage> {
    return pageOfRuns(this.store, options, MAX_RUNS_PAGE, this.#onIndexProgress);
  }

  /** How many runs there are, per status and per workflow and status (the debugger's header). */
  countRuns(): Promise<RunCounts> {
    return countRuns(this.store, this.#onIndexProgress);
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
    // Driven here already: its pass reads the mailbox when it reaches the wait, and a driver about to rest looks once more.
    const active = this.#active.get(runId);
    if (active) {
      active.poked = true;
      return this.get(runId);
    }
    // Driven elsewhere: that driver looks at its inbox before it rests (drivenBy says who it is).
    if (options.detach && !this.#queue) return this.#background(runId);
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

  /**
   * Cancels a run that is running, waiting or rolled back: its step in flight
   * sees an aborted signal, no new step starts, and the run ends cancelled.
   */
  async cancel(runId: string, reason = 'cancelled', options: RequestOptions = {}): Promise<DrivenRunInfo> {
    if (typeof reason !== 'string' || reason.trim() === '') throw new ValidationError('a cancel needs a reason when one is given');
    return this.#request(runId, { kind: 'cancel', reason }, 'resume', options);
  }

  /**
   * An explicit rollback (a waiting run's too: it covers the steps completed
   * before the wait). Checked at once; then the run's driver carries it out at
   * its next safe point (the step in flight finishes first, no new step
   * starts), and a step left open by a crash is settled by the protocol
   * (rollback/decide.ts).
   */
  async rollback(runId: string, request: RollbackRequest, options: RequestOptions = {}): Promise<DrivenRunInfo> {
    const after = checkRollbackRequest(request);
    const past = request.past ? { past: request.past } : {};
    return this.#request(runId, { kind: 'rollback', to: request.to, reason: request.reason, after, ...past }, 'rollback', options);
  }

  /** Runs the blocked compensation again (fresh retry budget, same idempotency key), then the rest of the rollback. */
  async retryCompensation(runId: string, note?: string, options: RequestOptions = {}): Promise<DrivenRunInfo> {
    if (note !== undefined && typeof note !== 'string') throw new ValidationError('the note of retryCompensation must be a string');
    return this.#request(runId, { kind: 'retry', ...(note ? { note } : {}) }, 'retry', options);
  }

  /** Records that an operator undid the blocked step's effect by hand; the rollback goes on. */
  async resolveByHand(runId: string, note: string, options: RequestOptions = {}): Promise<DrivenRunInfo> {
    if (typeof note !== 'string' || note.trim() === '') throw new ValidationError('resolveByHand needs a note saying what was done');
    return this.#request(runId, { kind: 'resolve', note }, 'resolve', options);
  }

  /**
   * A request goes through the run's driver: checked now against the run as it
   * stands (the same typed errors as ever, nothing written), posted to the
   * run's inbox, and carried out by whoever drives the run: this runtime (now,
   * or at its next safe point if it is driving), a worker (with a queue), or
   * another process, whose outcome the caller waits for unless told not to.
   */
  async #request(runId: string, data: RunRequestData, queued: RunRequest, options: RequestOptions): Promise<DrivenRunInfo> {
    if (options.actor !== undefined && (typeof options.actor !== 'string' || options.actor.length === 0))
      throw new ValidationError('actor must be a non-empty string naming who asks');
    const [tail] = await this.store.read(streamOf(runId), { direction: 'backward', limit: 1 });
    if (!tail) throw new RunNotFoundError(runId);
    const [effect] = await effectOf(this.store, runId, tail, data);
    // A rollback's target found now serves the driver too, while the run has not moved.
    const posted =
      data.kind === 'rollback' && effect?.type === RunEvents.RollbackRequested
        ? { ...data, resolved: { at: tail.version, targetVersion: effect.data.targetVersion, label: effect.data.label } }
        : data;
    await this.#preQueue(runId, queued);
    // The same request while the first still waits for the driver is that request (a caller retrying after a crash).
    const same = (await readInbox(this.store, runId)).pending.find((p) => sameRequest(p.data, data));
    const id = same?.id ?? (await postRequest(this.store, runId, posted, options.actor));
    const active = this.#active.get(runId);
    if (active) {
      active.requested = true;
      active.poked = true;
      if (data.kind === 'cancel') active.cancelSteps.abort(new Error(`run cancelled: ${data.reason}`));
    }
    const requested = { requested: { id, kind: data.kind } };
    if (this.#queue) return { ...(await this.#handOff(runId, queued)), ...requested };
    if (options.detach) return { ...(await this.#background(runId)), ...requested };
    if (options.wait === false) {
      const info = await this.#drive(runId, 'drive');
      return info.drivenBy ? { ...info, ...requested } : info;
    }
    return this.#outcome(runId, id, data);
  }

  /** Waits until the request was carried out (driving the run here whenever no one else does), or throws why it was refused. */
  async #outcome(runId: string, requestId: string, data: RunRequestData): Promise<DrivenRunInfo> {
    let info: DrivenRunInfo | undefined;
    for (let delay = LOOK_AGAIN_MS.first; ; delay = Math.min(delay * 2, LOOK_AGAIN_MS.most)) {
      const handled = (await readInbox(this.store, runId)).handled.get(requestId);
      if (handled?.outcome === 'refused') {
        // The run moved on between the check and the driver's safe point: the check again says why, or the driver's refusal does.
        const [tail] = await this.store.read(streamOf(runId), { direction: 'backward', limit: 1 });
        await effectOf(this.store, runId, tail as EventEnvelope, data);
        throw new RewindError(
          handled.error?.code ?? 'RUN_STATE',
          handled.error?.message ?? `run "${runId}" moved on before its driver got to the request`,
        );
      }
      if (handled) return info && !info.drivenBy ? info : this.get(runId);
      info = await this.#drive(runId, 'drive');
      if (info.drivenBy) await sleep(delay);
    }
  }

  /** Stops driving every run (nothing new starts; their steps see an aborted signal) and waits for them to let go. */
  async close(): Promise<void> {
    await this.reactions.close();
    for (const timer of this.#wakeups.values()) clearTimeout(timer);
    this.#wakeups.clear();
    const active = [...this.#active.values()];
    for (const a of active) a.controller.abort(new Error('runtime closed'));
    await Promise.allSettled(active.map((a) => a.promise));
    this.#own.close();
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

  /** Drives the run in the background (joining a drive here, or finding its driver elsewhere) and says how it stands now. */
  async #background(runId: string): Promise<RunInfo> {
    this.#drive(runId, 'drive').catch(() => {});
    return this.get(runId);
  }

  /**
   * With a queue the request is already in the log (or, for resume, needs none):
   * the queue only tells the workers the run needs driving.
   */
  async #handOff(runId: string, request: RunRequest): Promise<DrivenRunInfo> {
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
  async #create(runId: string, data: RunStartedData): Promise<DrivenRunInfo | undefined> {
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

  /**
   * Waits until a run another process drives rests, looking now and then:
   * whenever its lease is free (it rested, or its owner died and the lease
   * lapsed) this runtime drives it, which settles it here.
   */
  async #untilRest(runId: string, mode: 'drive' | 'resume'): Promise<DrivenRunInfo> {
    for (let delay = LOOK_AGAIN_MS.first; ; delay = Math.min(delay * 2, LOOK_AGAIN_MS.most)) {
      await sleep(delay);
      // Tried even while the lease looks live: the acquire also frees the lease of a holder that is gone (its process, its session).
      const info = await this.#drive(runId, mode);
      if (!info.drivenBy) return info;
    }
  }

  /**
   * One driver per run: in this runtime, a second caller joins the first; across
   * processes, the run's lease decides, and a run leased elsewhere comes back
   * with `drivenBy`. The drive ends when the run rests, and before it lets go it
   * looks once more at the run's inbox, so a signal or request that arrived as
   * it decided to rest is never left unseen.
   */
  #drive(runId: string, mode: 'drive' | 'resume', create?: RunStartedData): Promise<DrivenRunInfo> {
    clearTimeout(this.#wakeups.get(runId));
    this.#wakeups.delete(runId);
    const existing = this.#active.get(runId);
    // Held for a coordinated rollback: the next drive starts once the hold has let go.
    if (existing?.pause) return existing.promise.catch(() => {}).then(() => this.#drive(runId, mode, create));
    if (existing) return existing.promise;
    const active: Active = {
      promise: Promise.resolve(undefined as unknown as RunInfo),
      controller: new AbortController(),
      cancelSteps: new AbortController(),
      pause: false,
      poked: false,
      requested: false,
      inboxSeen: 0,
      lost: false,
    };
    this.#active.set(runId, active);
    const done = () => {
      if (this.#active.get(runId) === active) this.#active.delete(runId);
    };
    active.promise = this.#driveOwned(runId, mode, active, create).finally(done);
    return active.promise;
  }

  async #driveOwned(runId: string, mode: 'drive' | 'resume', active: Active, create?: RunStartedData): Promise<DrivenRunInfo> {
    const unwatch = this.#own.watch(() => void this.#look(runId, active));
    try {
      for (;;) {
        const taken = await this.#own.take(streamOf(runId), (error) => {
          active.lost = true;
          active.controller.abort(error);
        });
        if ('holder' in taken) {
          const drivenBy = drivenByOf(taken.holder);
          if (create && (await this.store.streamVersion(streamOf(runId))) === 0) return { ...placeholder(create), drivenBy };
          return { ...(await this.get(runId)), drivenBy };
        }
        const before = await this.store.streamVersion(inboxOf(runId));
        active.inboxSeen = Math.max(active.inboxSeen, before);
        // A request posted before this drive is carried out first.
        active.requested ||= before > 0;
        active.poked = false;
        const result = await this.#driveOnce(runId, mode, active, taken.fence, create);
        // Until the run is written, a drive that looks again still creates it.
        if (create && 'log' in result && result.log.version > 0) create = undefined;
        await this.#own.release(streamOf(runId));
        const rested = result.stop !== 'lost' && result.stop !== 'paused' && !active.controller.signal.aborted;
        if (rested) {
          const after = await this.store.streamVersion(inboxOf(runId));
          // Synchronously with leaving #active (in #drive's finally, or right here): a signal that finds this drive poked it.
          if (active.poked || after > Math.max(before, result.inboxSeen)) continue;
          if (this.#active.get(runId) === active) this.#active.delete(runId);
        }
        // Taken over (this drive was paused past its lease, or another wrote to the run): the run is its new
        // driver's, and a caller waiting for it to rest waits for that driver, as when the lease was held at the start.
        if (result.stop === 'lost' || active.lost) return await this.#drivenElsewhere(runId);
        return await this.#infoAfter(runId, result);
      }
    } finally {
      unwatch();
      await this.#own.release(streamOf(runId));
    }
  }

  /** One drive under the lease: the driver's loop (driver.ts), a run to create joined when another start wrote it first. */
  async #driveOnce(runId: string, mode: 'drive' | 'resume', active: Active, fence: Fence, create?: RunStartedData): Promise<DriveResult> {
    const drive = (created?: RunStartedData) =>
      driveRun(this.#driver, runId, {
        signal: active.controller.signal,
        stepSignal: () => AbortSignal.any([active.controller.signal, active.cancelSteps.signal]),
        shouldPause: () => active.pause,
        requested: () => active.requested,
        readingRequests: () => {
          active.requested = false;
          // The cancel that aborted the steps is in the inbox now: carried out, or refused and the run goes on with fresh steps.
          if (active.cancelSteps.signal.aborted) active.cancelSteps = new AbortController();
        },
        fence,
        mode,
        ...(created ? { create: created } : {}),
      });
    let result = await drive(create);
    // The run to create was there already, written by another start: the same one is joined.
    if (result.stop === 'exists' && create) {
      await this.#sameStart(create);
      result = await drive();
    }
    if (result.stop === 'waiting' && 'log' in result && result.until !== undefined && !this.#queue) this.#wakeAt(runId, result.until);
    return result;
  }

  /** The run as it stands, with `drivenBy` while someone else holds its lease. */
  async #drivenElsewhere(runId: string): Promise<DrivenRunInfo> {
    const holder = await this.#own.holder(streamOf(runId));
    const info = await this.get(runId);
    return holder ? { ...info, drivenBy: drivenByOf(holder) } : info;
  }

  async #infoAfter(runId: string, result: DriveResult): Promise<RunInfo> {
    const log = 'log' in result ? result.log : undefined;
    const whole =
      log && log.base === 1 ? infoOf(log.started, log.events, (name, version) => this.#workflows.reducer(name, version)) : undefined;
    return whole ?? this.get(runId);
  }

  /** News in the store: a request in the inbox of a run driven here stops its pass at the next ctx call (a cancel also aborts its steps). */
  async #look(runId: string, active: Active): Promise<void> {
    try {
      const version = await this.store.streamVersion(inboxOf(runId));
      if (version <= active.inboxSeen) return;
      const news = await this.store.read(inboxOf(runId), { from: active.inboxSeen + 1 });
      active.inboxSeen = Math.max(active.inboxSeen, version);
      for (const event of news) {
        if (event.type !== RUN_REQUESTED) continue;
        active.requested = true;
        const data = event.data as RunRequestData;
        if (data.kind === 'cancel') active.cancelSteps.abort(new Error(`run cancelled: ${data.reason}`));
      }
    } catch {
      // The store closed under the watcher: the drive finds out on its own.
    }
  }
}

/** Who drives a run elsewhere, as callers are told. */
function drivenByOf(lease: StreamLease): { owner: string; until: string } {
  return { owner: lease.owner, until: new Date(lease.until).toISOString() };
}

/** What a start answers when another process is creating the same run and has written nothing yet. */
function placeholder(data: RunStartedData): RunInfo {
  const now = new Date().toISOString();
  return {
    runId: data.runId,
    workflow: data.workflow,
    workflowVersion: data.workflowVersion,
    status: 'running',
    version: 0,
    state: undefined,
    input: data.input,
    rollbacks: [],
    startedAt: now,
    updatedAt: now,
  };
}
