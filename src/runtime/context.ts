import { randomUUID } from 'node:crypto';
import type { EventEnvelope, Json, NewEvent } from '../events/envelope.js';
import { ConcurrencyError, ValidationError } from '../events/errors.js';
import type { Breakers } from './breaker.js';
import type { Clock } from './clock.js';
import { InvariantError, NonDeterminismError, NotJsonError, StepFailedError, serializeError } from './errors.js';
import {
  type CheckpointIndex,
  isRunEventType,
  type NewRunEvent,
  type RollbackRequestedData,
  RunEvents,
  START_LABEL,
  type TriggerKind,
  type ValueKind,
} from './events.js';
import { effectiveEvents, type JournalEntry, journalOf, rollbacksOf } from './journal.js';
import { backoffDelay, decide, type FailurePolicy, type RetryOptions } from './policy.js';
import type { RunLog } from './run-log.js';
import { compensationRetryOf, jsonOrThrow, runAttempt, triggerOf, undoOf } from './step-attempt.js';
import type { DomainEvent, RollbackInfo, RunContext, StepIO, StepOptions, Workflow } from './workflow.js';

/**
 * Why a pass stopped driving the workflow code. It is thrown through the
 * user's `run` to unwind it; should the code catch it, the pass stays halted
 * (every later ctx call that would go live throws it again) and whatever
 * `run` returns is ignored.
 */
export class Halt extends Error {
  readonly reason: 'rollback' | 'edge' | 'paused' | 'lost' | 'error';
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
}

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
    if (this.halt) return { kind: 'halted', halt: this.halt };
    const first = this.#candidates.sort((a, b) => a.at - b.at)[0];
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
      return this.#trigger(policy, Object.assign(new Error(error.message), error), trigger, step.failedAt ?? 0, name, thrown);
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
      const [appended] = await this.#append([{ type: event.type, data, metadata: { seq } }]);
      version = (appended as EventEnvelope).version;
    }
    this.#state = this.#o.workflow.apply(this.#state, recorded);
    for (const [invariant, holds] of Object.entries(this.#o.workflow.invariants ?? {})) {
      if (!holds(this.#state))
        await this.#trigger(this.#o.workflow.onFailure, new InvariantError(invariant, event.type), 'invariant', version);
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
    const index = { ...this.#index, [label]: this.#o.log.version + 1 };
    // The rollbacks so far ride along, so a reader starting at this checkpoint never reads what came before it.
    const rollbacks = this.rollbacks.map((r) => ({ ...r }));
    await this.#record({ type: RunEvents.Checkpoint, data: { seq, label, state: state as Json, index, rollbacks } });
    this.#index = index;
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
      await this.#record({ type: RunEvents.ChangeRecorded, data: { seq, change } });
    }
    return answer;
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
    // No pause check here: a step that finished must get its end recorded, or its effect would be left in doubt.
    if (this.halt && this.halt.reason !== 'paused') throw this.halt;
    try {
      return await this.#o.log.append(events);
    } catch (error) {
      throw this.#halt(new Halt(error instanceof ConcurrencyError ? 'lost' : 'error', error));
    }
  }

  async #value(kind: ValueKind, produce: () => number | string): Promise<number | string> {
    const { seq, entry } = this.#call('value', kind);
    if (entry?.kind === 'value') return entry.value;
    if (this.#o.mode !== 'run') throw this.#edge();
    this.#goLive();
    const value = produce();
    await this.#record({ type: RunEvents.ValueRecorded, data: { seq, kind, value } });
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
    if (entry?.open) {
      attempt = entry.attempt;
      started = true;
    } else if (entry?.failed) {
      attempt = entry.failed.attempt + 1;
      await this.#sleepUntil(entry.failed.retryAt ?? 0);
    }
    const undo = undoOf(options);
    for (;;) {
      if (!started) {
        // A retry is a new attempt: not once a rollback is chosen or the run is told to stop.
        this.#goLive();
        await this.#record({ type: RunEvents.StepStarted, data: { seq, name, idempotencyKey: key, attempt, undo } });
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
        const data = { seq, name, idempotencyKey: key, ...(result === undefined ? {} : { result: result as Json }) };
        await this.#record({ type: RunEvents.StepCompleted, data: { ...data, undo, ...compensationRetryOf(options) } });
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
      const final = attempt >= attempts || error instanceof NotJsonError;
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
        },
      });
      if (final) {
        // A result that cannot be journaled is a bug in the step: no rollback or retry will fix it.
        const thrown = new StepFailedError(name, serializeError(error), { cause: error });
        const at = (failed as EventEnvelope).version;
        return this.#trigger(error instanceof NotJsonError ? 'fail' : policy, asError(error), trigger, at, name, thrown);
      }
      await this.#sleepUntil(retryAt as number);
      attempt++;
    }
  }

  /**
   * A trigger fired at version `at` of the log. 'throw' hands the error to the
   * workflow code; a rollback becomes a candidate request (the earliest fired
   * wins, see #stopping) and unwinds `run`; the executor appends the request
   * once every step in flight has recorded its outcome.
   */
  #trigger(policy: FailurePolicy | undefined, error: Error, kind: TriggerKind, at: number, step?: string, thrown: Error = error): never {
    const decision = decide(policy, this.rollbacks.length);
    // Live and replayed, the code must see the same error: what it is thrown is built only from what the journal holds.
    if (decision.kind === 'throw') throw thrown;
    if (this.#o.mode !== 'run') throw this.#edge();
    const target = this.#target(decision.to);
    this.#candidates.push({
      at,
      request: {
        targetVersion: target.version,
        label: target.label,
        reason: error.message,
        trigger: { kind, ...(step ? { step } : {}), error: serializeError(error) },
        after: decision.after,
      },
    });
    this.#stopping ??= new Halt('rollback');
    this.#quiet.abort();
    throw this.#stopping;
  }

  /** A label not reached yet falls back to the latest checkpoint, and no checkpoint at all to the start. */
  #target(to: string): { version: number; label: string } {
    if (to !== 'start') {
      const version = to !== 'latest' ? this.#index[to] : undefined;
      if (version !== undefined) return { version, label: to };
      const latest = Object.entries(this.#index).sort((a, b) => b[1] - a[1])[0];
      if (latest) return { version: latest[1], label: latest[0] };
    }
    return { version: 1, label: START_LABEL };
  }

  /** Waits until `at` (epoch ms); cut short, with the halt, when the pass halts or a rollback is chosen. A pass that does not go live never waits. */
  async #sleepUntil(at: number): Promise<void> {
    const ms = at - this.#o.clock.now();
    if (ms <= 0 || this.#o.mode !== 'run') return;
    await this.#o.clock.sleep(ms, this.#waits).catch((e) => {
      throw this.halt ?? this.#stopping ?? e;
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

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
