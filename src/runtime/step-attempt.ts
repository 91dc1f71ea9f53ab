import { canonicalJson } from '../events/canonical.js';
import { ValidationError } from '../events/errors.js';
import type { Breakers } from './breaker.js';
import { type Clock, systemClock } from './clock.js';
import { BreakerOpenError, GuardrailError, NotJsonError, OutputSchemaError, StepTimeoutError } from './errors.js';
import type { StepCompletedData, TriggerKind, UndoHook } from './events.js';
import type { RetryOptions } from './policy.js';
import type { StepIO, StepOptions } from './workflow.js';

// One attempt of a step's function, with its guards: the circuit breaker, the
// timeout, the output schema and the run's abort signal. The forward pass and
// the rollback protocol (settling an in-doubt step) both run attempts here.

export interface Attempt<T> {
  name: string;
  fn: (io: StepIO) => T | Promise<T>;
  options: StepOptions<T>;
  key: string;
  attempt: number;
  /** The run's signal: aborted on cancel or shutdown. An attempt never starts once it is aborted. */
  signal: AbortSignal;
  breakers: Breakers;
  /** What times the attempt out: a test's fake clock skips the wait. Default the system clock. */
  clock?: Clock;
}

export async function runAttempt<T>(a: Attempt<T>): Promise<T> {
  const { name, fn, options, key, attempt, signal, breakers, clock = systemClock } = a;
  // Checked before the breaker and the function: a run told to stop starts nothing new.
  signal.throwIfAborted();
  if (options.breaker) await breakers.acquire(options.breaker);
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    signal.throwIfAborted();
    let result = await withTimeout(
      Promise.resolve().then(() => fn({ idempotencyKey: key, signal: controller.signal, attempt })),
      options.timeoutMs,
      clock,
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
    for (const [guardrail, holds] of Object.entries(options.guardrails ?? {})) {
      if (!holds(result)) throw new GuardrailError(guardrail, `on the output of step "${name}"`);
    }
    if (options.breaker) await breakers.success(options.breaker);
    return result;
  } catch (error) {
    if (options.breaker && !(error instanceof BreakerOpenError)) await breakers.failure(options.breaker);
    throw error;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** What kind of trigger a step's final failure is. */
export function triggerOf(error: unknown): TriggerKind {
  if (error instanceof StepTimeoutError) return 'timeout';
  if (error instanceof BreakerOpenError) return 'breaker-open';
  if (error instanceof OutputSchemaError) return 'output-invalid';
  if (error instanceof GuardrailError) return 'guardrail';
  return 'step-failed';
}

/**
 * Which undo hooks the step was given inline, journaled with its start and its
 * result: a rollback in a process that never ran the step then knows whether
 * it needs a closure it can only get back by replaying `run`.
 */
export function undoOf(options: StepOptions<any>): UndoHook[] {
  const undo: UndoHook[] = [];
  if (options.compensate) undo.push('compensate');
  if (options.verify) undo.push('verify');
  return undo;
}

/** The step's compensation retry options as JSON, when it has them (a rollback without the closure uses them). */
export function compensationRetryOf(options: StepOptions<any>): Pick<StepCompletedData, 'compensationRetry'> {
  const retry = options.compensationRetry;
  if (!retry) return {};
  const journaled: RetryOptions = {};
  for (const field of ['attempts', 'initialDelayMs', 'factor', 'maxDelayMs'] as const) {
    const value = retry[field];
    // Only finite numbers are journaled; anything else leaves a rollback without the closure to the runtime's default.
    if (typeof value === 'number' && Number.isFinite(value)) journaled[field] = value;
  }
  return { compensationRetry: journaled };
}

/**
 * NotJsonError naming what is not JSON and where. Only canonicalJson's own
 * refusal is reworded: any other error (a getter that throws, a bug) goes on
 * as it is, so its message is never presented as something the caller sent.
 */
export function jsonOrThrow(value: unknown, what: string): void {
  try {
    canonicalJson(value);
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    throw new NotJsonError(what, error.message);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number | undefined, clock: Clock, onTimeout: () => Error): Promise<T> {
  if (!ms || ms <= 0) return promise;
  const settled = new AbortController();
  // Rejects with the abort's reason once the promise settles first: that rejection is handled by the race below.
  const timeout = clock.sleep(ms, settled.signal).then(() => Promise.reject(onTimeout()));
  return Promise.race([promise, timeout]).finally(() => settled.abort());
}
