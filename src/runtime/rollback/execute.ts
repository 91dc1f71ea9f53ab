import type { Json } from '../../events/envelope.js';
import type { Breakers } from '../breaker.js';
import type { Clock } from '../clock.js';
import { Halt, type PassOutcome } from '../context.js';
import { NotJsonError, type SerializedError, serializeError } from '../errors.js';
import { type NeedsAttentionData, RunEvents, START_LABEL } from '../events.js';
import { backoffDelay } from '../policy.js';
import { type RunLog, wallTime } from '../run-log.js';
import { compensationRetryOf, jsonOrThrow, runAttempt, undoOf } from '../step-attempt.js';
import type { Workflow } from '../workflow.js';
import type { Closures } from './closures.js';
import type { ProtocolAction } from './decide.js';

// The executor: carries out one action the decider chose, or records how a
// forward pass ended, and appends what happened. It is the only code that
// appends protocol events; two facts that must not be separated are one
// append. It never decides what comes next: the driver asks the decider again.

export interface ExecutorContext {
  log: RunLog;
  clock: Clock;
  breakers: Breakers;
  /** Aborted on shutdown: an effect interrupted by it is left open, to run again under the same key. */
  signal: AbortSignal;
}

export type Executable = Extract<ProtocolAction, { kind: 'settle' | 'compensate' | 'verify' | 'attention' | 'finish' | 'fail' }>;

/** 'replay': the closure the action needs is not in hand; replay the journal to get it back, then ask again. */
export async function carryOut(action: Executable, closures: Closures, x: ExecutorContext): Promise<'done' | 'replay'> {
  const { log } = x;
  switch (action.kind) {
    case 'attention':
      await log.record({ type: RunEvents.NeedsAttention, data: action.attention });
      return 'done';
    case 'fail':
      await log.record({ type: RunEvents.RunFailed, data: { error: action.error } });
      return 'done';
    case 'finish':
      await log.record(
        { type: RunEvents.RolledBack, data: action.marker },
        ...(action.fail ? [{ type: RunEvents.RunFailed, data: { error: action.fail } } as const] : []),
      );
      return 'done';
    case 'settle':
      return settle(action, closures, x);
    case 'compensate':
      return compensate(action, closures, x);
    case 'verify':
      return verify(action, closures, x);
  }
}

/** Runs an in-doubt step again under its own key to learn its outcome. */
async function settle(action: Extract<Executable, { kind: 'settle' }>, closures: Closures, x: ExecutorContext): Promise<'done' | 'replay'> {
  const { step } = action;
  const finisher = closures.finisher(step);
  if (!finisher) {
    if (!closures.replayed) return 'replay';
    const error = {
      name: 'InDoubtStep',
      message: `step "${step.name}" started and never ended, and replaying run() did not reach it, so it cannot be run again to learn whether its effect happened`,
    };
    await attention(x, { step: step.name, stepKey: step.key, stage: 'settle', error });
    return 'done';
  }
  const { fn, options } = finisher;
  await wait(x, action.notBefore);
  const undo = undoOf(options);
  const { seq, name, key } = step;
  if (!action.reopen)
    await x.log.record({
      type: RunEvents.StepStarted,
      data: { seq, name, idempotencyKey: key, attempt: action.attempt, undo, settling: true },
    });
  // An open attempt run again writes no start of its own: its end says when it began (ResumedAttempt).
  const resumed = action.reopen ? { resumedAt: wallTime() } : {};
  try {
    const result = await runAttempt({
      name,
      fn,
      options,
      key,
      attempt: action.attempt,
      signal: x.signal,
      breakers: x.breakers,
      clock: x.clock,
    });
    if (result !== undefined) jsonOrThrow(result, `result of step "${name}"`);
    await x.log.record({
      type: RunEvents.StepCompleted,
      data: {
        seq,
        name,
        idempotencyKey: key,
        ...(result === undefined ? {} : { result: result as Json }),
        undo,
        ...compensationRetryOf(options),
        settling: true,
        ...resumed,
      },
    });
  } catch (e) {
    if (x.signal.aborted) throw new Halt('paused', e);
    const final = action.attempt >= Math.max(1, options.retry?.attempts ?? 1) || e instanceof NotJsonError;
    const retryAt = final ? undefined : x.clock.now() + backoffDelay(options.retry, action.attempt, Math.random());
    await x.log.record({
      type: RunEvents.StepFailed,
      data: {
        seq,
        name,
        idempotencyKey: key,
        attempt: action.attempt,
        error: serializeError(e),
        trigger: 'step-failed',
        final,
        ...(retryAt === undefined ? {} : { retryAt }),
        settling: true,
        ...resumed,
      },
    });
  }
  return 'done';
}

