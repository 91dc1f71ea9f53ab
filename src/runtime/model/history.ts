import type { EventEnvelope } from '../../events/envelope.js';
import { ValidationError } from '../../events/errors.js';
import { type ForkedFromData, isRunEvent, type RollbackRequestedData, type RolledBackData, RunEvents } from '../events.js';
import { pendingRequest } from '../rollback/decide.js';

// The history view: every event of a run with its mark (still effective,
// rolled back and by which marker, or a marker itself), its checkpoints and
// its rollbacks. Nothing is hidden: undone events are only marked.

/**
 * 'effective': still counts. 'rolled_back': left the effective history when
 * the RolledBack marker at `undoneBy` was written. 'marker': a RolledBack
 * marker itself, which is never undone (the rollback did happen).
 */
export type EventMark = 'effective' | 'rolled_back' | 'marker';

export interface HistoryEvent {
  version: number;
  position: number;
  id: string;
  type: string;
  recordedAt: string;
  data: unknown;
  status: EventMark;
  undoneBy?: number;
}

export interface CheckpointRecord {
  label: string;
  version: number;
  recordedAt: string;
  effective: boolean;
  undoneBy?: number;
}

export interface RollbackRecord {
  /** Version of the RolledBack marker. */
  version: number;
  requestVersion: number;
  targetVersion: number;
  label: string;
  reason: string;
  trigger: RollbackRequestedData['trigger'];
  after: RolledBackData['after'];
  recordedAt: string;
  /** How many events it took out of the effective history (versions targetVersion+1 .. version-1 still effective then). */
  undid: number;
  /** Set when a coordinator rolled this run back together with others. */
  coordinator?: string;
}

export type ForkOrigin = ForkedFromData;

export interface RunHistory {
  runId: string;
  workflow: string;
  version: number;
  forkedFrom?: ForkOrigin;
  events: HistoryEvent[];
  checkpoints: CheckpointRecord[];
  rollbacks: RollbackRecord[];
  /** A rollback requested and not finished yet (compensating, or blocked on one step). */
  pendingRollback?: { requestVersion: number; targetVersion: number; label: string; reason: string; coordinator?: string };
}

export interface Marks {
  /** Version of an undone event -> version of the marker that undid it. */
  undoneBy: Map<number, number>;
  /** Version of a marker -> how many events it took out of the effective history. */
  undid: Map<number, number>;
}

/**
 * The same stack walk as effectiveEvents(), except that what a marker pops is
 * labelled with the marker instead of forgotten.
 */
export function marksOf(events: readonly EventEnvelope[]): Marks {
  const undoneBy = new Map<number, number>();
  const undid = new Map<number, number>();
  const kept: EventEnvelope[] = [];
  for (const event of events) {
    if (!isRunEvent(event, RunEvents.RolledBack)) {
      kept.push(event);
      continue;
    }
    let n = 0;
    while (kept.length > 0 && (kept[kept.length - 1] as EventEnvelope).version > event.data.targetVersion) {
      undoneBy.set((kept.pop() as EventEnvelope).version, event.version);
      n++;
    }
    undid.set(event.version, n);
  }
  return { undoneBy, undid };
}

/** One event's mark, from the marks of its run. */
export function markOf(event: Pick<EventEnvelope, 'type' | 'version'>, marks: Marks): { status: EventMark; undoneBy?: number } {
  if (event.type === RunEvents.RolledBack) return { status: 'marker' };
  const by = marks.undoneBy.get(event.version);
  return by === undefined ? { status: 'effective' } : { status: 'rolled_back', undoneBy: by };
}

/** Every event with its mark, the checkpoints, and the rollbacks and why. */
export function historyOf(events: readonly EventEnvelope[]): RunHistory {
  const first = events[0];
  if (!first || !isRunEvent(first, RunEvents.RunStarted)) throw new ValidationError('a run history starts with RunStarted');
  const started = first.data;
  const marks = marksOf(events);
  const requests = new Map<number, RollbackRequestedData>();
  const checkpoints: CheckpointRecord[] = [];
  const rollbacks: RollbackRecord[] = [];
  for (const e of events) {
    if (isRunEvent(e, RunEvents.RollbackRequested)) requests.set(e.version, e.data);
    else if (isRunEvent(e, RunEvents.Checkpoint)) {
      const by = marks.undoneBy.get(e.version);
      checkpoints.push({
        label: e.data.label,
        version: e.version,
        recordedAt: e.recordedAt,
        effective: by === undefined,
        ...(by === undefined ? {} : { undoneBy: by }),
      });
    } else if (isRunEvent(e, RunEvents.RolledBack)) {
      const d = e.data;
      const coordinator = requests.get(d.requestVersion)?.coordinator;
      rollbacks.push({
        version: e.version,
        requestVersion: d.requestVersion,
        targetVersion: d.targetVersion,
        label: d.label,
        reason: d.reason,
        trigger: d.trigger,
        after: d.after,
        recordedAt: e.recordedAt,
        undid: marks.undid.get(e.version) ?? 0,
        ...(coordinator ? { coordinator } : {}),
      });
    }
  }
  const pending = pendingRequest(events);
  return {
    runId: started.runId,
    workflow: started.workflow,
    version: events.length,
    ...(started.forkedFrom ? { forkedFrom: started.forkedFrom } : {}),
    events: events.map((e) => ({
      version: e.version,
      position: e.position,
      id: e.id,
      type: e.type,
      recordedAt: e.recordedAt,
      data: e.data,
      ...markOf(e, marks),
    })),
    checkpoints,
    rollbacks,
    ...(pending
      ? {
          pendingRollback: {
            requestVersion: pending.version,
            targetVersion: pending.data.targetVersion,
            label: pending.data.label,
            reason: pending.data.reason,
            ...(pending.data.coordinator ? { coordinator: pending.data.coordinator } : {}),
          },
        }
      : {}),
  };
}
