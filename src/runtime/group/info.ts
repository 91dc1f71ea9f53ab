import type { EventEnvelope } from '../../events/envelope.js';
import type { EventStore } from '../../store/types.js';
import type { SerializedError } from '../errors.js';
import { asRunEvent, type NeedsAttentionData, RunEvents } from '../events.js';
import { type RunStatus, statusAfter } from '../journal.js';
import { streamOf } from '../run-log.js';
import { GroupNotFoundError } from './errors.js';
import {
  GroupEvents,
  type GroupNeedsAttentionData,
  type GroupRollbackRequestedData,
  type GroupStatus,
  groupStatusOf,
  isGroupEvent,
  type ParticipantStartedData,
  participantsOf,
  pendingGroupRollback,
} from './events.js';

// Reading a group: its status from its own stream, and each participant's
// from the participant's run.

export interface ParticipantInfo {
  name: string;
  runId: string;
  workflow: string;
  status: RunStatus | 'not_started';
  version: number;
  rollbacks: number;
  output?: unknown;
  error?: SerializedError;
  attention?: NeedsAttentionData;
}

export interface GroupInfo {
  groupId: string;
  group: string;
  status: GroupStatus;
  version: number;
  participants: ParticipantInfo[];
  /** The group rollback in progress or the last one. */
  rollback?: { label: string; reason: string; cause?: GroupRollbackRequestedData['cause']; done: boolean };
  /** Which participant holds the group, and why. */
  attention?: GroupNeedsAttentionData;
}

/** The group as its stream and its participants' runs tell: each participant's run read for its last event and rollbacks. */
export async function readGroupInfo(store: EventStore, groupId: string, events: readonly EventEnvelope[]): Promise<GroupInfo> {
  const first = events[0] as EventEnvelope;
  if (!isGroupEvent(first, GroupEvents.GroupStarted)) throw new GroupNotFoundError(groupId);
  const tail = events[events.length - 1] as EventEnvelope;
  const status = groupStatusOf(events);
  const started = new Map(participantsOf(events).map((p) => [p.name, p]));
  const participants: ParticipantInfo[] = [];
  for (const name of first.data.participants) participants.push(await participantInfo(store, groupId, name, started.get(name)));
  let lastRequest: GroupRollbackRequestedData | undefined;
  for (const e of events) if (isGroupEvent(e, GroupEvents.GroupRollbackRequested)) lastRequest = e.data;
  return {
    groupId,
    group: first.data.group,
    status,
    version: tail.version,
    participants,
    ...(lastRequest
      ? {
          rollback: {
            label: lastRequest.label,
            reason: lastRequest.reason,
            ...(lastRequest.cause ? { cause: lastRequest.cause } : {}),
            done: !pendingGroupRollback(events),
          },
        }
      : {}),
    ...(isGroupEvent(tail, GroupEvents.GroupNeedsAttention) ? { attention: tail.data } : {}),
  };
}

async function participantInfo(
  store: EventStore,
  groupId: string,
  name: string,
  p: ParticipantStartedData | undefined,
): Promise<ParticipantInfo> {
  const runId = p?.runId ?? `${groupId}.${name}`;
  const notStarted: ParticipantInfo = { name, runId, workflow: p?.workflow ?? '', status: 'not_started', version: 0, rollbacks: 0 };
  if (!p) return notStarted;
  const runEvents = await store.read(streamOf(runId));
  const last = runEvents[runEvents.length - 1];
  if (!last) return notStarted;
  const end = asRunEvent(last);
  return {
    name,
    runId,
    workflow: p.workflow,
    status: statusAfter(last),
    version: last.version,
    rollbacks: runEvents.filter((e) => e.type === RunEvents.RolledBack).length,
    ...(end?.type === RunEvents.RunCompleted ? { output: end.data.output } : {}),
    ...(end?.type === RunEvents.RunFailed ? { error: end.data.error } : {}),
    ...(end?.type === RunEvents.NeedsAttention ? { attention: end.data } : {}),
  };
}
