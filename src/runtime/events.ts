import type { EventEnvelope, Json } from '../events/envelope.js';
import type { SerializedError } from './errors.js';
import type { RetryOptions } from './policy.js';
import type { RollbackInfo } from './workflow.js';

/**
 * The runtime's own events. A run is one stream, `run-<id>`; everything the
 * runtime knows about a run is derived from these plus the workflow's domain
 * events (any other type, written by ctx.emit). The set is small on purpose:
 * each type is one fact that replay or the rollback protocol needs.
 *
 * `seq` is the ordinal of a ctx call in the run's effective execution; it is
 * how replay matches a call to its journal entry. After a rollback the same
 * seq is reused by the new path, which is fine: the old entry is no longer in
 * the effective history (see journal.ts).
 */
export const RunEvents = {
  /** First event of every run. */
  RunStarted: 'RunStarted',
  /** An attempt of a step begins. A StepStarted with no end is re-run with the same idempotencyKey. */
  StepStarted: 'StepStarted',
  StepCompleted: 'StepCompleted',
  /** One attempt failed; `final` when no retry follows, `retryAt` (drawn with journaled jitter) otherwise. */
  StepFailed: 'StepFailed',
  /** A journaled non-deterministic value: ctx.now / random / uuid / sleep (the wake-up time). */
  ValueRecorded: 'ValueRecorded',
  /** ctx.changed(id) asked where the journal ended: this run takes the code's new path for that change (versioning.ts). */
  ChangeRecorded: 'ChangeRecorded',
  /** A known-good point. Carries the reducer state and the checkpoint index, so restoring it reads this one event. */
  Checkpoint: 'Checkpoint',
  /** Stage 1-2 of the protocol: the target is chosen and forward progress halts. */
  RollbackRequested: 'RollbackRequested',
  CompensationStarted: 'CompensationStarted',
  CompensationCompleted: 'CompensationCompleted',
  CompensationFailed: 'CompensationFailed',
  /** The result of a step's verify hook after its compensation. */
  Verified: 'Verified',
  /** The protocol is blocked on one step; an operator must retry or resolve it. */
  NeedsAttention: 'NeedsAttention',
  /** An operator asked to retry a blocked compensation (fresh retry budget, same idempotency key). */
  CompensationRetried: 'CompensationRetried',
  /** An operator undid the step's effect outside Rewind. Counts as compensated and verified. */
  ResolvedByHand: 'ResolvedByHand',
  /** Stage 5: events after targetVersion, up to this marker, leave the effective history. */
  RolledBack: 'RolledBack',
  RunCompleted: 'RunCompleted',
  RunFailed: 'RunFailed',
  RunCancelled: 'RunCancelled',
  /** A fork's copy of the original ends here; what follows is the fork's own (fork.ts). */
  ForkedFrom: 'ForkedFrom',
  /** ctx.waitFor / ctx.approve: the run parks here until a signal of this name (or the timeout). */
  WaitStarted: 'WaitStarted',
  /** A signal from the run's mailbox answered a wait (`invalid`: its payload failed the wait's schema; the wait goes on). */
  SignalReceived: 'SignalReceived',
  /** The wait's time ran out with no signal: a trigger like any other. */
  WaitTimedOut: 'WaitTimedOut',
} as const;

/** The event a signal is sent as, on the run's mailbox stream (`signals-<runId>`), whether or not the run waits yet. */
export const SIGNAL_SENT = 'SignalSent';

export type RunEventType = (typeof RunEvents)[keyof typeof RunEvents];

const RESERVED = new Set<string>(Object.values(RunEvents));
export function isRunEventType(type: string): type is RunEventType {
  return RESERVED.has(type);
}

/** What triggered a rollback. */
export type TriggerKind =
  | 'step-failed'
  | 'output-invalid'
  | 'invariant'
  | 'guardrail'
  | 'timeout'
  | 'breaker-open'
  | 'rejected'
  | 'run-failed'
  | 'requested';

/** `label` '(start)' with targetVersion 1 means "before the first step". */
export const START_LABEL = '(start)';

/** label -> version of the newest effective checkpoint with that label. */
export type CheckpointIndex = Record<string, number>;

export type RollbackAfter = 'retry' | 'fail' | 'stop';

export interface RunStartedData {
  runId: string;
  workflow: string;
  workflowVersion: string;
  input: Json | null;
  /** Set on a fork: the run and version its copied history came from. */
  forkedFrom?: ForkedFromData;
}
export interface ForkedFromData {
  runId: string;
  version: number;
}
/** The undo hooks a step was given inline. */
export type UndoHook = 'compensate' | 'verify';

