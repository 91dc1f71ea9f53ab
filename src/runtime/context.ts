import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { EventEnvelope, Json, NewEvent } from '../events/envelope.js';
import { ConcurrencyError, ValidationError } from '../events/errors.js';
import type { Breakers } from './breaker.js';
import type { Clock } from './clock.js';
import {
  ApprovalRejectedError,
  GuardrailError,
  InvariantError,
  IrreversibleStepError,
  NonDeterminismError,
  NonRetryableError,
  NotJsonError,
  StepFailedError,
  serializeError,
  WaitTimeoutError,
} from './errors.js';
import {
  type ApprovalRequest,
  type CheckpointIndex,
  isRunEventType,
  type NewRunEvent,
  type ResumedAttempt,
  type RollbackRequestedData,
  RunEvents,
  START_LABEL,
  type TriggerKind,
  type ValueKind,
} from './events.js';
import { consumedSignals, effectiveEvents, type JournalEntry, journalOf, rollbacksOf } from './journal.js';
import { backoffDelay, decide, type FailurePolicy, type RetryOptions } from './policy.js';
import { type RunLog, wallTime } from './run-log.js';
import { compensationRetryOf, jsonOrThrow, runAttempt, triggerOf, undoOf } from './step-attempt.js';
import { checkStepOptions } from './step-options.js';
import type {
  Approval,
  ApproveOptions,
  DomainEvent,
  RollbackInfo,
  RunContext,
  StepIO,
  StepOptions,
  WaitOptions,
  Workflow,
} from './workflow.js';

/**
 * Why a pass stopped driving the workflow code. It is thrown through the
 * user's `run` to unwind it; should the code catch it, the pass stays halted
 * (every later ctx call that would go live throws it again) and whatever
 * `run` returns is ignored.
 */
export class Halt extends Error {
  readonly reason: 'rollback' | 'edge' | 'paused' | 'waiting' | 'lost' | 'error';
  readonly error: unknown;
  constructor(reason: Halt['reason'], error?: unknown) {
    super(`run halted: ${reason}`);
    this.reason = reason;
    this.error = error;
  }
}

/**
 * The end of the journal in a replay pass. Not sticky, unlike other halts:
 * steps started alongside it (Promise.all) must still be answered from the
 * journal so that their closures are found.
 */
const EDGE = new Halt('edge');

/** What the rollback protocol needs to undo one completed step. */
export interface Compensator {
  step: string;
  key: string;
  result: unknown;
  compensate?: StepOptions<any>['compensate'];
  verify?: StepOptions<any>['verify'];
  retry?: RetryOptions;
}

/** What the rollback protocol needs to settle a step left open: its function and options, to run it again under its key. */
export interface Finisher {
  step: string;
  key: string;
  seq: number;
  fn: (io: StepIO) => unknown;
  options: StepOptions<any>;
}

export interface PassOptions {
  workflow: Workflow;
  log: RunLog;
  breakers: Breakers;
  clock: Clock;
  /**
   * 'run' goes live at the end of the journal. 'replay' stops there: it replays
   * only to gather the closures of the journaled steps (compensate / verify
   * hooks, and the functions of steps left open) for a rollback carried out
   * by a process that did not run them. 'check' stops there too, and checks
   * the whole journal against the code (replay-check.ts): an entry the code
   * never asked for when `run` ends is a divergence, as is, when `ended`,
   * any call past the journal's end.
   */
  mode: 'run' | 'replay' | 'check';
  /** 'check' only: the run's code returned or threw where the journal ends (the run completed, or failed other than by a rollback). */
  ended?: boolean;
  /** Aborted on cancel or shutdown: passed on to every step's signal; nothing new starts once it is. */
  signal: AbortSignal;
  /** Checked at every ctx call: an operator's rollback waits for the code to reach one. */
  shouldPause?: () => boolean;
  /** The run's mailbox: the signals sent to it, oldest first (used ones included). */
  mailbox?: () => Promise<MailboxSignal[]>;
}

/** A signal as the run's mailbox holds it (a SignalSent event on `signals-<runId>`). */
export interface MailboxSignal {
  id: string;
  name: string;
  payload: Json;
  actor?: string;
  sentAt: string;
}

