import type { EventEnvelope, Json } from '../events/envelope.js';
import { effectiveHistory } from '../projections/effective-history.js';
import {
  type ApprovalRequest,
  asRunEvent,
  type CheckpointIndex,
  isRunEvent,
  isRunEventType,
  type NeedsAttentionData,
  RunEvents,
  type SignalReceivedData,
  type StepFailedData,
  type ValueKind,
} from './events.js';
import type { DomainEvent, RollbackInfo, Workflow } from './workflow.js';

// Pure functions over a run's events: what they mean for replay, state and
// status. No I/O, no clock. Everything the runtime decides starts from these
// (the rollback protocol's own reading is rollback/decide.ts).

export type RunStatus = 'running' | 'waiting' | 'completed' | 'failed' | 'rolling_back' | 'rolled_back' | 'needs_attention' | 'cancelled';

/**
 * The events that still count: for every RolledBack marker, the events after
 * its target up to the marker are dropped (markers included). The one
 * definition lives with the projections, so a read model never disagrees with
 * a replay.
 */
export function effectiveEvents(events: readonly EventEnvelope[]): EventEnvelope[] {
  return effectiveHistory(events);
}

export function isDomainEvent(event: EventEnvelope): boolean {
  return !isRunEventType(event.type) && typeof event.metadata.seq === 'number';
}

export type JournalEntry =
  | {
      kind: 'step';
      seq: number;
      name: string;
      key: string;
      attempt: number;
      /** Started with no recorded end: re-run with the same key. */
      open: boolean;
      completed?: { result?: Json };
      failed?: StepFailedData;
      /** Version of the StepFailed, when failed: the order in which failures happened, whatever order replay meets them in. */
      failedAt?: number;
      /** Version of its (latest) StepStarted. */
      startedAt: number;
      irreversible?: boolean;
    }
  | {
      kind: 'wait';
      seq: number;
      name: string;
      /** Version of the WaitStarted. */
      version: number;
      timeoutAt?: number;
      approval?: ApprovalRequest;
      /** The signal that answered it, and the version it was recorded at. */
      received?: SignalReceivedData;
      answeredAt?: number;
      /** Version of the WaitTimedOut, when it timed out. */
      timedOutAt?: number;
    }
  | { kind: 'emit'; seq: number; name: string; event: DomainEvent; version: number }
  | { kind: 'value'; seq: number; name: ValueKind; value: number | string }
  /** ctx.changed(name) answered true here: the run took the new path (see Pass.changed). */
  | { kind: 'change'; seq: number; name: string }
  | { kind: 'checkpoint'; seq: number; name: string; version: number; state: unknown; index: CheckpointIndex };

/** The effective journal in call order: entry i answers the i-th ctx call. */
export function journalOf(effective: readonly EventEnvelope[]): JournalEntry[] {
  const entries: JournalEntry[] = [];
  for (const event of effective) {
    const e = asRunEvent(event);
    if (!e) {
      if (isDomainEvent(event)) {
        const seq = event.metadata.seq as number;
        entries[seq] = { kind: 'emit', seq, name: event.type, event: { type: event.type, data: event.data }, version: event.version };
      }
      continue;
    }
    switch (e.type) {
      case RunEvents.StepStarted: {
        const d = e.data;
        entries[d.seq] = {
          kind: 'step',
          seq: d.seq,
          name: d.name,
          key: d.idempotencyKey,
          attempt: d.attempt,
          open: true,
          startedAt: e.version,
          ...(d.irreversible ? { irreversible: true } : {}),
        };
        break;
      }
      case RunEvents.StepCompleted: {
        const entry = entries[e.data.seq];
        if (entry?.kind === 'step') {
          entry.open = false;
          entry.completed = e.data.result === undefined ? {} : { result: e.data.result };
        }
        break;
      }
      case RunEvents.StepFailed: {
        const entry = entries[e.data.seq];
        if (entry?.kind === 'step') {
          entry.open = false;
          entry.failed = e.data;
          entry.failedAt = e.version;
        }
        break;
      }
      case RunEvents.WaitStarted: {
        const { seq, name, timeoutAt, approval } = e.data;
        entries[seq] = {
          kind: 'wait',
          seq,
          name,
          version: e.version,
          ...(timeoutAt === undefined ? {} : { timeoutAt }),
          ...(approval ? { approval } : {}),
        };
        break;
      }
      case RunEvents.SignalReceived: {
        const entry = entries[e.data.seq];
        if (entry?.kind === 'wait' && !e.data.invalid) {
          entry.received = e.data;
          entry.answeredAt = e.version;
        }
        break;
      }
      case RunEvents.WaitTimedOut: {
        const entry = entries[e.data.seq];
        if (entry?.kind === 'wait') entry.timedOutAt = e.version;
        break;
      }
      case RunEvents.ValueRecorded:
        entries[e.data.seq] = { kind: 'value', seq: e.data.seq, name: e.data.kind, value: e.data.value };
        break;
      case RunEvents.ChangeRecorded:
        entries[e.data.seq] = { kind: 'change', seq: e.data.seq, name: e.data.change };
        break;
      case RunEvents.Checkpoint:
        entries[e.data.seq] = {
          kind: 'checkpoint',
          seq: e.data.seq,
          name: e.data.label,
          version: e.version,
          state: e.data.state,
          index: e.data.index,
        };
        break;
    }
  }
  return entries;
}

