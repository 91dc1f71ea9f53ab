/**
 * What happens once a trigger fires (a step failed after its retries, its
 * output broke its schema, it timed out, its breaker was open, or an
 * invariant broke after ctx.emit). Retrying the step itself is not a policy:
 * it is the step's `retry` option and always comes first.
 *
 * - 'fail': the error is thrown into the workflow code, which may catch it and
 *   take another path; if it escapes `run`, the run fails as it stands.
 * - 'compensate-and-fail': roll back to the start (every completed step is
 *   compensated, newest first), then fail.
 * - { rollbackTo }: roll back to the latest checkpoint or the newest one with
 *   that label (the latest when the label is not reached yet, the start when
 *   there is none), then re-run `run` from the top (`after: 'retry'`, default;
 *   the code sees ctx.rollbacks / ctx.lastRollback and may take another path)
 *   or fail (`after: 'fail'`). After `maxRollbacks` (default 3) rollbacks in
 *   one run it degrades to 'compensate-and-fail', so a path that always fails
 *   cannot loop forever.
 *
 * A step's `onFailure` overrides its workflow's; the default is 'fail'.
 * An error escaping `run` fails the run, compensating first only when the
 * workflow's policy is 'compensate-and-fail'.
 */
export type FailurePolicy =
  | 'fail'
  | 'compensate-and-fail'
  | { rollbackTo: 'latest' | (string & {}); after?: 'retry' | 'fail'; maxRollbacks?: number };

export interface RetryOptions {
  /** Total attempts, including the first. Default 1 (no retry). */
  attempts?: number;
  /** Delay before the second attempt. Default 100 ms. */
  initialDelayMs?: number;
  /** Default 2. */
  factor?: number;
  /** Default 30 s. */
  maxDelayMs?: number;
}

export type Decision = { kind: 'throw' } | { kind: 'rollback'; to: 'latest' | 'start' | (string & {}); after: 'retry' | 'fail' };

export function decide(policy: FailurePolicy | undefined, rollbacksSoFar: number): Decision {
  if (policy === undefined || policy === 'fail') return { kind: 'throw' };
  if (policy === 'compensate-and-fail') return { kind: 'rollback', to: 'start', after: 'fail' };
  if (rollbacksSoFar >= (policy.maxRollbacks ?? 3)) return { kind: 'rollback', to: 'start', after: 'fail' };
  return { kind: 'rollback', to: policy.rollbackTo, after: policy.after ?? 'retry' };
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