/** What a reviewer's signal carries. */
const decision = z.object({ approved: z.boolean(), reason: z.string().optional() });

/** How a pass ended, once `run` and every step it started have settled. */
export type PassOutcome =
  | { kind: 'returned'; output: unknown }
  | { kind: 'threw'; error: unknown }
  /** A trigger chose a rollback: the request to append (the executor appends it). */
  | { kind: 'rollback'; request: RollbackRequestedData }
  | { kind: 'halted'; halt: Halt };

/** One execution of `run(ctx, input)` over a run's effective journal: the RunContext workflow code sees. */
export class Pass<S = unknown> implements RunContext<S, DomainEvent> {
  readonly runId: string;
  readonly workflowVersion: string;
  readonly rollbacks: readonly RollbackInfo[];
  /** By step key: the undo closures of the completed steps this pass met. */
  readonly compensators = new Map<string, Compensator>();
  /** By step key: the steps this replay pass met open (started, no end). */
  readonly finishers = new Map<string, Finisher>();
  /** Sticky: the log is no longer ours ('lost'), the code diverged ('error'), or the run was told to stop ('paused'). */
  halt: Halt | undefined;
  readonly #o: PassOptions;
  readonly #entries: JournalEntry[];
  #seq = 0;
  /** ctx.changed answers, by change id: one per run. */
  readonly #changes = new Map<string, boolean>();
  /** A call met the end of the journal in a pass that does not go live: what comes after it was not checked. */
  #edged = false;
  #state: S;
  #index: CheckpointIndex = {};
  /** Live steps not settled yet, so the outcome waits for siblings running in parallel to record theirs. */
  readonly #inflight = new Set<Promise<unknown>>();
  /**
   * Set once a trigger chose a rollback: nothing new goes live (calls the
   * journal answers still do, so every journaled trigger is met). Each
   * candidate carries the version of the fact that fired it; the earliest
   * wins, so a replay picks the trigger the live run picked, whatever order
   * the code meets them in.
   */
  #stopping: Halt | undefined;
  readonly #candidates: Array<{ at: number; request: RollbackRequestedData }> = [];
  /** The WaitStarted of the wait this pass parks on, when it is new: written last, once the steps in flight have ended (#park). */
  #parking: NewRunEvent | undefined;
  /** The irreversible steps started so far on this path (journaled or live): a rollback may not go back past one unawares. */
  readonly #irreversible: Array<{ step: string; key: string; startedAt: number }> = [];
  /** Aborted when the pass halts or stops: cuts short sleeps and retry waits, never a step in flight. */
  readonly #quiet = new AbortController();
  readonly #waits: AbortSignal;

