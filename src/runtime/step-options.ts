import { ValidationError } from '../events/errors.js';
import type { RetryOptions } from './policy.js';
import type { StepOptions } from './workflow.js';

// A step's options, checked before anything of the step runs or is written:
// a wrong type must not turn into a step retried without end or a timeout
// silently ignored.

const HINT = 'see the ctx.step options in the README: numbers are milliseconds or counts, hooks are functions';

/** Throws a ValidationError naming every option of `ctx.step(name, …)` that is wrong. */
export function checkStepOptions<T>(name: string, options: StepOptions<T>): void {
  if (typeof options !== 'object' || options === null) throw new ValidationError(`options of step "${name}" must be an object`);
  const issues: string[] = [];
  const fn = (key: keyof StepOptions<T>) => {
    if (options[key] !== undefined && typeof options[key] !== 'function') issues.push(`${key} must be a function`);
  };
  fn('compensate');
  fn('verify');
  if (
    options.timeoutMs !== undefined &&
    !(typeof options.timeoutMs === 'number' && options.timeoutMs > 0 && Number.isFinite(options.timeoutMs))
  )
    issues.push(`timeoutMs must be a positive number of ms, got ${JSON.stringify(options.timeoutMs)}`);
  retryIssues('retry', options.retry, issues);
  retryIssues('compensationRetry', options.compensationRetry, issues);
  if (options.breaker !== undefined && (typeof options.breaker !== 'string' || options.breaker.length === 0))
    issues.push('breaker must be a non-empty name');
  if (options.irreversible !== undefined && typeof options.irreversible !== 'boolean') issues.push('irreversible must be true or false');
  for (const [guardrail, holds] of Object.entries(options.guardrails ?? {}))
    if (typeof holds !== 'function') issues.push(`guardrail "${guardrail}" must be a function`);
  if (issues.length > 0) throw new ValidationError(`invalid options of step "${name}"`, issues, HINT);
  if (options.irreversible && (options.compensate || options.verify))
    throw new ValidationError(
      `step "${name}" is irreversible and has an undo hook`,
      [],
      'an irreversible step has no compensate or verify',
    );
}

function retryIssues(what: string, retry: RetryOptions | undefined, issues: string[]): void {
  if (retry === undefined) return;
  if (typeof retry !== 'object' || retry === null) {
    issues.push(`${what} must be an object like { attempts: 3 }`);
    return;
  }
  const { attempts, initialDelayMs, factor, maxDelayMs, retryIf } = retry;
  if (attempts !== undefined && !(Number.isInteger(attempts) && attempts >= 1))
    issues.push(`${what}.attempts must be a whole number of attempts, 1 or more, got ${JSON.stringify(attempts)}`);
  for (const [key, value] of [
    ['initialDelayMs', initialDelayMs],
    ['maxDelayMs', maxDelayMs],
  ] as const)
    if (value !== undefined && !(typeof value === 'number' && value >= 0 && Number.isFinite(value)))
      issues.push(`${what}.${key} must be a number of ms, 0 or more, got ${JSON.stringify(value)}`);
  if (factor !== undefined && !(typeof factor === 'number' && factor >= 1 && Number.isFinite(factor)))
    issues.push(`${what}.factor must be a number, 1 or more, got ${JSON.stringify(factor)}`);
  if (retryIf !== undefined && typeof retryIf !== 'function') issues.push(`${what}.retryIf must be a function`);
}
