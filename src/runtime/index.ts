/**
 * The runtime: durable runs over the event log.
 *
 * - A run is the stream `run-<id>`. Every ctx call (step, emit, now, random,
 *   uuid, sleep, checkpoint) is one journal entry, matched by call order on
 *   replay; a recorded result is returned without running anything again.
 * - The effective history drops, for every RolledBack marker, the events
 *   between its target and itself; nothing is ever deleted (journal.ts).
 * - Every append expects the version the driver last saw, so a second worker
 *   (or a cancel, or an operator's rollback) makes the first one stop.
 * - The rollback protocol is one state machine: a pure decider says the next
 *   action from a run's events (rollback/decide.ts), one executor carries it
 *   out and appends (rollback/execute.ts), one loop asks again (driver.ts).
 * - Pure parts: journal.ts, rollback/decide.ts, policy.ts, the breaker
 *   transitions, and the run model (model/: what a run's events mean, shared
 *   with the CLI and the web debugger's browser bundle). The shell:
 *   context.ts (one pass of `run`), the executor, driver.ts, runtime.ts (the
 *   facade), time-travel.ts and fork.ts (reads and forks of stored runs).
 */

export type { RunOrder } from '../store/run-index.js';
export { BreakerEvents, type BreakerOptions, type BreakerState, Breakers } from './breaker.js';
export { type Clock, systemClock } from './clock.js';
export {
  Coordinator,
  createCoordinator,
  defineGroup,
  type GroupDefinition,
  GroupEvents,
  type GroupInfo,
  GroupNotFoundError,
  type GroupRollbackRequest,
  GroupStateError,
  type GroupStatus,
  groupStreamOf,
  LabelMissingError,
  type ParticipantDefinition,
  type ParticipantInfo,
} from './coordinator.js';
export { type DriveResult, driveRun } from './driver.js';
export * from './errors.js';
export * from './events.js';
export { type ForkOptions, ForkPointError, planFork } from './fork.js';
export {
  checkpointIndexOf,
  effectiveEvents,
  foldState,
  type JournalEntry,
  journalOf,
  type RunStatus,
  rollbacksOf,
  statusAfter,
} from './journal.js';
export {
  type At,
  type CheckpointRecord,
  type DivergentEvent,
  diffRuns,
  diffState,
  type ForkOrigin,
  formatPath,
  type HistoryEvent,
  historyOf,
  isRunStatus,
  type Relation,
  type RollbackRecord,
  RUN_STATUSES,
  type RunDiff,
  type RunHistory,
  resolveAt,
  type StateAt,
  type StateDiff,
  type StatePath,
  TimeTravelError,
} from './model/index.js';
export {
  backoffDelay,
  type Decision,
  decide,
  type Failure,
  type FailurePolicy,
  policyFor,
  type RetryOptions,
  type StaticPolicy,
} from './policy.js';
export * from './reactions/index.js';
export {
  builtInProjections,
  type CheckpointDoc,
  checkpointsProjection,
  type RollbackDoc,
  type RunDoc,
  rollbacksProjection,
  runsProjection,
  type ToolStats,
  type ToolStepsDoc,
  toolStats,
  toolStepsProjection,
} from './read-models.js';
export {
  checkRun,
  type Divergence,
  MAX_REPORTED,
  type ReplayCheckOptions,
  type ReplayReport,
  type RunCheck,
  type RunSelection,
} from './replay-check.js';
export {
  type DecideOptions,
  type Hooks,
  markerOf,
  nextAction,
  type ProtocolAction,
  pendingRequest,
  type Rest,
  type StepRef,
} from './rollback/decide.js';
export { type ExportedRun, exportRun, importRun, parseExportedRun, RUN_EXPORT_FORMAT, readExportedRun } from './run-export.js';
export type { IndexProgress, RunCounts, RunPage, RunPageOptions } from './run-index.js';
export { streamOf as runStreamId } from './run-log.js';
export {
  type ClaimedRun,
  MemoryRunQueue,
  openRunQueue,
  type QueueEntry,
  type RunQueue,
  type RunRequest,
} from './run-queue.js';
export {
  createRuntime,
  MAX_RUNS_PAGE,
  type RollbackRequest,
  type RunFilter,
  type RunInfo,
  type RunSummary,
  Runtime,
  type RuntimeOptions,
  type SignalOptions,
  type StartOptions,
} from './runtime.js';
export { mailboxOf } from './signals.js';
export { WorkflowVersionNotFoundError } from './versioning.js';
export { createWorker, type Worker, type WorkerEvent, type WorkerOptions } from './worker.js';
export {
  type Approval,
  type ApproveOptions,
  type CompensationIO,
  type DomainEvent,
  defineWorkflow,
  type RollbackInfo,
  type RunContext,
  type StepIO,
  type StepOptions,
  type WaitOptions,
  type Workflow,
  type WorkflowDefinition,
} from './workflow.js';
