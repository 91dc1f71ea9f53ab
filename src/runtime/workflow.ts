import type { ZodType } from 'zod';
import { ValidationError } from '../events/errors.js';
import type { CheckpointIndex, TriggerKind } from './events.js';
import type { FailurePolicy, RetryOptions } from './policy.js';

/** A domain event a workflow emits; `apply` folds these into its state. */
export interface DomainEvent<T extends string = string, D = unknown> {
  type: T;
  data: D;
}

/** What a step's function is given. */
export interface StepIO {
  /** Stable across the step's retries and across resumes after a crash: hand it to external APIs to deduplicate. */
  idempotencyKey: string;
  /** Aborted on timeout or cancellation. */
  signal: AbortSignal;
  attempt: number;
}

/** What a compensation or verify hook is given: its own key, and the key the step ran under. */
export interface CompensationIO extends StepIO {
  /** The compensated step's idempotency key: what the external API knows the effect by. */
  stepKey: string;
}

export interface StepOptions<T> {
  /** Undoes the step's effect. Journaled, retried, idempotent by its own key. */
  compensate?: (result: T, io: CompensationIO) => unknown;
  /** After compensation: is the world as expected? false or a throw blocks the rollback (needs attention). */
  verify?: (result: T, io: CompensationIO) => unknown;
  /** The result must satisfy this schema; a mismatch is a failed attempt. */
  output?: ZodType<T>;
  /** Per attempt; the signal is aborted when it elapses. */
  timeoutMs?: number;
  retry?: RetryOptions;
  /** Retries of this step's compensation; default the runtime's compensationRetry. */
  compensationRetry?: RetryOptions;
  /** Name of a circuit breaker guarding the call. */
  breaker?: string;
  /** Overrides the workflow's policy for this step. */
  onFailure?: FailurePolicy;
  /**
   * Its effect cannot be undone (an email sent, a robot moved): it has no
   * compensation, and a rollback past it is refused unless the request says
   * `past: 'irreversible'`.
   */
  irreversible?: boolean;
  /** A person's yes before it runs: `ctx.approve(label, { details })` first (label: the step's name). */
  approval?: string | { label?: string; details?: unknown };
  /** Named checks over its result (a model's confidence, say): one that fails is a failed attempt, kind 'guardrail'. */
  guardrails?: Record<string, (result: T) => boolean>;
}

export interface WaitOptions<T> {
  /** Give up after this long: a trigger of kind 'timeout' that goes through the policy. Default: wait for good. */
  timeoutMs?: number;
  /** The payload must satisfy this schema; one that does not is used up and the wait goes on. */
  schema?: ZodType<T>;
  /** What a timeout does; default the workflow's policy. */
  onFailure?: FailurePolicy;
}

/** A reviewer's decision, as `ctx.approve` returns it (a rejection is a trigger instead). */
export interface Approval {
  approved: true;
  reason?: string;
  /** Who decided: the signal's sender. */
  actor?: string;
}

export interface ApproveOptions {
  /** What the reviewer sees (journaled with the request; shown by the CLI, the API and the debugger). */
  details?: unknown;
  timeoutMs?: number;
  /** What a rejection (kind 'rejected') or a timeout does; default the workflow's policy. */
  onFailure?: FailurePolicy;
}

export interface RollbackInfo {
  /** Version of the RolledBack marker. */
  version: number;
  targetVersion: number;
  /** Where it went back to: a checkpoint label, or '(start)'. */
  label: string;
  /** The label its policy asked for, which the run had not reached: it went to `label` instead. */
  unreached?: string;
  reason: string;
  trigger: { kind: TriggerKind; step?: string; error?: { name: string; message: string; code?: string } };
}

