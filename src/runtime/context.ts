import { randomUUID } from 'node:crypto';
import { canonicalJson } from '../events/canonical.js';
import type { Json, NewEvent } from '../events/envelope.js';
import { ConcurrencyError, ValidationError } from '../events/errors.js';
import type { Breakers } from './breaker.js';
import type { Clock } from './clock.js';
import {
  BreakerOpenError,
  InvariantError,
  NonDeterminismError,
  NotJsonError,
  OutputSchemaError,
  StepFailedError,
  StepTimeoutError,
  serializeError,
} from './errors.js';
import {
  type CheckpointIndex,
  isRunEventType,
  RunEvents,
  START_LABEL,
  type StepCompletedData,
  type TriggerKind,
  type ValueKind,
} from './events.js';
import { effectiveEvents, type JournalEntry, journalOf, rollbacksOf } from './history.js';
import { backoffDelay, decide, type FailurePolicy, type RetryOptions } from './policy.js';
import type { RunLog } from './run-log.js';
import type { DomainEvent, RollbackInfo, RunContext, StepIO, StepOptions, Workflow } from './workflow.js';

/**
 * Why a pass stopped driving the workflow code. It is thrown through the
 * user's `run` to unwind it; should the code catch it, the pass stays halted
 * (every later ctx call throws it again) and whatever `run` returns is ignored.
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
 * The end of the journal in a collect pass. Not sticky, unlike other halts:
 * steps started alongside it (Promise.all) must still be answered from the
 * journal so that their compensations are found.
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

export interface PassOptions {
  workflow: Workflow;
  log: RunLog;
  breakers: Breakers;
  clock: Clock;
  /**
   * 'run' goes live at the end of the journal. 'collect' stops there: it
   * replays only to gather the compensate/verify closures of completed steps
   * for a rollback resumed in a fresh process.
   */
  mode: 'run' | 'collect';
  /** Aborted on cancel: passed on to every step's signal. */
  signal: AbortSignal;
  /** Checked at every ctx call: an operator's rollback waits for the code to reach one. */
  shouldPause?: () => boolean;
}

/** One execution of `run(ctx, input)` over a run's effective journal: the RunContext workflow code sees. */
export class Pass<S = unknown> implements RunContext<S, DomainEvent> {
  readonly runId: string;
  readonly workflowVersion: string;
  readonly rollbacks: readonly RollbackInfo[];
  readonly compensators = new Map<string, Compensator>();
  halt: Halt | undefined;
  readonly #o: PassOptions;
  readonly #entries: JournalEntry[];
  #seq = 0;
  #state: S;
  #index: CheckpointIndex = {};
  /** Live steps not settled yet, so a rollback can wait for siblings running in parallel to record their outcome. */
  readonly #inflight = new Map<number, Promise<unknown>>();
  #rollingBack: Promise<never> | undefined;

