import type { EventEnvelope } from '../../events/envelope.js';
import { ConcurrencyError } from '../../events/errors.js';
import type { EventStore, StreamAppend } from '../../store/types.js';
import { type DriverContext, driveRun } from '../driver.js';
import { isRunEvent, type RollbackRequestedData, RunEvents } from '../events.js';
import { checkpointIndexOf, effectiveEvents, foldState, lastAttention, statusAfter } from '../journal.js';
import { streamOf } from '../run-log.js';
import type { ParticipantDefinition } from './definition.js';
import { GroupRollbackRefusedError, GroupStateError, LabelMissingError } from './errors.js';
import {
  GroupEvents,
  type GroupNeedsAttentionData,
  type GroupRollbackRequestedData,
  type GroupRolledBackData,
  groupStatusOf,
  groupStreamOf,
  isGroupEvent,
  type NewGroupEvent,
  type ParticipantStartedData,
  type ParticipantVotedData,
  participantsOf,
  pendingGroupRollback,
} from './events.js';

// A coordinated rollback, each stage journaled on the group's stream:
// 1. Every participant must have an effective checkpoint with the label, or
//    nothing at all is written (LabelMissingError names the ones without).
//    Then ONE appendMany writes GroupRollbackRequested here and a
//    RollbackRequested owned by the coordinator on every participant: all of
//    them stop going forward in the same commit.
// 2. Each participant's part runs through the run protocol itself (its
//    decider and executor, driver.ts), newest agent first: in-doubt steps
//    settled, compensations newest first, verify hooks. A request owned by a
//    coordinator rests where the marker would be written. ParticipantCompensated
//    records each part done; a participant that needs an operator holds the
//    group in needs attention (GroupNeedsAttention, repaired from the
//    participant's stream should a crash come between the two).
// 3. ONE appendMany writes every participant's RolledBack marker and
//    GroupRolledBack, each at the version it was read at. A reader of the log
//    sees every agent rolled back or none.
// A crash anywhere resumes from what the streams hold.

export interface GroupRollbackRequest {
  label: string;
  reason: string;
}

type Cause = GroupRollbackRequestedData['cause'];

