import { ValidationError } from '../events/errors.js';
import type { SerializedError } from './errors.js';
import type { TriggerKind } from './events.js';

/**
 * What happens once a trigger fires (a step failed after its retries, its
 * output broke its schema or a guardrail, it timed out, its breaker was open,
 * an invariant or guardrail over the state broke after ctx.emit, a wait timed
 * out, or an approval was rejected). Retrying the step itself is not a
 * policy: it is the step's `retry` option and always comes first.
 *
 * A policy may be a function of the failure (its kind, step, error, attempt
 * and the rollbacks so far) returning one of the policies below: retry what is
 * transient, roll back a logic error, fail a rejection.
 *
 * - 'fail': the error is thrown into the workflow code, which may catch it and
 *   take another path; if it escapes `run`, the run fails as it stands.
 * - 'compensate-and-fail': roll back to the start (every completed step is
 *   compensated, newest first), then fail.
 * - { rollbackTo }: roll back to the latest checkpoint or the newest one with
 *   that label (the latest when the label is not reached yet, the start when
 *   there is none; the request, its marker and the run's `rollbacks` then name
 *   the label as `unreached`), then re-run `run` from the top (`after: 'retry'`, default;
 *   the code sees ctx.rollbacks / ctx.lastRollback and may take another path)
 *   or fail (`after: 'fail'`). After `maxRollbacks` (default 3) rollbacks in
 *   one run it degrades to 'compensate-and-fail', so a path that always fails
 *   cannot loop forever.
 *
 * A rollback that would go back past an irreversible step is refused unless
 * the policy says `past: 'irreversible'`: the code is thrown an
 * IrreversibleStepError instead.
 *
 * A step's `onFailure` overrides its workflow's; the default is 'fail'.
 * An error escaping `run` fails the run, compensating first only when the
 * workflow's policy is (or, for a function, chooses) 'compensate-and-fail'.
 */
export type FailurePolicy = StaticPolicy | ((failure: Failure) => StaticPolicy);

/** A policy as it stands, or what a policy function chose. */
export type StaticPolicy =
  | 'fail'
  | 'compensate-and-fail'
  | {
      rollbackTo: 'latest' | (string & {});
      after?: 'retry' | 'fail';
      maxRollbacks?: number;
      /** Go back past irreversible steps, leaving them as they are (default: refuse, and the error goes to the code). */
      past?: 'irreversible';
    };

/**
 * What a policy function is told about a failure, all of it from the journal,
 * so replay chooses as the live run did: a transient error can be retried, a
 * logic error rolled back, a rejection failed.
 */
export interface Failure {
  kind: TriggerKind;
  /** The step (or the wait, or the approval's label) it happened in, when it did. */
  step?: string;
  error: SerializedError;
  /** The attempt that failed last (1 for triggers that are not a step's). */
  attempt: number;
  /** Rollbacks the run has been through so far. */
  rollbacks: number;
}

export interface RetryOptions {
  /** Total attempts, including the first. Default 1 (no retry). */
  attempts?: number;
  /**
   * Retry only errors this says are worth it (a step's retries; a compensation's ignore it).
   * A step that throws NonRetryableError is never retried either.
   */
  retryIf?: (error: unknown) => boolean;
  /** Delay before the second attempt. Default 100 ms. */
  initialDelayMs?: number;
  /** Default 2. */
  factor?: number;
  /** Default 30 s. */
  maxDelayMs?: number;
}

export type Decision =
  | { kind: 'throw' }
  | { kind: 'rollback'; to: 'latest' | 'start' | (string & {}); after: 'retry' | 'fail'; past?: 'irreversible' };

/** The policy as it stands for this failure: a policy function is called with it. */
export function policyFor(policy: FailurePolicy | undefined, failure: Failure): StaticPolicy | undefined {
  return typeof policy === 'function' ? policy(failure) : policy;
}

/** What the policy says for this failure. A policy function is called with it; what it returns is read as a policy. */
export function decide(policy: FailurePolicy | undefined, failure: Failure): Decision {
  const chosen = policyFor(policy, failure);
  if (chosen === undefined || chosen === 'fail') return { kind: 'throw' };
  if (chosen === 'compensate-and-fail') return { kind: 'rollback', to: 'start', after: 'fail' };
  if (typeof chosen !== 'object' || chosen === null || typeof chosen.rollbackTo !== 'string') {
    throw new ValidationError(
      `a failure policy chose ${JSON.stringify(chosen)}`,
      [],
      "return 'fail', 'compensate-and-fail' or { rollbackTo, after?, maxRollbacks?, past? }",
    );
  }
  const past = chosen.past === 'irreversible' ? { past: 'irreversible' as const } : {};
  if (failure.rollbacks >= (chosen.maxRollbacks ?? 3)) return { kind: 'rollback', to: 'start', after: 'fail', ...past };
  return { kind: 'rollback', to: chosen.rollbackTo, after: chosen.after ?? 'retry', ...past };
}

/**
 * Exponential backoff with "equal jitter": half the delay is fixed, half is
 * random, so retries of many runs spread out but never collapse to zero.
 * `random01` is drawn by the caller and journaled with the failure, which
 * is what makes a replay wait exactly as the live run did.
 */
export function backoffDelay(retry: RetryOptions | undefined, attempt: number, random01: number): number {
  const initial = retry?.initialDelayMs ?? 100;
  const ceiling = Math.min(retry?.maxDelayMs ?? 30_000, initial * (retry?.factor ?? 2) ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (random01 * ceiling) / 2);
}
