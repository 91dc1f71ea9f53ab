import { RewindError } from '../events/errors.js';

/**
 * Where the README explains what may change under running runs, and how to check it (`rewind replay`): the
 * README ships with the package, and the project has no public address to link to.
 */
export const CHANGING_CODE_GUIDE = '"Changing code safely" in the README (node_modules/rewind-runtime/README.md)';

/** No run has this id. Nothing was written. */
export class RunNotFoundError extends RewindError {
  readonly runId: string;
  constructor(runId: string) {
    super(
      'RUN_NOT_FOUND',
      `no run with id "${runId}"`,
      runId.startsWith('run-')
        ? `a run id has no "run-" prefix (that is its stream's name): try "${runId.slice(4)}"`
        : 'list the runs with runtime.list() and use one of their ids',
    );
    this.runId = runId;
  }
}

/** The run names a workflow this runtime does not know. Nothing was written. */
export class UnknownWorkflowError extends RewindError {
  readonly workflow: string;
  constructor(workflow: string) {
    super(
      'UNKNOWN_WORKFLOW',
      `no workflow named "${workflow}" is registered`,
      'pass it in createRuntime({ workflows }) or runtime.register()',
    );
    this.workflow = workflow;
  }
}

/** A run id is already taken by a run of another workflow or with other input. Nothing was written. */
export class RunConflictError extends RewindError {
  constructor(runId: string, detail: string) {
    super(
      'RUN_CONFLICT',
      `run "${runId}" already exists ${detail}`,
      'starting a run twice is idempotent only with the same workflow and input; pick another run id',
    );
  }
}

/** The operation does not fit the run's current status. Nothing was written. */
export class RunStateError extends RewindError {
  readonly status: string;
  /** What was asked of the run ('cancel', 'roll back', …), as the message says it. */
  readonly wanted: string;
  constructor(runId: string, status: string, wanted: string, hint: string) {
    super('RUN_STATE', `run "${runId}" is ${status}; cannot ${wanted}`, hint);
    this.status = status;
    this.wanted = wanted;
  }
}

/**
 * The code asked for something other than what the journal holds at that
 * point: the workflow changed under a running run. Nothing was written; the
 * run stays where it was until code that matches its journal resumes it.
 */
export class NonDeterminismError extends RewindError {
  readonly seq: number;
  readonly expected: string;
  readonly actual: string;
  constructor(runId: string, seq: number, expected: string, actual: string) {
    super(
      'NON_DETERMINISM',
      `run "${runId}" replay diverged at call #${seq}: the journal holds ${expected} but the code asked for ${actual}`,
      `code that changes what runs already did must branch on ctx.changed('id') or be registered as a new version beside the old one; check with \`rewind replay\` before deploying; see ${CHANGING_CODE_GUIDE}`,
    );
    this.seq = seq;
    this.expected = expected;
    this.actual = actual;
  }
}

/** A declared invariant no longer holds after an emitted event. */
export class InvariantError extends RewindError {
  readonly invariant: string;
  constructor(invariant: string, eventType: string) {
    super(
      'INVARIANT',
      `invariant "${invariant}" broke after event "${eventType}"`,
      'roll back to a checkpoint (policy rollbackTo) or fix the reducer/emit',
    );
    this.invariant = invariant;
  }
}

export class StepTimeoutError extends RewindError {
  constructor(step: string, timeoutMs: number) {
    super(
      'STEP_TIMEOUT',
      `step "${step}" did not finish within ${timeoutMs} ms`,
      'raise timeoutMs or make the step honour its AbortSignal',
    );
  }
}

export class BreakerOpenError extends RewindError {
  readonly breaker: string;
  readonly retryAt: number;
  constructor(breaker: string, retryAt: number) {
    super(
      'BREAKER_OPEN',
      `circuit breaker "${breaker}" is open until ${new Date(retryAt).toISOString()}`,
      'wait for the cool-down; the next call after it is a trial',
    );
    this.breaker = breaker;
    this.retryAt = retryAt;
  }
}

export class OutputSchemaError extends RewindError {
  readonly issues: readonly string[];
  constructor(step: string, issues: readonly string[]) {
    super(
      'STEP_OUTPUT_INVALID',
      `output of step "${step}" does not match its schema: ${issues.join('; ')}`,
      'fix the step or its output schema',
    );
    this.issues = issues;
  }
}

/**
 * A step's failure as the journal recorded it. Replays rethrow this (not the
 * original error object, which did not survive serialisation), so code that
 * catches a step failure behaves the same live and replayed.
 */