async function compensate(
  action: Extract<Executable, { kind: 'compensate' }>,
  closures: Closures,
  x: ExecutorContext,
): Promise<'done' | 'replay'> {
  const { step, attempt } = action;
  const comp = closures.compensator(step, action.result, action.retry);
  if (!comp?.compensate) {
    if (!closures.replayed) return 'replay';
    const error = { name: 'CompensationNotFound', message: `the compensation of step "${step.name}" was not found by replaying run()` };
    await attention(x, { step: step.name, stepKey: step.key, stage: 'compensation', error });
    return 'done';
  }
  const retry = comp.retry ?? action.retry;
  await wait(x, action.notBefore);
  const idempotencyKey = `${step.key}:undo`;
  if (!action.reopen)
    await x.log.record({ type: RunEvents.CompensationStarted, data: { step: step.name, stepKey: step.key, idempotencyKey, attempt } });
  let failure: unknown;
  try {
    await comp.compensate(comp.result, { idempotencyKey, stepKey: step.key, signal: x.signal, attempt });
  } catch (error) {
    failure = error ?? new Error('compensation failed');
  }
  // Shut down mid-compensation: leave it open; whoever resumes re-runs it under the same key.
  if (x.signal.aborted) throw new Halt('paused', failure);
  if (failure === undefined) {
    await x.log.record({ type: RunEvents.CompensationCompleted, data: { step: step.name, stepKey: step.key } });
    return 'done';
  }
  const final = attempt >= Math.max(1, retry.attempts ?? 3);
  const error = serializeError(failure);
  const failed = { step: step.name, stepKey: step.key, attempt, error };
  if (final) {
    // The final failure and the request for attention are one fact: never one without the other.
    await x.log.record(
      { type: RunEvents.CompensationFailed, data: { ...failed, final } },
      { type: RunEvents.NeedsAttention, data: { step: step.name, stepKey: step.key, stage: 'compensation', error } },
    );
  } else {
    const retryAt = x.clock.now() + backoffDelay(retry, attempt, Math.random());
    await x.log.record({ type: RunEvents.CompensationFailed, data: { ...failed, final, retryAt } });
  }
  return 'done';
}

async function verify(action: Extract<Executable, { kind: 'verify' }>, closures: Closures, x: ExecutorContext): Promise<'done' | 'replay'> {
  const { step } = action;
  const comp = closures.compensator(step, action.result, {});
  if (!comp?.verify) {
    if (!closures.replayed) return 'replay';
    const error = { name: 'VerifyNotFound', message: `the verify hook of step "${step.name}" was not found by replaying run()` };
    await attention(x, { step: step.name, stepKey: step.key, stage: 'verify', error });
    return 'done';
  }
  let ok: boolean;
  let error: SerializedError | undefined;
  try {
    ok =
      (await comp.verify(comp.result, { idempotencyKey: `${step.key}:verify`, stepKey: step.key, signal: x.signal, attempt: 1 })) !== false;
    if (!ok) error = { name: 'VerifyFailed', message: `verify of step "${step.name}" returned false after compensation` };
  } catch (e) {
    ok = false;
    error = serializeError(e);
  }
  if (x.signal.aborted) throw new Halt('paused', error);
  const verified = { type: RunEvents.Verified, data: { step: step.name, stepKey: step.key, ok, ...(error ? { error } : {}) } } as const;
  if (ok) await x.log.record(verified);
  else
    await x.log.record(verified, {
      type: RunEvents.NeedsAttention,
      data: { step: step.name, stepKey: step.key, stage: 'verify', error: error as SerializedError },
    });
  return 'done';
}

function attention(x: ExecutorContext, data: NeedsAttentionData): Promise<unknown> {
  return x.log.record({ type: RunEvents.NeedsAttention, data });
}

/** Waits until `notBefore` (a retry's journaled time); a shutdown cuts it short and leaves the action to whoever resumes. */
async function wait(x: ExecutorContext, notBefore: number | undefined): Promise<void> {
  const ms = (notBefore ?? 0) - x.clock.now();
  if (ms > 0) await x.clock.sleep(ms, x.signal).catch((e) => Promise.reject(new Halt('paused', e)));
}

/**
 * Records how a forward pass ended: the run completed or failed, or a
 * trigger's rollback request (stages 1-2: the target chosen, forward progress
 * halted), or, for a workflow whose policy is 'compensate-and-fail', a
 * request to undo everything and then fail.
 */
export async function recordOutcome(
  outcome: Exclude<PassOutcome, { kind: 'halted' }>,
  workflow: Pick<Workflow, 'name' | 'onFailure'>,
  log: RunLog,
): Promise<void> {
  switch (outcome.kind) {
    case 'rollback':
      await log.record({ type: RunEvents.RollbackRequested, data: outcome.request });
      return;
    case 'threw': {
      const error = serializeError(outcome.error);
      if (workflow.onFailure === 'compensate-and-fail') {
        await log.record({
          type: RunEvents.RollbackRequested,
          data: { targetVersion: 1, label: START_LABEL, reason: error.message, trigger: { kind: 'run-failed', error }, after: 'fail' },
        });
      } else await log.record({ type: RunEvents.RunFailed, data: { error } });
      return;
    }
    case 'returned':
      try {
        jsonOrThrow(outcome.output ?? null, `output of workflow "${workflow.name}"`);
      } catch (error) {
        await log.record({ type: RunEvents.RunFailed, data: { error: serializeError(error) } });
        return;
      }
      await log.record({ type: RunEvents.RunCompleted, data: outcome.output === undefined ? {} : { output: outcome.output as Json } });
  }
}