/** Stage 1: the request on the group and on every participant, in one commit; refused whole when a participant lacks the label. */
export async function requestGroupRollback(
  store: EventStore,
  groupId: string,
  request: GroupRollbackRequest,
  cause: Cause,
  hold: (runId: string) => Promise<void>,
  participants: ReadonlyArray<Pick<ParticipantDefinition, 'name' | 'workflow' | 'canRollback'>>,
): Promise<void> {
  for (let tries = 0; ; tries++) {
    const events = await store.read(groupStreamOf(groupId));
    const tail = events[events.length - 1];
    if (!tail) throw new GroupStateError(groupId, 'does not exist', 'start it with coordinator.start()');
    const status = groupStatusOf(events);
    if (status === 'rolling_back' || status === 'needs_attention') {
      throw new GroupStateError(groupId, `is ${status}`, 'resume or retry the group rollback in progress first');
    }
    const started = participantsOf(events);
    if (started.length === 0) throw new GroupStateError(groupId, 'has no participant started yet', 'nothing to roll back');
    // Stop this process's drivers at their next ctx call, so no step of theirs starts under the request.
    for (const p of started) await hold(p.runId);
    const targets: GroupRollbackRequestedData['participants'] = [];
    const appends: StreamAppend[] = [];
    const missing: string[] = [];
    const votes: ParticipantVotedData[] = [];
    for (const p of started) {
      const runEvents = await store.read(streamOf(p.runId));
      const last = runEvents[runEvents.length - 1];
      if (!last) throw new GroupStateError(groupId, `participant "${p.name}" has no run`, 'resume the group to start it');
      const runStatus = statusAfter(last);
      if (!['running', 'rolled_back', 'completed', 'failed'].includes(runStatus)) {
        throw new GroupStateError(
          groupId,
          `participant "${p.name}" is ${runStatus}`,
          'let its own rollback finish (runtime.retryCompensation / resolveByHand) first',
        );
      }
      const target = checkpointIndexOf(effectiveEvents(runEvents))[request.label];
      if (target === undefined) {
        missing.push(p.name);
        continue;
      }
      targets.push({ name: p.name, runId: p.runId, targetVersion: target, requestVersion: last.version + 1 });
      const vote = await voteOf(
        participants.find((d) => d.name === p.name),
        { label: request.label, version: target },
        effectiveEvents(runEvents),
      );
      if (vote) votes.push({ name: p.name, runId: p.runId, ...vote });
      const data: RollbackRequestedData = {
        targetVersion: target,
        label: request.label,
        reason: request.reason,
        trigger: { kind: 'requested' },
        after: 'stop',
        coordinator: groupId,
      };
      appends.push({ streamId: streamOf(p.runId), events: [{ type: RunEvents.RollbackRequested, data }], expectedVersion: last.version });
    }
    // Refused before anything is written: no participant is halted or compensated for a group that cannot go back together.
    if (missing.length > 0) throw new LabelMissingError(groupId, request.label, missing);
    const voted: NewGroupEvent[] = votes.map((data) => ({ type: GroupEvents.ParticipantVoted, data }));
    const refusals = votes.filter((v) => v.vote === 'no').map((v) => ({ name: v.name, reason: v.reason ?? 'refused' }));
    if (refusals.length > 0) {
      // The votes and the refusal are one record; nothing is requested of any participant.
      const refused: NewGroupEvent = {
        type: GroupEvents.GroupRollbackRefused,
        data: { label: request.label, reason: request.reason, refusals },
      };
      try {
        await store.append(groupStreamOf(groupId), [...voted, refused], { expectedVersion: tail.version });
      } catch (error) {
        if (error instanceof ConcurrencyError && tries < 20) continue;
        throw error;
      }
      throw new GroupRollbackRefusedError(groupId, request.label, refusals);
    }
    const requested: NewGroupEvent = {
      type: GroupEvents.GroupRollbackRequested,
      data: { label: request.label, reason: request.reason, ...(cause ? { cause } : {}), participants: targets },
    };
    appends.unshift({ streamId: groupStreamOf(groupId), events: [...voted, requested], expectedVersion: tail.version });
    try {
      await store.appendMany(appends);
      return;
    } catch (error) {
      // A participant or the group moved after we read it: read again and re-decide.
      if (!(error instanceof ConcurrencyError) || tries >= 20) throw error;
    }
  }
}