export class StepFailedError extends RewindError {
  readonly step: string;
  readonly recorded: SerializedError;
  constructor(step: string, error: SerializedError, options?: { cause?: unknown }) {
    super('STEP_FAILED', `step "${step}" failed: ${error.message}`, undefined, options);
    this.step = step;
    this.recorded = error;
  }
}

/**
 * A checkpoint the run's history does not hold: a rollback's target (`purpose` 'rollback', a label or version
 * of its effective history) or a point to travel to (`purpose` 'point', a label). Nothing was written.
 */
export class CheckpointNotFoundError extends RewindError {
  readonly runId: string;
  readonly target: string | number;
  /** The checkpoints the run has: `label@version` for a rollback, labels for a point. */
  readonly known: readonly string[];
  readonly purpose: 'rollback' | 'point';
  constructor(runId: string, target: string | number, known: string[], purpose: 'rollback' | 'point' = 'rollback') {
    super(
      'CHECKPOINT_NOT_FOUND',
      `run "${runId}" has no checkpoint ${typeof target === 'number' ? `at version ${target}` : `"${target}"`}${purpose === 'rollback' ? ' in its effective history' : ''}`,
      purpose === 'point'
        ? known.length
          ? `its checkpoints: ${known.join(', ')}`
          : 'the run has no checkpoint: give a version or a time'
        : known.length
          ? `known checkpoints: ${known.join(', ')} (or 'start')`
          : "the run has no checkpoint yet; use to: 'start'",
    );
    this.runId = runId;
    this.target = target;
    this.known = known;
    this.purpose = purpose;
  }
}

/** A value the journal would have to store is not JSON. Nothing was written for it. */
export class NotJsonError extends RewindError {
  constructor(what: string, detail: string) {
    super(
      'NOT_JSON',
      `${what} cannot be journaled: ${detail}`,
      'return plain JSON (strings, finite numbers, booleans, null, arrays, plain objects)',
    );
  }
}

export interface SerializedError {
  name: string;
  message: string;
  code?: string;
}

export function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { name: error.name, message: error.message, ...(typeof code === 'string' ? { code } : {}) };
  }
  return { name: 'Error', message: String(error) };
}

/**
 * A rollback would go back past a step whose effect cannot be undone. Nothing
 * was written. Accept it with `past: 'irreversible'` (the step is then left as
 * it is and named in the RolledBack marker), or roll back to a later point.
 */
export class IrreversibleStepError extends RewindError {
  readonly runId: string;
  readonly step: string;
  readonly stepKey: string;
  constructor(runId: string, step: string, stepKey: string, options?: { cause?: unknown }) {
    super(
      'IRREVERSIBLE_STEP',
      `run "${runId}" cannot roll back past step "${step}": its effect cannot be undone`,
      "roll back to a point after it, or accept leaving it as it is with past: 'irreversible'",
      options,
    );
    this.runId = runId;
    this.step = step;
    this.stepKey = stepKey;
  }
}

/** A reviewer rejected an approval: a trigger (kind 'rejected') that goes through the run's failure policy. */
export class ApprovalRejectedError extends RewindError {
  readonly label: string;
  readonly reason: string;
  readonly actor: string | undefined;
  constructor(label: string, reason: string, actor?: string) {
    super('APPROVAL_REJECTED', `approval "${label}" was rejected${actor ? ` by ${actor}` : ''}: ${reason}`);
    this.label = label;
    this.reason = reason;
    this.actor = actor;
  }
}

/** No signal came within a wait's timeout: a trigger (kind 'timeout') that goes through the run's failure policy. */
export class WaitTimeoutError extends RewindError {
  readonly signal: string;
  constructor(signal: string, timeoutMs: number | undefined) {
    super(
      'WAIT_TIMEOUT',
      `no signal "${signal}" came${timeoutMs === undefined ? '' : ` within ${timeoutMs} ms`}`,
      'send it sooner, or give the wait a longer timeoutMs',
    );
    this.signal = signal;
  }
}

/** A guardrail over the state or over a step's output failed: a trigger (kind 'guardrail'). */
export class GuardrailError extends RewindError {
  readonly guardrail: string;
  constructor(guardrail: string, where: string) {
    super('GUARDRAIL', `guardrail "${guardrail}" failed ${where}`, 'roll back to a checkpoint (policy rollbackTo) or take another path');
    this.guardrail = guardrail;
  }
}

/**
 * Thrown by a step whose failure retrying cannot fix (a logic error, a
 * declined card): no further attempt is made, the failure goes straight to
 * the policy.
 */
export class NonRetryableError extends Error {
  override readonly name: string = 'NonRetryableError';
  readonly code?: string;
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    if (options?.code) this.code = options.code;
  }
}
