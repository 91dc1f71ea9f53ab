import type { EventEnvelope } from '../../events/envelope.js';
import type { SerializedError } from '../errors.js';

/**
 * A reaction's control stream (`$rewind-reaction-<name>`): the facts about the
 * reaction itself, in the log like everything else, so the audit trail says
 * when it stopped on an event, why, and who let it go on. Its position is kept
 * apart (the store's named consumers), written after each page it acted on.
 */
export const ReactionEvents = {
  /** Written once, by the first process that runs the reaction: where it starts. */
  ReactionStarted: 'ReactionStarted',
  /** `act` kept failing on an event (or answered something that cannot be done): the reaction waits there. */
  ReactionParked: 'ReactionParked',
  /** An operator asked for the parked event to be tried again (fresh attempts). */
  ReactionRetried: 'ReactionRetried',
  /** An operator let the reaction go past the parked event without acting on it. */
  ReactionSkipped: 'ReactionSkipped',
} as const;

export interface ReactionStartedData {
  name: string;
  /** The last position before the first event it reacts to (0: the whole log). */
  from: number;
}

export interface ParkedEvent {
  position: number;
  eventId: string;
  streamId: string;
  type: string;
}

export interface ReactionParkedData extends ParkedEvent {
  error: SerializedError;
  attempts: number;
}

export interface OperatorData {
  position: number;
  actor?: string;
  reason?: string;
}

/** What a control stream says, folded. */
export interface ControlState {
  /** The control stream's version (0: the reaction never ran). */
  version: number;
  from: number;
  parked: (ReactionParkedData & { at: string }) | null;
  /** Positions an operator skipped: never acted on, even when delivered again. */
  skipped: ReadonlySet<number>;
}

export const EMPTY_CONTROL: ControlState = { version: 0, from: 0, parked: null, skipped: new Set() };

interface ControlData {
  ReactionStarted: ReactionStartedData;
  ReactionParked: ReactionParkedData;
  ReactionRetried: OperatorData;
  ReactionSkipped: OperatorData;
}

/** Narrows a control stream's event to its type's data (the stream is written by this module only). */
export function isControlEvent<T extends keyof ControlData>(
  event: EventEnvelope,
  type: T,
): event is EventEnvelope & { type: T; data: ControlData[T] } {
  return event.type === type;
}

/** Pure: the reaction's state after its control events. */
export function controlState(events: readonly EventEnvelope[]): ControlState {
  let state: ControlState = EMPTY_CONTROL;
  for (const event of events) {
    if (isControlEvent(event, 'ReactionStarted')) state = { ...state, from: event.data.from };
    else if (isControlEvent(event, 'ReactionParked')) state = { ...state, parked: { ...event.data, at: event.recordedAt } };
    else if (isControlEvent(event, 'ReactionRetried')) state = { ...state, parked: null };
    else if (isControlEvent(event, 'ReactionSkipped'))
      state = { ...state, parked: null, skipped: new Set([...state.skipped, event.data.position]) };
    state = { ...state, version: event.version };
  }
  return state;
}