  constructor(options: PassOptions) {
    this.#o = options;
    this.runId = options.log.runId;
    // The version the run started under, not the code's: what code branches on to keep old runs replaying.
    this.workflowVersion =
      (options.log.events[0]?.data as { workflowVersion?: string } | undefined)?.workflowVersion ?? options.workflow.version;
    this.#entries = journalOf(effectiveEvents(options.log.events));
    this.rollbacks = rollbacksOf(options.log.events);
    this.#state = options.workflow.initialState as S;
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
  /** Journal entries the code never asked for: it took a shorter path than the one recorded. */
  get unconsumed(): JournalEntry | undefined {
    return this.#entries[this.#seq];
  }
  get seq(): number {
    return this.#seq;
  }

  /**
   * Settles once nothing the pass started is still running. `run` can settle
   * before its steps do (Promise.all rejects on the first failure), and the
   * pass's outcome, e.g. a rollback waiting for a sibling step, is only known then.
   */
  async idle(): Promise<void> {
    while (this.#inflight.size > 0 || this.#rollingBack) {
      await Promise.allSettled([...this.#inflight.values(), this.#rollingBack]);
      if (this.halt || this.#inflight.size === 0) return;
    }
  }

  async step<T>(name: string, fn: (io: StepIO) => T | Promise<T>, options: StepOptions<T> = {}): Promise<T> {
    if (typeof name !== 'string' || name.length === 0) throw new ValidationError('ctx.step needs a non-empty name');
    if (typeof fn !== 'function') throw new ValidationError(`ctx.step("${name}") needs a function`);
    const { seq, entry } = this.#call('step', name);
    const policy = options.onFailure ?? this.#o.workflow.onFailure;
    if (entry?.kind === 'step' && entry.completed) {
      this.#register(entry.key, name, entry.completed.result, options);
      return entry.completed.result as T;
    }
    if (entry?.kind === 'step' && entry.failed?.final) {
      const { error, trigger } = entry.failed;
      return this.#trigger(policy, Object.assign(new Error(error.message), error), trigger, name, new StepFailedError(name, error));
    }
    if (this.#o.mode === 'collect') throw EDGE;
    const running = this.#runStep(seq, name, fn, options, policy, entry?.kind === 'step' ? entry : undefined);
    this.#inflight.set(seq, running);
    return running.finally(() => this.#inflight.delete(seq));
  }

  async emit(event: DomainEvent): Promise<void> {
    if (!event || typeof event.type !== 'string' || event.type.length === 0) throw new ValidationError('ctx.emit needs { type, data }');
    if (isRunEventType(event.type))
      throw new ValidationError(`"${event.type}" is a runtime event type`, [], 'give domain events their own type names');
    const data = event.data === undefined ? null : event.data;
    jsonOrThrow(data, `data of event "${event.type}"`);
    const { seq, entry } = this.#call('emit', event.type);
    let recorded: DomainEvent = { type: event.type, data };
    if (entry?.kind === 'emit') recorded = entry.event;
    else {
      if (this.#o.mode === 'collect') throw EDGE;
      await this.#append([{ type: event.type, data, metadata: { seq } }]);
    }
    this.#state = this.#o.workflow.apply(this.#state, recorded);
    for (const [invariant, holds] of Object.entries(this.#o.workflow.invariants ?? {})) {
      if (!holds(this.#state)) await this.#trigger(this.#o.workflow.onFailure, new InvariantError(invariant, event.type), 'invariant');
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
    await this.#o.clock.sleep(wakeAt - this.#o.clock.now(), this.#o.signal).catch((e) => {
      throw this.halt ?? e;
    });
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
    if (this.#o.mode === 'collect') throw EDGE;
    const state = this.#state === undefined ? null : this.#state;
    jsonOrThrow(state, `state at checkpoint "${label}"`);
    const index = { ...this.#index, [label]: this.#o.log.version + 1 };
    // The rollbacks so far ride along, so a reader starting at this checkpoint never reads what came before it.
    const rollbacks = this.rollbacks as unknown as Json;
    await this.#append([{ type: RunEvents.Checkpoint, data: { seq, label, state: state as Json, index, rollbacks } }]);
    this.#index = index;
  }

  /** Matches the next ctx call against the journal. */
  #call(kind: JournalEntry['kind'], name: string): { seq: number; entry: JournalEntry | undefined } {
    this.#guard();
    const seq = this.#seq++;
    const entry = this.#entries[seq];
    if (entry && (entry.kind !== kind || entry.name !== name)) {
      throw this.#stop(new Halt('error', new NonDeterminismError(this.runId, seq, describe(entry.kind, entry.name), describe(kind, name))));
    }
    return { seq, entry };
  }

  #guard(): void {
    if (this.halt) throw this.halt;
    if (this.#o.shouldPause?.()) throw this.#stop(new Halt('paused'));
  }

  #stop(halt: Halt): Halt {
    this.halt ??= halt;
    return this.halt;
  }

  async #append(events: NewEvent[]): Promise<void> {
    // No pause check here: a step that finished must get its end recorded, or its effect would escape compensation.
    if (this.halt) throw this.halt;
    try {
      await this.#o.log.append(events);
    } catch (error) {
      throw this.#stop(new Halt(error instanceof ConcurrencyError ? 'lost' : 'error', error));
    }
  }

  async #value(kind: ValueKind, produce: () => number | string): Promise<number | string> {
    const { seq, entry } = this.#call('value', kind);
    if (entry?.kind === 'value') return entry.value;
    if (this.#o.mode === 'collect') throw EDGE;
    const value = produce();
    await this.#append([{ type: RunEvents.ValueRecorded, data: { seq, kind, value } }]);
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
    for (;;) {
      if (!started) await this.#append([{ type: RunEvents.StepStarted, data: { seq, name, idempotencyKey: key, attempt } }]);
      started = false;
      let error: unknown;
      try {
        const result = await this.#attempt(name, fn, options, key, attempt);
        if (result !== undefined) jsonOrThrow(result, `result of step "${name}"`);
        await this.#append([
          {
            type: RunEvents.StepCompleted,
            data: { seq, name, idempotencyKey: key, ...(result === undefined ? {} : { result: result as Json }), ...undoOf(options) },
          },
        ]);
        this.#register(key, name, result, options);
        return result;
      } catch (e) {
        if (e instanceof Halt || this.halt) throw this.halt ?? e;
        // Cancelled or shut down mid-attempt: not the step's failure, so nothing is recorded against it.
        if (this.#o.signal.aborted) throw this.#stop(new Halt('paused', e));
        error = e;
      }
      const trigger = triggerOf(error);
      const final = attempt >= attempts || error instanceof NotJsonError;
      const retryAt = final ? undefined : this.#o.clock.now() + backoffDelay(options.retry, attempt, Math.random());
      await this.#append([
        {
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
        },
      ]);
      if (final) {
        // A result that cannot be journaled is a bug in the step: no rollback or retry will fix it.
        const thrown = new StepFailedError(name, serializeError(error), { cause: error });
        return this.#trigger(error instanceof NotJsonError ? 'fail' : policy, asError(error), trigger, name, thrown, seq);
      }
      await this.#sleepUntil(retryAt as number);
      attempt++;
    }
  }

  async #attempt<T>(name: string, fn: (io: StepIO) => T | Promise<T>, options: StepOptions<T>, key: string, attempt: number): Promise<T> {
    const breakers = this.#o.breakers;
    if (options.breaker) await breakers.acquire(options.breaker);
    const controller = new AbortController();
    const onAbort = () => controller.abort(this.#o.signal.reason);
    this.#o.signal.addEventListener('abort', onAbort, { once: true });
    try {
      let result = await withTimeout(
        Promise.resolve().then(() => fn({ idempotencyKey: key, signal: controller.signal, attempt })),
        options.timeoutMs,
        () => {
          const error = new StepTimeoutError(name, options.timeoutMs as number);
          controller.abort(error);
          return error;
        },
      );
      if (options.output) {
        const parsed = options.output.safeParse(result);
        if (!parsed.success) {
          throw new OutputSchemaError(
            name,
            parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`),
          );
        }
        result = parsed.data as Awaited<T>;
      }
      if (options.breaker) await breakers.success(options.breaker);
      return result;
    } catch (error) {
      if (options.breaker && !(error instanceof BreakerOpenError)) await breakers.failure(options.breaker);
      throw error;
    } finally {
      this.#o.signal.removeEventListener('abort', onAbort);
    }
  }

  /**
   * A trigger fired. 'throw' hands the error to the workflow code; a rollback
   * appends RollbackRequested (stages 1-2: target chosen, forward progress
   * halted) and unwinds `run` so the runtime can carry out the protocol.
   */
  async #trigger(
    policy: FailurePolicy | undefined,
    error: Error,
    kind: TriggerKind,
    step?: string,
    thrown: Error = error,
    ownSeq?: number,
  ): Promise<never> {
    const decision = decide(policy, this.rollbacks.length);
    // Live and replayed, the code must see the same error: what it is thrown is built only from what the journal holds.
    if (decision.kind === 'throw') throw thrown;
    if (this.#o.mode === 'collect') throw EDGE;
    // A sibling failing while a rollback waits for it just settles; waiting on the rollback would wait on itself.
    if (this.#rollingBack) throw new Halt('rollback');
    this.#rollingBack = (async (): Promise<never> => {
      // Steps running in parallel finish and record their outcome first: one that completed unrecorded
      // under the request would escape compensation.
      await Promise.allSettled([...this.#inflight].filter(([seq]) => seq !== ownSeq).map(([, p]) => p));
      const target = this.#target(decision.to);
      await this.#append([
        {
          type: RunEvents.RollbackRequested,
          data: {
            targetVersion: target.version,
            label: target.label,
            reason: error.message,
            trigger: { kind, ...(step ? { step } : {}), error: serializeError(error) },
            after: decision.after,
          },
        },
      ]);
      throw this.#stop(new Halt('rollback'));
    })();
    return this.#rollingBack;
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

  async #sleepUntil(at: number): Promise<void> {
    const ms = at - this.#o.clock.now();
    if (ms > 0) {
      await this.#o.clock.sleep(ms, this.#o.signal).catch((e) => {
        throw this.halt ?? e;
      });
    }
  }
}

/**
 * Which undo hooks the step was given inline, journaled with its result: a
 * rollback in a process that never ran the step then knows whether it needs
 * a closure it can only get back by replaying `run` (see rollback.ts).
 */
function undoOf(options: StepOptions<any>): Pick<StepCompletedData, 'undo' | 'compensationRetry'> {
  const undo: NonNullable<StepCompletedData['undo']> = [];
  if (options.compensate) undo.push('compensate');
  if (options.verify) undo.push('verify');
  let retry: Json | undefined;
  try {
    if (options.compensationRetry) retry = JSON.parse(canonicalJson(options.compensationRetry)) as Json;
  } catch {
    // Not JSON: a rollback without the closure in memory uses the runtime's default.
  }
  return { undo, ...(retry === undefined ? {} : { compensationRetry: retry as RetryOptions }) };
}

function describe(kind: string, name: string): string {
  return kind === 'value' ? `ctx.${name}()` : `${kind} "${name}"`;
}

function triggerOf(error: unknown): TriggerKind {
  if (error instanceof StepTimeoutError) return 'timeout';
  if (error instanceof BreakerOpenError) return 'breaker-open';
  if (error instanceof OutputSchemaError) return 'output-invalid';
  return 'step-failed';
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

export function jsonOrThrow(value: unknown, what: string): void {
  try {
    canonicalJson(value);
  } catch (error) {
    throw new NotJsonError(what, (error as Error).message);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number | undefined, onTimeout: () => Error): Promise<T> {
  if (!ms || ms <= 0) return promise;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}
