import type { SerializedError } from '../errors.js';
import type { ApprovalRequest, NeedsAttentionData, PointOfNoReturn } from '../events.js';
import type { RunStatus } from '../journal.js';
import type { RollbackInfo } from '../workflow.js';

export { type RunStatus, statusAfter } from '../journal.js';

/** Every status a run can be in, in the order a person reads them (a filter's choices). */
const EVERY_STATUS: Record<RunStatus, true> = {
  running: true,
  waiting: true,
  completed: true,
  failed: true,
  rolling_back: true,
  rolled_back: true,
  needs_attention: true,
  cancelled: true,
};
export const RUN_STATUSES = Object.keys(EVERY_STATUS) as [RunStatus, ...RunStatus[]];

export function isRunStatus(value: unknown): value is RunStatus {
  return typeof value === 'string' && Object.hasOwn(EVERY_STATUS, value);
}

/** A run as it stands. `S` is the workflow's state, `O` what its `run` returns (see `runtime.start`). */
export interface RunInfo<S = unknown, O = unknown> {
  runId: string;
  workflow: string;
  workflowVersion: string;
  status: RunStatus;
  /** The stream's version: how many events the run has. */
  version: number;
  /** Reducer state of the effective history (undefined when this runtime does not know the workflow). */
  state: S;
  input: unknown;
  /** What `run` returned, once the run completed. */
  output?: O;
  error?: SerializedError;
  rollbacks: RollbackInfo[];
  /** Why the run needs attention, when it does. */
  attention?: NeedsAttentionData;
  /** What the run waits for, when it does: a signal's name, its deadline, and for an approval what the reviewer is asked. */
  waiting?: { name: string; timeoutAt?: number; approval?: ApprovalRequest };
  /** The newest irreversible step of its effective history: no rollback goes back past it unless told to. */
  pointOfNoReturn?: PointOfNoReturn;
  startedAt: string;
  updatedAt: string;
}

export interface RunSummary {
  runId: string;
  workflow: string;
  /** The version of the workflow the run started under, and goes on under until it ends. */
  workflowVersion: string;
  status: RunStatus;
  /** The signal a waiting run waits for (`ctx.waitFor(name)`; `approval:<label>` for `ctx.approve`). */
  waitingFor?: string;
  version: number;
  startedAt: string;
  updatedAt: string;
}

export interface RunFilter {
  status?: RunStatus;
  workflow?: string;
  /** Only runs whose id starts with this (a search by id). */
  idPrefix?: string;
}