export interface StepStartedData {
  seq: number;
  name: string;
  idempotencyKey: string;
  attempt: number;
  /**
   * The undo hooks the step was given inline (absent on older events: unknown),
   * so a rollback that finds this step open knows, without replaying `run`,
   * whether its effect must be settled and undone.
   */
  undo?: UndoHook[];
  /** Written by the rollback protocol settling an in-doubt step (see rollback/decide.ts), not by the forward pass. */
  settling?: true;
  /** Its effect cannot be undone: a rollback past it is refused unless the request accepts that (`past: 'irreversible'`). */
  irreversible?: true;
}
export interface StepCompletedData {
  seq: number;
  name: string;
  idempotencyKey: string;
  /** Absent when the step returned undefined. */
  result?: Json;
  /** The undo hooks the step was given inline (absent on older events: unknown), so a fresh process knows whether a declared one is needed. */
  undo?: UndoHook[];
  compensationRetry?: RetryOptions;
  /** Recorded by the rollback protocol settling an in-doubt step: the run is rolling back, not going forward. */
  settling?: true;
  /** See ResumedAttempt: set when the attempt that ended here was left open by a crash and run again. */
  resumedAt?: string;
}
export interface StepFailedData {
  seq: number;
  name: string;
  idempotencyKey: string;
  attempt: number;
  error: SerializedError;
  trigger: TriggerKind;
  final: boolean;
  /** Epoch ms of the next attempt, when not final. */
  retryAt?: number;
  /** Recorded by the rollback protocol settling an in-doubt step: the run is rolling back, not going forward. */
  settling?: true;
  /** See ResumedAttempt: set when the attempt that ended here was left open by a crash and run again. */
  resumedAt?: string;
}
/**
 * An attempt left open by a crash (its StepStarted written, its end not) is run again, under the same key,
 * without a new StepStarted. Its end then says when that run began (`resumedAt`, ISO-8601 UTC on recordedAt's
 * clock), so the step's duration is the attempt that finished it, not the downtime before it.
 */
export type ResumedAttempt = Pick<StepCompletedData, 'resumedAt'>;
export type ValueKind = 'now' | 'random' | 'uuid' | 'sleep';
export interface ValueRecordedData {
  seq: number;
  kind: ValueKind;
  value: number | string;
}
export interface ChangeRecordedData {
  seq: number;
  /** The change's id, as the code passed it to ctx.changed(). */
  change: string;
}
export interface CheckpointData {
  seq: number;
  label: string;
  state: Json | null;
  index: CheckpointIndex;
  /** Every RolledBack marker before it, as rollbacksOf lists them (absent on older events), so get() can start here. */
  rollbacks?: RollbackInfo[];
  /** The newest irreversible step before it (absent when none), so get() can start here. */
  pointOfNoReturn?: PointOfNoReturn;
}
/** The newest irreversible step of a run's effective history: no rollback goes back past it unless told to. */
export interface PointOfNoReturn {
  step: string;
  stepKey: string;
  /** The version of its StepStarted. */
  version: number;
}
export interface RollbackRequestedData {
  targetVersion: number;
  label: string;
  /**
   * The checkpoint label a failure policy asked for (`rollbackTo`) when the run had not reached it: the
   * rollback went to `label` instead (the latest checkpoint, or the start). Absent when it went where asked.
   */
  unreached?: string;
  reason: string;
  trigger: { kind: TriggerKind; step?: string; error?: SerializedError };
  after: RollbackAfter;
  /** The request accepts going back past irreversible steps: they are left as they are, named in the marker. */
  past?: 'irreversible';
  /**
   * Set when a coordinator rolls this run back together with others: the
   * coordinator, not the run's driver, writes the RolledBack marker, in one
   * commit with every other participant's (coordinator.ts).
   */
  coordinator?: string;
}
export interface CompensationStartedData {
  step: string;
  /** The compensated step's key; identifies it across the protocol. */
  stepKey: string;
  /** The compensation's own idempotency key, stable across attempts and resumes. */
  idempotencyKey: string;
  attempt: number;
}
export interface CompensationCompletedData {
  step: string;
  stepKey: string;
}
export interface CompensationFailedData {
  step: string;
  stepKey: string;
  attempt: number;
  error: SerializedError;
  final: boolean;
  /** Epoch ms of the next attempt, when not final (absent on older events: at once). */
  retryAt?: number;
}
export interface VerifiedData {
  step: string;
  stepKey: string;
  ok: boolean;
  error?: SerializedError;
}
export interface NeedsAttentionData {
  step: string;
  stepKey: string;
  /** 'settle': a step left open by a crash could not be run again to learn its outcome (its code was not reached by replay). */
  stage: 'compensation' | 'verify' | 'settle';
  error: SerializedError;
}
export interface CompensationRetriedData {
  stepKey: string;
  note?: string;
}
export interface ResolvedByHandData {
  stepKey: string;
  note: string;
}
export interface RolledBackData {
  requestVersion: number;
  targetVersion: number;
  label: string;
  /** The label asked for and never reached, when the rollback went to `label` instead (see RollbackRequestedData). */
  unreached?: string;
  reason: string;
  trigger: RollbackRequestedData['trigger'];
  after: RollbackAfter;
  /** The checkpoint index as of the target, so the next rollback finds its target without a scan. */
  index: CheckpointIndex;
  /**
   * Steps that had started and never ended, and have no undo hook: whether
   * their effect happened is not known and nothing undoes it. Listed so the
   * log says what the rollback left as it was (absent when none).
   */
  inDoubt?: Array<{ step: string; stepKey: string }>;
  /** Irreversible steps the rollback went back past (the request accepted it): their effects stand. */
  irreversible?: Array<{ step: string; stepKey: string }>;
}
export interface RunCompletedData {
  output?: Json;
}
export interface RunFailedData {
  error: SerializedError;
}
export interface RunCancelledData {
  reason: string;
}
/** What an approval asks: the label reviewers know it by, and what the code showed them. */
export interface ApprovalRequest {
  label: string;
  details?: Json;
}
export interface WaitStartedData {
  seq: number;
  name: string;
  /** Epoch ms after which the wait times out (absent: it waits for good). */
  timeoutAt?: number;
  /** Set for ctx.approve: the signal's payload is a decision `{ approved, reason? }`. */
  approval?: ApprovalRequest;
}
export interface SignalSentData {
  name: string;
  payload: Json;
}
export interface SignalReceivedData {
  seq: number;
  name: string;
  /** The SignalSent event's id on the mailbox stream: each signal answers one wait, once. */
  signalId: string;
  payload: Json;
  /** Who sent it (the SignalSent's metadata.actor). */
  actor?: string;
  sentAt: string;
  /** The payload failed the wait's schema: the signal is used up and the run goes on waiting. */
  invalid?: string[];
}
export interface WaitTimedOutData {
  seq: number;
  name: string;
}

