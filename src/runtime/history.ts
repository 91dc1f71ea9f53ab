import type { EventEnvelope, Json } from '../events/envelope.js';
import { effectiveHistory } from '../projections/effective-history.js';
import {
  type CheckpointData,
  type CheckpointIndex,
  isRunEventType,
  type NeedsAttentionData,
  type RollbackRequestedData,
  type RolledBackData,
  RunEvents,
  type StepCompletedData,
  type StepFailedData,
  type StepStartedData,
  type ValueKind,
  type ValueRecordedData,
} from './events.js';
import type { DomainEvent, RollbackInfo, Workflow } from './workflow.js';

// Pure functions over a run's events: no I/O, no clock. Everything the
// runtime decides starts from these.

export type RunStatus = 'running' | 'completed' | 'failed' | 'rolling_back' | 'rolled_back' | 'needs_attention' | 'cancelled';

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
    }
  | { kind: 'emit'; seq: number; name: string; event: DomainEvent }
  | { kind: 'value'; seq: number; name: ValueKind; value: number | string }
  | { kind: 'checkpoint'; seq: number; name: string; version: number; state: unknown; index: CheckpointIndex };

/** The effective journal in call order: entry i answers the i-th ctx call. */
export function journalOf(effective: readonly EventEnvelope[]): JournalEntry[] {
  const entries: JournalEntry[] = [];
  for (const event of effective) {
    switch (event.type) {
      case RunEvents.StepStarted: {
        const d = event.data as StepStartedData;
        entries[d.seq] = { kind: 'step', seq: d.seq, name: d.name, key: d.idempotencyKey, attempt: d.attempt, open: true };
        break;
      }
      case RunEvents.StepCompleted: {
        const d = event.data as StepCompletedData;
        const entry = entries[d.seq];
        if (entry?.kind === 'step') {
          entry.open = false;
          entry.completed = d.result === undefined ? {} : { result: d.result };
        }
        break;
      }
      case RunEvents.StepFailed: {
        const d = event.data as StepFailedData;
        const entry = entries[d.seq];
        if (entry?.kind === 'step') {
          entry.open = false;
          entry.failed = d;
        }
        break;
      }
      case RunEvents.ValueRecorded: {
        const d = event.data as ValueRecordedData;
        entries[d.seq] = { kind: 'value', seq: d.seq, name: d.kind, value: d.value };
        break;
      }
      case RunEvents.Checkpoint: {
        const d = event.data as CheckpointData;
        entries[d.seq] = { kind: 'checkpoint', seq: d.seq, name: d.label, version: event.version, state: d.state, index: d.index };
        break;
      }
      default:
        if (isDomainEvent(event)) {
          const seq = event.metadata.seq as number;
          entries[seq] = { kind: 'emit', seq, name: event.type, event: { type: event.type, data: event.data } };
        }
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
    if (event.type === RunEvents.Checkpoint) {
      state = (event.data as CheckpointData).state as S;
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

/** A run's status is decided by its last event alone, so listing runs reads one event each. */
export function statusAfter(type: string): RunStatus {
  switch (type) {
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
    case RunEvents.RolledBack:
      return 'rolled_back';
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

export function rollbacksOf(events: readonly EventEnvelope[]): RollbackInfo[] {
  return events
    .filter((e) => e.type === RunEvents.RolledBack)
    .map((e) => {
      const d = e.data as RolledBackData;
      return { version: e.version, targetVersion: d.targetVersion, label: d.label, reason: d.reason, trigger: d.trigger };
    });
}

/** The RollbackRequested the protocol has not finished, if any. */
export function pendingRollback(events: readonly EventEnvelope[]): EventEnvelope<string, RollbackRequestedData> | undefined {
  for (let i = events.length - 1; i >= 0; i--) {
    const event = events[i] as EventEnvelope;
    if (event.type === RunEvents.RolledBack) return undefined;
    if (event.type === RunEvents.RollbackRequested) return event as EventEnvelope<string, RollbackRequestedData>;
  }
  return undefined;
}

export function lastAttention(events: readonly EventEnvelope[]): NeedsAttentionData | undefined {
  const last = events[events.length - 1];
  return last?.type === RunEvents.NeedsAttention ? (last.data as NeedsAttentionData) : undefined;
}

/** Effective checkpoints by label (newest wins); what a rollback target is resolved against. */
export function checkpointIndexOf(effective: readonly EventEnvelope[]): CheckpointIndex {
  const index: CheckpointIndex = {};
  for (const event of effective) if (event.type === RunEvents.Checkpoint) index[(event.data as CheckpointData).label] = event.version;
  return index;
}

export interface CompensationProgress {
  compensated: boolean;
  verified: boolean;
  /** Attempts made since the last operator retry. */
  attempts: number;
  /** An attempt that started and never ended (a crash): run it again with the same key. */
  openAttempt: number | undefined;
  blocked: boolean;
}

/** Per compensated step (by its key): how far the protocol got, from the events after the request. */
export function compensationProgress(protocolEvents: readonly EventEnvelope[]): Map<string, CompensationProgress> {
  const progress = new Map<string, CompensationProgress>();
  const of = (key: string): CompensationProgress => {
    let p = progress.get(key);
    if (!p) {
      p = { compensated: false, verified: false, attempts: 0, openAttempt: undefined, blocked: false };
      progress.set(key, p);
    }
    return p;
  };
  for (const event of protocolEvents) {
    const d = event.data as { stepKey: string; attempt: number; ok: boolean };
    switch (event.type) {
      case RunEvents.CompensationStarted:
        Object.assign(of(d.stepKey), { attempts: d.attempt, openAttempt: d.attempt });
        break;
      case RunEvents.CompensationCompleted:
        Object.assign(of(d.stepKey), { compensated: true, openAttempt: undefined });
        break;
      case RunEvents.CompensationFailed:
        of(d.stepKey).openAttempt = undefined;
        break;
      case RunEvents.Verified:
        of(d.stepKey).verified = d.ok;
        break;
      case RunEvents.NeedsAttention:
        of(d.stepKey).blocked = true;
        break;
      case RunEvents.CompensationRetried:
        progress.set(d.stepKey, { compensated: false, verified: false, attempts: 0, openAttempt: undefined, blocked: false });
        break;
      case RunEvents.ResolvedByHand:
        Object.assign(of(d.stepKey), { compensated: true, verified: true, blocked: false, openAttempt: undefined });
        break;
    }
  }
  return progress;
}