  constructor(options: PassOptions) {
    this.#o = options;
    this.runId = options.log.runId;
    const started = options.log.started;
    // The version the run started under, not the code's: what code branches on to keep old runs replaying.
    this.workflowVersion = started.data.workflowVersion ?? options.workflow.version;
    this.#entries = journalOf(effectiveEvents(options.log.events));
    for (const entry of this.#entries)
      if (entry?.kind === 'step' && entry.irreversible)
        this.#irreversible.push({ step: entry.name, key: entry.key, startedAt: entry.startedAt });
    this.rollbacks = rollbacksOf(options.log.events);
    this.#state = options.workflow.initialState as S;
    this.#waits = AbortSignal.any([options.signal, this.#quiet.signal]);
  }

  get state(): S {
    return this.#state;
  }
  get replaying(): boolean {
    return this.#seq < this.#entries.length;
  }
  get lastRollback(): RollbackInfo | undefined {
    return this.rollbacks.at(-1);
  }

  /** Runs the workflow code over the journal and reports how it ended, once nothing it started is still running. */
  async execute(input: unknown): Promise<PassOutcome> {
    let outcome: PassOutcome;
    try {
      outcome = { kind: 'returned', output: await this.#o.workflow.run(this, input) };
    } catch (error) {
      outcome = { kind: 'threw', error };
    }
    // `run` can settle before its steps do (Promise.all rejects on the first failure).
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
    this.#quiet.abort();
    const first = this.#candidates.sort((a, b) => a.at - b.at)[0];
    if (this.halt?.reason === 'waiting') {
      // A trigger that fired beside the wait (a step of another branch failed) is carried out: the rollback, not the wait, comes next.
      if (first) return { kind: 'rollback', request: first.request };
      const parked = await this.#park();
      if (parked) return { kind: 'halted', halt: parked };
    }
    if (this.halt) return { kind: 'halted', halt: this.halt };
    if (first) return { kind: 'rollback', request: first.request };
    // A change the code no longer asks about is no divergence (see #call).
    const unconsumed = this.#entries.slice(this.#seq).find((entry) => entry && entry.kind !== 'change');
    if (unconsumed && this.#o.mode !== 'replay' && !this.#edged) {
      const error = new NonDeterminismError(this.runId, this.#seq, describe(unconsumed.kind, unconsumed.name), 'the end of run()');
      return { kind: 'halted', halt: new Halt('error', error) };
    }
    return outcome;
  }

  async step<T>(name: string, fn: (io: StepIO) => T | Promise<T>, options: StepOptions<T> = {}): Promise<T> {
    if (typeof name !== 'string' || name.length === 0) throw new ValidationError('ctx.step needs a non-empty name');
    if (typeof fn !== 'function') throw new ValidationError(`ctx.step("${name}") needs a function`);
    checkStepOptions(name, options);
    if (options.approval !== undefined) {
      const a = typeof options.approval === 'string' ? { label: options.approval } : options.approval;
      await this.approve(a.label ?? name, a.details === undefined ? {} : { details: a.details });
    }
    const { seq, entry } = this.#call('step', name);
    const step = entry?.kind === 'step' ? entry : undefined;
    const policy = options.onFailure ?? this.#o.workflow.onFailure;
    if (step?.completed) {
      this.#register(step.key, name, step.completed.result, options);
      return step.completed.result as T;
    }
    if (step?.failed?.final) {
      const { error, trigger } = step.failed;
      const thrown = new StepFailedError(name, error);
      const failure = Object.assign(new Error(error.message), error);
      return this.#trigger(policy, failure, trigger, step.failedAt ?? 0, { step: name, thrown, attempt: step.failed.attempt });
    }
    if (this.#o.mode !== 'run') {
      if (step?.open) this.finishers.set(step.key, { step: name, key: step.key, seq, fn, options });
      throw this.#edge();
    }
    this.#goLive();
    const running = this.#runStep(seq, name, fn, options, policy, step);
    this.#inflight.add(running);
    return running.finally(() => this.#inflight.delete(running));
  }

  async emit(event: DomainEvent): Promise<void> {
    if (!event || typeof event.type !== 'string' || event.type.length === 0) throw new ValidationError('ctx.emit needs { type, data }');
    if (isRunEventType(event.type))
      throw new ValidationError(`"${event.type}" is a runtime event type`, [], 'give domain events their own type names');
    const data = event.data === undefined ? null : event.data;
    jsonOrThrow(data, `data of event "${event.type}"`);
    const { seq, entry } = this.#call('emit', event.type);
    let recorded: DomainEvent = { type: event.type, data };
    let version: number;
    if (entry?.kind === 'emit') {
      recorded = entry.event;
      version = entry.version;
    } else {
      if (this.#o.mode !== 'run') throw this.#edge();
      this.#goLive();
      version = this.#defer({ type: event.type, data, metadata: { seq } });
    }
    this.#state = this.#o.workflow.apply(this.#state, recorded);
    for (const [invariant, holds] of Object.entries(this.#o.workflow.invariants ?? {})) {
      if (!holds(this.#state)) this.#trigger(this.#o.workflow.onFailure, new InvariantError(invariant, event.type), 'invariant', version);
    }
    for (const [guardrail, holds] of Object.entries(this.#o.workflow.guardrails ?? {})) {
      if (!holds(this.#state)) {
        const failed = new GuardrailError(guardrail, `after event "${event.type}"`);
        this.#trigger(this.#o.workflow.onFailure, failed, 'guardrail', version);
      }
    }
  }

  now(): Promise<number> {
    return this.#value('now', () => this.#o.clock.now()) as Promise<number>;
  }
  random(): Promise<number> {
    return this.#value('random', () => Math.random()) as Promise<number>;
  }
  uuid(): Promise<string> {
    return this.#value('uuid', () => randomUUID()) as Promise<string>;
  }
  async sleep(ms: number): Promise<void> {
    if (!Number.isFinite(ms) || ms < 0) throw new ValidationError(`ctx.sleep needs a non-negative number of ms, got ${ms}`);
    // The wake-up time is journaled, not the duration: a run resumed after a crash sleeps only what is left.
    const wakeAt = (await this.#value('sleep', () => this.#o.clock.now() + ms)) as number;
    await this.#sleepUntil(wakeAt);
  }

  async checkpoint(label: string): Promise<void> {
    if (typeof label !== 'string' || label.length === 0 || label === START_LABEL || label === 'latest' || label === 'start') {
      throw new ValidationError(
        `invalid checkpoint label ${JSON.stringify(label)}`,
        [],
        "use a non-empty label other than 'start' and 'latest'",
      );
    }
    const { seq, entry } = this.#call('checkpoint', label);
    if (entry?.kind === 'checkpoint') {
      // The snapshot, not the fold, is the state from here on: restoring a checkpoint never depends on what came before it.
      this.#state = entry.state as S;
      this.#index = { ...this.#index, [label]: entry.version };
      return;
    }
    if (this.#o.mode !== 'run') throw this.#edge();
    this.#goLive();
    const state = this.#state === undefined ? null : this.#state;
    jsonOrThrow(state, `state at checkpoint "${label}"`);
    const index = { ...this.#index, [label]: this.#o.log.next };
    // The rollbacks so far ride along, so a reader starting at this checkpoint never reads what came before it.
    const rollbacks = this.rollbacks.map((r) => ({ ...r }));
    const last = this.#irreversible.at(-1);
    const noReturn = last ? { pointOfNoReturn: { step: last.step, stepKey: last.key, version: last.startedAt } } : {};
    this.#defer({ type: RunEvents.Checkpoint, data: { seq, label, state: state as Json, index, rollbacks, ...noReturn } });
    this.#index = index;
  }

  waitFor<T = unknown>(name: string, options: WaitOptions<T> = {}): Promise<T> {
    if (typeof name !== 'string' || name.length === 0 || name.startsWith('approval:'))
      throw new ValidationError(`invalid signal name ${JSON.stringify(name)}`, [], "use a non-empty name not starting with 'approval:'");
    return this.#wait(name, options).then((answer) => answer.payload as T);
  }

  async approve(label: string, options: ApproveOptions = {}): Promise<Approval> {
    if (typeof label !== 'string' || label.length === 0) throw new ValidationError('ctx.approve needs a non-empty label');
    let details: Json | undefined;
    if (options.details !== undefined) {
      jsonOrThrow(options.details, `details of approval "${label}"`);
      details = options.details as Json;
    }
    const request: ApprovalRequest = { label, ...(details === undefined ? {} : { details }) };
    const wait = {
      schema: decision,
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      ...(options.onFailure ? { onFailure: options.onFailure } : {}),
    };
    const { payload, actor, at } = await this.#wait(`approval:${label}`, wait, request);
    const { approved, reason } = decision.parse(payload);
    if (approved) return { approved, ...(reason === undefined ? {} : { reason }), ...(actor === undefined ? {} : { actor }) };
    const rejected = new ApprovalRejectedError(label, reason ?? 'no reason given', actor);
    return this.#trigger(options.onFailure ?? this.#o.workflow.onFailure, rejected, 'rejected', at, { step: label });
  }

  /**
   * A wait: answered from the journal, or from the mailbox (the oldest unused
   * signal of this name), or it times out, or the run parks (halt 'waiting')
   * until a signal or the timeout wakes it.
   */
  async #wait(
    name: string,
    options: WaitOptions<unknown>,
    approval?: ApprovalRequest,
  ): Promise<{ payload: unknown; actor: string | undefined; at: number }> {
    if (options.timeoutMs !== undefined && (!Number.isFinite(options.timeoutMs) || options.timeoutMs < 0))
      throw new ValidationError(`timeoutMs of wait "${name}" must be a non-negative number of ms, got ${options.timeoutMs}`);
    const { seq, entry } = this.#call('wait', name);
    const policy = options.onFailure ?? this.#o.workflow.onFailure;
    const timedOut = (at: number) => this.#trigger(policy, new WaitTimeoutError(name, options.timeoutMs), 'timeout', at, { step: name });
    const parse = (payload: unknown) => (options.schema ? options.schema.parse(payload) : payload);
    const wait = entry?.kind === 'wait' ? entry : undefined;
    if (wait?.received) return { payload: parse(wait.received.payload), actor: wait.received.actor, at: wait.answeredAt ?? wait.version };
    if (wait?.timedOutAt !== undefined) return timedOut(wait.timedOutAt);
    if (this.#o.mode !== 'run') throw this.#edge();
    this.#goLive();
    let timeoutAt = wait?.timeoutAt;
    // A new wait's start, not written yet: it goes with what answers the wait, or last when the run parks (#park).
    let opening: NewRunEvent[] = [];
    if (!wait) {
      timeoutAt = options.timeoutMs === undefined ? undefined : this.#o.clock.now() + options.timeoutMs;
      const data = { seq, name, ...(timeoutAt === undefined ? {} : { timeoutAt }), ...(approval ? { approval } : {}) };
      opening = [{ type: RunEvents.WaitStarted, data }];
    }
    for (;;) {
      const used = consumedSignals(this.#o.log.events);
      const signal = (await this.#o.mailbox?.())?.find((s) => s.name === name && !used.has(s.id));
      if (signal) {
        const { id: signalId, payload, actor, sentAt } = signal;
        const received = { seq, name, signalId, payload, sentAt, ...(actor === undefined ? {} : { actor }) };
        const parsed = options.schema?.safeParse(payload);
        if (parsed && !parsed.success) {
          const invalid = parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
          await this.#record(...opening, { type: RunEvents.SignalReceived, data: { ...received, invalid } });
          opening = [];
          continue;
        }
        const got = await this.#record(...opening, { type: RunEvents.SignalReceived, data: received });
        return { payload: parsed ? parsed.data : payload, actor, at: (got.at(-1) as EventEnvelope).version };
      }
      if (timeoutAt !== undefined && this.#o.clock.now() >= timeoutAt) {
        const out = await this.#record(...opening, { type: RunEvents.WaitTimedOut, data: { seq, name } });
        return timedOut((out.at(-1) as EventEnvelope).version);
      }
      // Nothing yet: the run parks; a signal or the timeout brings it back (driver.ts).
      this.#parking = opening[0];
      throw this.#halt(new Halt('waiting'));
    }
  }

  /**
   * Unlike every other call, a change the journal does not hold where it is
   * asked consumes nothing: a run that went past this point under older code
   * has its next entry here, which the old path's call will match.
   */
  async changed(change: string): Promise<boolean> {
    checkChangeId(change);
    this.#enter();
    const known = this.#changes.get(change);
    if (known !== undefined) return known;
    this.#skipChanges(change);
    const entry = this.#entries[this.#seq];
    let answer = true;
    if (entry?.kind === 'change') this.#seq++;
    else if (entry) answer = false;
    // The code returned where this journal ends without ever asking: the old path.
    else if (this.#o.mode === 'check' && this.#o.ended) answer = false;
    else if (this.#o.mode !== 'run') throw this.#edge();
    this.#changes.set(change, answer);
    if (answer && !entry) {
      const seq = this.#seq++;
      this.#goLive();
      this.#defer({ type: RunEvents.ChangeRecorded, data: { seq, change } });
    }
    return answer;
  }

  /**
   * Writes the WaitStarted of the wait the pass parked on, once every step in flight has recorded its end:
   * it is the run's last event, so the run reads as waiting (a status is read from a run's last event) and
   * its deadline is found there. Undefined when written (or when the wait was journaled already); the halt
   * to report otherwise.
   */
  async #park(): Promise<Halt | undefined> {
    if (!this.#parking) return undefined;
    try {
      await this.#o.log.append([this.#parking]);
      return undefined;
    } catch (error) {
      return new Halt(error instanceof ConcurrencyError ? 'lost' : 'error', error);
    }
  }

  /** Checked at every ctx call: a halted pass stays halted, and a run told to stop stops here. */
  #enter(): void {
    if (this.halt) throw this.halt;
    if (this.#o.shouldPause?.() || this.#o.signal.aborted) throw this.#halt(new Halt('paused'));
  }

  /**
   * Passes over journaled changes the code does not ask about here: a
   * `changed()` call removed once every run that could take its old path has
   * ended leaves its entries behind in the runs that took the new one.
   */
  #skipChanges(asked?: string): void {
    for (let entry = this.#entries[this.#seq]; entry?.kind === 'change' && entry.name !== asked; entry = this.#entries[this.#seq])
      this.#seq++;
  }

  /** Where a pass that does not go live meets the journal's end. */
  #edge(): Halt {
    this.#edged = true;
    return EDGE;
  }

  /** Matches the next ctx call against the journal. */
  #call(kind: JournalEntry['kind'], name: string): { seq: number; entry: JournalEntry | undefined } {
    this.#enter();
    this.#skipChanges();
    const seq = this.#seq++;
    const entry = this.#entries[seq];
    // The run's code ended here: anything more is code the run never ran.
    if (!entry && this.#o.mode === 'check' && this.#o.ended) {
      throw this.#halt(new Halt('error', new NonDeterminismError(this.runId, seq, 'the end of run()', describe(kind, name))));
    }
    if (entry && (entry.kind !== kind || entry.name !== name)) {
      throw this.#halt(new Halt('error', new NonDeterminismError(this.runId, seq, describe(entry.kind, entry.name), describe(kind, name))));
    }
    return { seq, entry };
  }

  /** About to do something the journal does not hold: refused once a rollback is chosen or the run is told to stop. */
  #goLive(): void {
    if (this.halt) throw this.halt;
    if (this.#stopping) throw this.#stopping;
    if (this.#o.shouldPause?.() || this.#o.signal.aborted) throw this.#halt(new Halt('paused'));
  }

  #halt(halt: Halt): Halt {
    this.halt ??= halt;
    this.#quiet.abort();
    return this.halt;
  }

  /** Appends runtime events, their data checked against their type. */
  #record(...events: NewRunEvent[]): Promise<EventEnvelope[]> {
    return this.#append(events);
  }

  async #append(events: NewEvent[]): Promise<EventEnvelope[]> {
    // No pause check here: a step that finished must get its end recorded, or its effect would be left in doubt
    // (so must a step of another branch that finishes after the run parked on a wait).
    if (this.halt && !settlesAfter(this.halt)) throw this.halt;
    try {
      return await this.#o.log.append(events);
    } catch (error) {
      throw this.#halt(new Halt(error instanceof ConcurrencyError ? 'lost' : 'error', error));
    }
  }

  /**
   * Holds a fact for the run's next append (see RunLog): it is written with
   * the next step's start, a wait, a failure or the run's end, whichever comes
   * first, and before any sleep. Only facts a crash may lose safely are
   * deferred: an event, a value, a checkpoint or a change lost with the
   * process is produced again by the code that re-executes; a step's
   * completion lost leaves the step open, and it runs again under the same
   * key. Returns the version the fact will have.
   */
  #defer(...events: NewEvent[]): number {
    if (this.halt && !settlesAfter(this.halt)) throw this.halt;
    return this.#o.log.defer(...events);
  }

  async #value(kind: ValueKind, produce: () => number | string): Promise<number | string> {
    const { seq, entry } = this.#call('value', kind);
    if (entry?.kind === 'value') return entry.value;
    if (this.#o.mode !== 'run') throw this.#edge();
    this.#goLive();
    const value = produce();
    this.#defer({ type: RunEvents.ValueRecorded, data: { seq, kind, value } });
    return value;
  }

  #register(key: string, step: string, result: unknown, options: StepOptions<any>): void {
    const compensate = options.compensate ?? this.#o.workflow.compensations?.[step];
    const verify = options.verify ?? this.#o.workflow.verifications?.[step];
    if (compensate || verify) this.compensators.set(key, { step, key, result, compensate, verify, retry: options.compensationRetry });
  }

  async #runStep<T>(
    seq: number,
    name: string,
    fn: (io: StepIO) => T | Promise<T>,
    options: StepOptions<T>,
    policy: FailurePolicy | undefined,
    entry: Extract<JournalEntry, { kind: 'step' }> | undefined,
  ): Promise<T> {
    // The rollback count keeps keys unique when a new path reuses this seq after a rollback:
    // the hotel booked after a rollback is a new booking, not a replay of the cancelled one.
    const key = entry?.key ?? `${this.runId}:${seq}:${name}${this.rollbacks.length ? `:r${this.rollbacks.length}` : ''}`;
    const attempts = Math.max(1, options.retry?.attempts ?? 1);
    let attempt = 1;
    let started = false;
    /** Set while the attempt running is one a crash left open (ResumedAttempt). */
    let resumed: ResumedAttempt = {};
    if (entry?.open) {
      attempt = entry.attempt;
      started = true;
      resumed = { resumedAt: wallTime() };
    } else if (entry?.failed) {
      attempt = entry.failed.attempt + 1;
      await this.#sleepUntil(entry.failed.retryAt ?? 0);
    }
    const undo = undoOf(options);
    for (;;) {
      if (!started) {
        // A retry is a new attempt: not once a rollback is chosen or the run is told to stop.
        this.#goLive();
        const irreversible = options.irreversible ? { irreversible: true as const } : {};
        const [started] = await this.#record({
          type: RunEvents.StepStarted,
          data: { seq, name, idempotencyKey: key, attempt, undo, ...irreversible },
        });
        if (options.irreversible) this.#irreversible.push({ step: name, key, startedAt: (started as EventEnvelope).version });
      }
      started = false;
      let error: unknown;
      try {
        const result = await runAttempt({
          name,
          fn,
          options,
          key,
          attempt,
          signal: this.#o.signal,
          breakers: this.#o.breakers,
          clock: this.#o.clock,
        });
        if (result !== undefined) jsonOrThrow(result, `result of step "${name}"`);
        const data = { seq, name, idempotencyKey: key, ...(result === undefined ? {} : { result: result as Json }), ...resumed };
        const completed: NewRunEvent = { type: RunEvents.StepCompleted, data: { ...data, undo, ...compensationRetryOf(options) } };
        // Alone, the completion rides with the next step's start; beside steps still running, which may run long, it is written now.
        if (this.#inflight.size > 1) await this.#record(completed);
        else this.#defer(completed);
        this.#register(key, name, result, options);
        return result;
      } catch (e) {
        if (e instanceof Halt) throw e;
        // Cancelled or shut down mid-attempt: not the step's failure. Nothing is recorded; the step stays open
        // and whoever drives the run next runs it again under the same key.
        if (this.#o.signal.aborted) throw this.#halt(new Halt('paused', e));
        error = e;
      }
      const trigger = triggerOf(error);
      const worthRetrying =
        !(error instanceof NotJsonError || error instanceof NonRetryableError) && (options.retry?.retryIf?.(error) ?? true);
      const final = attempt >= attempts || !worthRetrying;
      const retryAt = final ? undefined : this.#o.clock.now() + backoffDelay(options.retry, attempt, Math.random());
      const [failed] = await this.#record({
        type: RunEvents.StepFailed,
        data: {
          seq,
          name,
          idempotencyKey: key,
          attempt,
          error: serializeError(error),
          trigger,
          final,
          ...(retryAt === undefined ? {} : { retryAt }),
          ...resumed,
        },
      });
      if (final) {
        // A result that cannot be journaled is a bug in the step: no rollback or retry will fix it.
        const thrown = new StepFailedError(name, serializeError(error), { cause: error });
        const at = (failed as EventEnvelope).version;
        return this.#trigger(error instanceof NotJsonError ? 'fail' : policy, asError(error), trigger, at, { step: name, thrown, attempt });
      }
      await this.#sleepUntil(retryAt as number);
      attempt++;
      // The next attempt writes its own start.
      resumed = {};
    }
  }

  /**
   * A trigger fired at version `at` of the log. The policy (a function of the
   * failure, or as it stands) chooses: 'throw' hands the error to the workflow
   * code; a rollback becomes a candidate request (the earliest fired wins, see
   * #stopping) and unwinds `run`; the executor appends the request once every
   * step in flight has recorded its outcome. A rollback that would go back past
   * an irreversible step, unaccepted, throws an IrreversibleStepError instead.
   */
  #trigger(
    policy: FailurePolicy | undefined,
    error: Error,
    kind: TriggerKind,
    at: number,
    o: { step?: string; thrown?: Error; attempt?: number } = {},
  ): never {
    const { step, thrown = error, attempt = 1 } = o;
    const serialized = serializeError(error);
    const failure = { kind, ...(step ? { step } : {}), error: serialized, attempt, rollbacks: this.rollbacks.length };
    const decision = decide(policy, failure);
    // Live and replayed, the code must see the same error: what it is thrown is built only from what the journal holds.
    if (decision.kind === 'throw') throw thrown;
    if (this.#o.mode !== 'run') throw this.#edge();
    const target = this.#target(decision.to);
    const crossed = this.#irreversible.find((s) => s.startedAt > target.version);
    if (crossed && decision.past !== 'irreversible')
      throw new IrreversibleStepError(this.runId, crossed.step, crossed.key, { cause: thrown });
    this.#candidates.push({
      at,
      request: {
        targetVersion: target.version,
        label: target.label,
        ...(target.unreached === undefined ? {} : { unreached: target.unreached }),
        reason: error.message,
        trigger: { kind, ...(step ? { step } : {}), error: serialized },
        after: decision.after,
        ...(decision.past ? { past: decision.past } : {}),
      },
    });
    this.#stopping ??= new Halt('rollback');
    this.#quiet.abort();
    throw this.#stopping;
  }

  /**
   * A label not reached yet falls back to the latest checkpoint, and no checkpoint at all to the start; the
   * label asked for is then `unreached`, so the request (and its marker) say where it went instead.
   */
  #target(to: string): { version: number; label: string; unreached?: string } {
    if (to === 'start') return { version: 1, label: START_LABEL };
    const version = to !== 'latest' ? this.#index[to] : undefined;
    if (version !== undefined) return { version, label: to };
    const unreached = to === 'latest' ? {} : { unreached: to };
    const latest = Object.entries(this.#index).sort((a, b) => b[1] - a[1])[0];
    if (latest) return { version: latest[1], label: latest[0], ...unreached };
    return { version: 1, label: START_LABEL, ...unreached };
  }

  /** Waits until `at` (epoch ms); cut short, with the halt, when the pass halts or a rollback is chosen. A pass that does not go live never waits. */
  async #sleepUntil(at: number): Promise<void> {
    const ms = at - this.#o.clock.now();
    if (ms <= 0 || this.#o.mode !== 'run') return;
    // Nothing is held back while the run sleeps: a crash during the sleep finds its wake-up time journaled.
    if (this.#o.log.pending) await this.#append([]);
    await this.#o.clock.sleep(ms, this.#waits).catch((e) => {
      // Told to stop (a cancel, a shutdown) while asleep: not the code's failure; whoever drives next sleeps the rest.
      throw this.halt ?? this.#stopping ?? (this.#o.signal.aborted ? this.#halt(new Halt('paused', e)) : e);
    });
  }
}

function describe(kind: string, name: string): string {
  if (kind === 'value') return `ctx.${name}()`;
  if (kind === 'change') return `ctx.changed("${name}")`;
  return `${kind} "${name}"`;
}

const CHANGE_ID = /^[A-Za-z0-9_.:@/-]{1,200}$/;

function checkChangeId(change: unknown): void {
  if (typeof change !== 'string' || !CHANGE_ID.test(change)) {
    throw new ValidationError(
      `invalid change id ${JSON.stringify(change)}`,
      [],
      'name each change once, with 1-200 letters, digits and _ . : @ / -, and never reuse the name for another change',
    );
  }
}

/** A halt after which the steps still in flight record their ends: the run was told to stop, or parked on a wait. */
function settlesAfter(halt: Halt): boolean {
  return halt.reason === 'paused' || halt.reason === 'waiting';
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