/** The data of each runtime event type: the one place an event's type says what its data holds. */
export interface RunEventDataMap {
  RunStarted: RunStartedData;
  StepStarted: StepStartedData;
  StepCompleted: StepCompletedData;
  StepFailed: StepFailedData;
  ValueRecorded: ValueRecordedData;
  ChangeRecorded: ChangeRecordedData;
  Checkpoint: CheckpointData;
  RollbackRequested: RollbackRequestedData;
  CompensationStarted: CompensationStartedData;
  CompensationCompleted: CompensationCompletedData;
  CompensationFailed: CompensationFailedData;
  Verified: VerifiedData;
  NeedsAttention: NeedsAttentionData;
  CompensationRetried: CompensationRetriedData;
  ResolvedByHand: ResolvedByHandData;
  RolledBack: RolledBackData;
  RunCompleted: RunCompletedData;
  RunFailed: RunFailedData;
  RunCancelled: RunCancelledData;
  ForkedFrom: ForkedFromData;
  WaitStarted: WaitStartedData;
  SignalReceived: SignalReceivedData;
  WaitTimedOut: WaitTimedOutData;
}

/** One runtime event type's envelope, its data typed. */
export type RunEventOf<T extends RunEventType> = EventEnvelope<T, RunEventDataMap[T]>;

/** Every runtime event: a discriminated union on `type`, so a switch narrows `data`. */
export type RunEvent = { [T in RunEventType]: RunEventOf<T> }[RunEventType];

/** A new runtime event to append, its data typed by its type. */
export type NewRunEvent = { [T in RunEventType]: { type: T; data: RunEventDataMap[T] } }[RunEventType];

/**
 * The runtime's view of a stored event: typed when its type is one of the
 * runtime's, undefined for a domain event. The runtime wrote these events
 * itself, so the type names the data's shape; this is the one place that
 * trust is spelled out.
 */
export function asRunEvent(event: EventEnvelope): RunEvent | undefined {
  return isRunEventType(event.type) ? (event as RunEvent) : undefined;
}

/** Narrows one event to one runtime type. */
export function isRunEvent<T extends RunEventType>(event: EventEnvelope, type: T): event is RunEventOf<T> {
  return event.type === type;
}
