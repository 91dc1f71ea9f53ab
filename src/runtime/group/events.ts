import type { EventEnvelope, Json } from '../../events/envelope.js';
import type { SerializedError } from '../errors.js';
import type { NeedsAttentionData } from '../events.js';
import type { RunStatus } from '../journal.js';

// A group's own stream, `coordinator-<groupId>`: its events, their data, and
// what its status is after each. Participants are ordinary runs.

export const GroupEvents = {
  GroupStarted: 'GroupStarted',
  ParticipantStarted: 'ParticipantStarted',
  GroupCompleted: 'GroupCompleted',
  GroupFailed: 'GroupFailed',
  GroupRollbackRequested: 'GroupRollbackRequested',
  ParticipantCompensated: 'ParticipantCompensated',
  GroupNeedsAttention: 'GroupNeedsAttention',
  GroupCompensationRetried: 'GroupCompensationRetried',
  GroupRolledBack: 'GroupRolledBack',
  /** After a group rollback: the participants go on from the checkpoint (they see ctx.rollbacks and may take another path). */
  GroupResumed: 'GroupResumed',
  /** A participant's answer when a group rollback was proposed (prepare): yes, or no and why. */
  ParticipantVoted: 'ParticipantVoted',
  /** A proposed group rollback some participant refused: nothing was compensated. A record: the group's status stays what it was. */
  GroupRollbackRefused: 'GroupRollbackRefused',
} as const;

export type GroupStatus = 'running' | 'completed' | 'failed' | 'rolling_back' | 'needs_attention' | 'rolled_back';

export interface GroupStartedData {
  groupId: string;
  group: string;
  participants: string[];
}
export interface ParticipantStartedData {
  name: string;
  runId: string;
  workflow: string;
  input: Json;
}
export interface GroupRollbackRequestedData {
  label: string;
  reason: string;
  /** The participant whose failure started it, when one did. */
  cause?: { participant: string; status: RunStatus; error?: SerializedError };
  /** In start order; compensated in reverse. */
  participants: Array<{ name: string; runId: string; targetVersion: number; requestVersion: number }>;
}
export interface ParticipantCompensatedData {
  name: string;
  runId: string;
}
export interface GroupNeedsAttentionData extends NeedsAttentionData {
  participant: string;
  runId: string;
}
export interface GroupCompensationRetriedData {
  participant: string;
  runId: string;
  resolvedByHand?: string;
  note?: string;
}
export interface ParticipantVotedData {
  name: string;
  runId: string;
  vote: 'yes' | 'no';
  reason?: string;
}
export interface GroupRollbackRefusedData {
  label: string;
  reason: string;
  refusals: Array<{ name: string; reason: string }>;
}
export interface GroupFailedData {
  participant: string;
  status: RunStatus;
  error?: SerializedError;
  /** Why the group could not roll back together, when its policy asked it to. */
  rollbackRefused?: string;
}
export interface GroupRolledBackData {
  label: string;
  reason: string;
  markers: Array<{ name: string; runId: string; version: number }>;
}

export function groupStreamOf(groupId: string): string {
  return `coordinator-${groupId}`;
}

/** Events that only record something: a group's status is that of the last event before them. */
const RECORDS = new Set<string>(['ParticipantVoted', 'GroupRollbackRefused']);

/** A group's status: that of its last event that is not a record (a vote, a refused proposal). */
export function groupStatusOf(events: readonly EventEnvelope[]): GroupStatus {
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i] as EventEnvelope;
    if (!RECORDS.has(e.type)) return groupStatusAfter(e.type);
  }
  return 'running';
}

export function groupStatusAfter(type: string): GroupStatus {
  switch (type) {
    case GroupEvents.GroupCompleted:
      return 'completed';
    case GroupEvents.GroupFailed:
      return 'failed';
    case GroupEvents.GroupRollbackRequested:
    case GroupEvents.ParticipantCompensated:
    case GroupEvents.GroupCompensationRetried:
      return 'rolling_back';
    case GroupEvents.GroupNeedsAttention:
      return 'needs_attention';
    case GroupEvents.GroupRolledBack:
      return 'rolled_back';
    default:
      return 'running';
  }
}

export interface GroupEventDataMap {
  GroupStarted: GroupStartedData;
  ParticipantStarted: ParticipantStartedData;
  GroupCompleted: { outputs: Json };
  GroupFailed: GroupFailedData;
  GroupRollbackRequested: GroupRollbackRequestedData;
  ParticipantCompensated: ParticipantCompensatedData;
  GroupNeedsAttention: GroupNeedsAttentionData;
  GroupCompensationRetried: GroupCompensationRetriedData;
  GroupRolledBack: GroupRolledBackData;
  GroupResumed: Record<string, never>;
  ParticipantVoted: ParticipantVotedData;
  GroupRollbackRefused: GroupRollbackRefusedData;
}
export type GroupEventType = keyof GroupEventDataMap;
export type GroupEventOf<T extends GroupEventType> = EventEnvelope<T, GroupEventDataMap[T]>;
/** A group stream's events: a discriminated union on `type`. */
export type GroupEvent = { [T in GroupEventType]: GroupEventOf<T> }[GroupEventType];
export type NewGroupEvent = { [T in GroupEventType]: { type: T; data: GroupEventDataMap[T] } }[GroupEventType];

const GROUP_TYPES = new Set<string>(Object.values(GroupEvents));
/** The coordinator wrote the events of its streams itself: their type names their data's shape. */
export function asGroupEvent(event: EventEnvelope): GroupEvent | undefined {
  return GROUP_TYPES.has(event.type) ? (event as GroupEvent) : undefined;
}
export function isGroupEvent<T extends GroupEventType>(event: EventEnvelope, type: T): event is GroupEventOf<T> {
  return event.type === type;
}

/** The group rollback requested and not finished, if any. */
export function pendingGroupRollback(events: readonly EventEnvelope[]): GroupEventOf<'GroupRollbackRequested'> | undefined {
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i] as EventEnvelope;
    if (isGroupEvent(e, GroupEvents.GroupRolledBack)) return undefined;
    if (isGroupEvent(e, GroupEvents.GroupRollbackRequested)) return e;
  }
  return undefined;
}

export function participantsOf(events: readonly EventEnvelope[]): ParticipantStartedData[] {
  const out: ParticipantStartedData[] = [];
  for (const e of events) if (isGroupEvent(e, GroupEvents.ParticipantStarted)) out.push(e.data);
  return out;
}