/** Stages 2-3. Everything left to do is derived from the streams, so this is also how a crashed group rollback resumes. */
export async function carryOutGroupRollback(c: DriverContext, groupId: string): Promise<void> {
  const never = new AbortController().signal;
  const drive = (p: { runId: string }) => driveRun(c, p.runId, { mode: 'drive', signal: never, shouldPause: () => false });
  // Another process finished the part it read, or wrote to a participant meanwhile: read again.
  retry: for (let tries = 0; tries <= 20; tries++) {
    const events = await c.store.read(groupStreamOf(groupId));
    const request = pendingGroupRollback(events);
    const tail = events[events.length - 1];
    if (!request || !tail || isGroupEvent(tail, GroupEvents.GroupNeedsAttention)) return;
    const done = new Set<string>();
    for (const e of events.slice(request.version)) if (isGroupEvent(e, GroupEvents.ParticipantCompensated)) done.add(e.data.name);
    try {
      // Stage 2: the agent started last is undone first, as a saga undoes its steps.
      for (const p of [...request.data.participants].reverse()) {
        if (done.has(p.name)) continue;
        await checkOwnRequest(c.store, groupId, p);
        const result = await drive(p);
        if (result.stop === 'lost') continue retry;
        if (result.stop === 'attention') {
          const attention = lastAttention(result.log.events);
          if (!attention) throw new GroupStateError(groupId, `participant "${p.name}" rests without saying why`, 'read its stream');
          const data: GroupNeedsAttentionData = { participant: p.name, runId: p.runId, ...attention };
          await append(c.store, groupId, { type: GroupEvents.GroupNeedsAttention, data });
          return;
        }
        if (result.stop !== 'coordinator') {
          throw new GroupStateError(
            groupId,
            `participant "${p.name}" stopped (${result.stop}) in the middle of a group rollback`,
            'resume the group',
          );
        }
        await append(c.store, groupId, { type: GroupEvents.ParticipantCompensated, data: { name: p.name, runId: p.runId } });
      }

      // Stage 3: every marker, and the group's, in one commit at the versions read here.
      const group = await c.store.read(groupStreamOf(groupId));
      if (!pendingGroupRollback(group)) return;
      const appends: StreamAppend[] = [];
      const markers: GroupRolledBackData['markers'] = [];
      for (const p of request.data.participants) {
        const result = await drive(p);
        if (result.stop !== 'coordinator' || !result.marker)
          throw new GroupStateError(groupId, `participant "${p.name}" is not ready for its marker`, 'resume the group');
        appends.push({
          streamId: streamOf(p.runId),
          events: [{ type: RunEvents.RolledBack, data: result.marker }],
          expectedVersion: result.log.version,
        });
        markers.push({ name: p.name, runId: p.runId, version: result.log.version + 1 });
      }
      const finished: NewGroupEvent = {
        type: GroupEvents.GroupRolledBack,
        data: { label: request.data.label, reason: request.data.reason, markers },
      };
      appends.unshift({ streamId: groupStreamOf(groupId), events: [finished], expectedVersion: group.length });
      await c.store.appendMany(appends);
      return;
    } catch (error) {
      if (!(error instanceof ConcurrencyError) || tries >= 20) throw error;
    }
  }
  throw new GroupStateError(groupId, 'other writers kept changing its participants', 'resume the group again');
}

/**
 * A participant's vote on going back to `target`: no when an irreversible
 * step lies after it; otherwise what its `canRollback` says, given its state
 * now. Undefined when it has no say (no irreversible step, no canRollback).
 */
async function voteOf(
  participant: Pick<ParticipantDefinition, 'workflow' | 'canRollback'> | undefined,
  target: { label: string; version: number },
  effective: EventEnvelope[],
): Promise<{ vote: 'yes' | 'no'; reason?: string } | undefined> {
  for (const e of effective) {
    if (e.version > target.version && isRunEvent(e, RunEvents.StepStarted) && e.data.irreversible)
      return { vote: 'no', reason: `step "${e.data.name}" after "${target.label}" cannot be undone` };
  }
  if (!participant?.canRollback) return undefined;
  const answer = await participant.canRollback(target, foldState(participant.workflow, effective));
  if (answer === true) return { vote: 'yes' };
  return { vote: 'no', reason: typeof answer === 'string' && answer.length > 0 ? answer : 'it voted no' };
}

/** The participant's stream must hold this group's request where the group says it does. */
async function checkOwnRequest(
  store: EventStore,
  groupId: string,
  p: { name: string; runId: string; requestVersion: number },
): Promise<void> {
  const [request] = await store.read(streamOf(p.runId), { from: p.requestVersion, to: p.requestVersion });
  if (!request || !isRunEvent(request, RunEvents.RollbackRequested) || request.data.coordinator !== groupId) {
    throw new GroupStateError(
      groupId,
      `participant "${p.name}" has no rollback request of this group at version ${p.requestVersion}`,
      'its stream was changed outside the coordinator',
    );
  }
}

function append(store: EventStore, groupId: string, event: NewGroupEvent): Promise<unknown> {
  return store.append(groupStreamOf(groupId), [event], { expectedVersion: 'any' });
}

export type { ParticipantStartedData };