/** The only door from workflow code to the world: everything through it is journaled. */
export interface RunContext<S = unknown, E extends DomainEvent = DomainEvent> {
  readonly runId: string;
  /** The workflow version the run started under. */
  readonly workflowVersion: string;
  /** The reducer state now. */
  readonly state: S;
  /** True while calls are being answered from the journal. */
  readonly replaying: boolean;
  /** Rollbacks this run has gone through, oldest first: code may take another path after one. */
  readonly rollbacks: readonly RollbackInfo[];
  readonly lastRollback: RollbackInfo | undefined;
  step<T>(name: string, fn: (io: StepIO) => T | Promise<T>, options?: StepOptions<T>): Promise<T>;
  emit(event: E): Promise<void>;
  now(): Promise<number>;
  random(): Promise<number>;
  uuid(): Promise<string>;
  sleep(ms: number): Promise<void>;
  checkpoint(label: string): Promise<void>;
  /**
   * Parks the run until `runtime.signal(runId, name, payload)` (a signal sent
   * before is kept for it), and returns the payload. The run holds no process
   * while it waits; with workers, the signal wakes one.
   */
  waitFor<T = unknown>(name: string, options?: WaitOptions<T>): Promise<T>;
  /** Waits for a person's decision on `label` (`runtime.approve` / `runtime.reject`); a rejection is a trigger. */
  approve(label: string, options?: ApproveOptions): Promise<Approval>;
  /**
   * Whether this run takes the new path of a change to the code:
   * `if (await ctx.changed('refund-first')) { new path } else { old path }`.
   * Asked where the journal ends (a new run, or a run going past this point
   * for the first time) it is true, and journaled; replayed, it is what the
   * journal says: false for a run that went past this point under code that
   * did not ask, so it keeps its old path. One answer per run and change id.
   * See "Changing code safely" in the README.
   */
  changed(change: string): Promise<boolean>;
}

export interface WorkflowDefinition<I, S, E extends DomainEvent, O> {
  name: string;
  version?: string;
  /** Validates (and may transform) the input before anything is written. */
  input?: ZodType<I>;
  initialState: S;
  /** Pure: never mutate `state`. */
  apply: (state: S, event: E) => S;
  /** Named predicates over state, checked after every emit. */
  invariants?: Record<string, (state: S) => boolean>;
  /** Named checks over state (a budget, a confidence), checked after every emit: one that fails is a trigger of kind 'guardrail'. */
  guardrails?: Record<string, (state: S) => boolean>;
  onFailure?: FailurePolicy;
  /**
   * Compensations by step name, used when the step's own `compensate` closure is
   * not in memory (a rollback carried out by another process, or an explicit
   * rollback of a run that is not being driven). Declaring them lets such a
   * rollback read only the events after its target instead of replaying `run`
   * over the whole journal to get the closures back.
   */
  compensations?: Record<string, (result: any, io: CompensationIO) => unknown>;
  /** `verify` hooks by step name, used like `compensations`. */
  verifications?: Record<string, (result: any, io: CompensationIO) => unknown>;
  run: (ctx: RunContext<S, E>, input: I) => Promise<O>;
}

export interface Workflow<I = any, S = any, E extends DomainEvent = any, O = any> extends Readonly<WorkflowDefinition<I, S, E, O>> {
  readonly version: string;
}

export function defineWorkflow<I, S, E extends DomainEvent = DomainEvent, O = unknown>(
  definition: WorkflowDefinition<I, S, E, O>,
): Workflow<I, S, E, O> {
  const issues: string[] = [];
  if (typeof definition.name !== 'string' || !/^[A-Za-z0-9_.:-]{1,100}$/.test(definition.name)) {
    issues.push('name must be 1-100 characters of letters, digits, _ . : -');
  }
  if (typeof definition.apply !== 'function') issues.push('apply must be a function (state, event) => state');
  if (typeof definition.run !== 'function') issues.push('run must be an async function (ctx, input)');
  for (const hooks of ['compensations', 'verifications', 'invariants', 'guardrails'] as const) {
    const declared = definition[hooks];
    if (declared === undefined) continue;
    const what = hooks === 'compensations' || hooks === 'verifications' ? 'step name -> function' : 'name -> predicate over the state';
    if (typeof declared !== 'object' || declared === null) issues.push(`${hooks} must be an object of ${what}`);
    else
      for (const [step, fn] of Object.entries(declared)) if (typeof fn !== 'function') issues.push(`${hooks}.${step} must be a function`);
  }
  if (issues.length) throw new ValidationError('invalid workflow definition', issues);
  return Object.freeze({ ...definition, version: definition.version ?? '1' });
}

export type { CheckpointIndex };