/**
 * State at the end of the effective history. Starts from the newest effective
 * checkpoint's snapshot and applies only the domain events after it.
 */
export function foldState<S>(workflow: Pick<Workflow<unknown, S>, 'initialState' | 'apply'>, effective: readonly EventEnvelope[]): S {
  let start = 0;
  let state = workflow.initialState;
  for (let i = effective.length - 1; i >= 0; i--) {
    const event = effective[i] as EventEnvelope;
    if (isRunEvent(event, RunEvents.Checkpoint)) {
      state = event.data.state as S;
      start = i + 1;
      break;
    }
  }
  for (let i = start; i < effective.length; i++) {
    const event = effective[i] as EventEnvelope;
    if (isDomainEvent(event)) state = workflow.apply(state, { type: event.type, data: event.data } as DomainEvent);
  }
  return state;
}

/**
 * A run's status is decided by its last event alone, so listing runs reads one
 * event each. A step event written while settling an in-doubt step belongs to
 * a rollback in progress, not to forward progress.
 */
export function statusAfter(event: Pick<EventEnvelope, 'type' | 'data'>): RunStatus {
  switch (event.type) {
    case RunEvents.StepStarted:
    case RunEvents.StepCompleted:
    case RunEvents.StepFailed:
      return (event.data as { settling?: unknown } | null)?.settling === true ? 'rolling_back' : 'running';
    case RunEvents.WaitStarted:
      return 'waiting';
    case RunEvents.SignalReceived:
      // A signal whose payload failed the wait's schema leaves the run waiting.
      return Array.isArray((event.data as { invalid?: unknown } | null)?.invalid) ? 'waiting' : 'running';
    case RunEvents.RollbackRequested:
    case RunEvents.CompensationStarted:
    case RunEvents.CompensationCompleted:
    case RunEvents.CompensationFailed:
    case RunEvents.Verified:
    case RunEvents.CompensationRetried:
    case RunEvents.ResolvedByHand:
      return 'rolling_back';
    case RunEvents.NeedsAttention:
      return 'needs_attention';
    case RunEvents.RolledBack: {
      // Only a rollback that stops rests there: after 'retry' the run goes on, after 'fail' (an older build's log) its failure is yet to be written.
      const after = (event.data as { after?: unknown } | null)?.after;
      return after === 'retry' ? 'running' : after === 'fail' ? 'rolling_back' : 'rolled_back';
    }
    case RunEvents.RunCompleted:
      return 'completed';
    case RunEvents.RunFailed:
      return 'failed';
    case RunEvents.RunCancelled:
      return 'cancelled';
    default:
      return 'running';
  }
}

/** The signal a run waits for after this event, decided by it alone as the status is: a WaitStarted, or a signal its wait refused, names it. */
export function waitingForAfter(event: Pick<EventEnvelope, 'type' | 'data'>): string | undefined {
  if (statusAfter(event) !== 'waiting') return undefined;
  const name = (event.data as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? name : undefined;
}

export function rollbacksOf(events: readonly EventEnvelope[]): RollbackInfo[] {
  const out: RollbackInfo[] = [];
  for (const e of events) {
    if (!isRunEvent(e, RunEvents.RolledBack)) continue;
    const { targetVersion, label, unreached, reason, trigger } = e.data;
    out.push({ version: e.version, targetVersion, label, ...(unreached === undefined ? {} : { unreached }), reason, trigger });
  }
  return out;
}

/** Why the run needs attention, when its last event says it does. */
export function lastAttention(events: readonly EventEnvelope[]): NeedsAttentionData | undefined {
  const last = events[events.length - 1];
  return last && isRunEvent(last, RunEvents.NeedsAttention) ? last.data : undefined;
}

/** The signals (their SignalSent ids) the run has used up, on any path: each signal answers one wait, once. */
export function consumedSignals(events: readonly EventEnvelope[]): Set<string> {
  const used = new Set<string>();
  for (const e of events) if (isRunEvent(e, RunEvents.SignalReceived)) used.add(e.data.signalId);
  return used;
}

/** Effective checkpoints by label (newest wins); what a rollback target is resolved against. */
export function checkpointIndexOf(effective: readonly EventEnvelope[]): CheckpointIndex {
  const index: CheckpointIndex = {};
  for (const event of effective) if (isRunEvent(event, RunEvents.Checkpoint)) index[event.data.label] = event.version;
  return index;
}
