import { canonicalJson } from '../events/canonical.js';
import type { EventEnvelope, Json, NewEvent } from '../events/envelope.js';
import { ConcurrencyError, RewindError, ValidationError } from '../events/errors.js';
import type { EventStore, StreamAppend } from '../store/types.js';
import { type Compensator, Pass } from './context.js';
import type { SerializedError } from './errors.js';
import {
  type CheckpointData,
  type CheckpointIndex,
  type NeedsAttentionData,
  type RollbackRequestedData,
  type RolledBackData,
  RunEvents,
  type RunStartedData,
} from './events.js';
import { checkpointIndexOf, effectiveEvents, type RunStatus, statusAfter } from './history.js';
import { carryOutRollback } from './rollback.js';
import { RunLog, streamOf } from './run-log.js';
import { RUNTIME_INTERNALS, type Runtime, type RuntimeInternals } from './runtime.js';
import type { Workflow } from './workflow.js';

/**
 * A coordinator: several agents, each its own run, cooperating under one
 * group (a saga / process manager). The group is a stream of its own,
 * `coordinator-<groupId>`; participants are ordinary runs `run-<groupId>.<name>`
 * that know nothing of the group until it rolls them back.
 *
 * Coordinated rollback, each stage journaled on the group stream:
 * 1. Every participant must have an effective checkpoint with the label, or
 *    nothing at all is written (LabelMissingError names the ones without).
 *    Then ONE appendMany writes GroupRollbackRequested here and a
 *    RollbackRequested (owned by the coordinator) on every participant: all
 *    of them stop going forward in the same commit.
 * 2. Each participant's compensations run, newest agent first and newest step
 *    first within each, through the same journaled protocol as a single run's
 *    rollback (rollback.ts); the RolledBack marker it would write is held
 *    back. ParticipantCompensated records each one done. A compensation that
 *    keeps failing puts the group in needs attention, naming the participant.
 * 3. ONE appendMany writes every participant's RolledBack marker and
 *    GroupRolledBack, each at the version it was read at. A reader of the log
 *    sees every agent rolled back or none.
 * A crash anywhere resumes from what the streams hold: resume(groupId).
 *
 * A single runtime's driver never finishes a rollback owned by a coordinator
 * (runtime.ts), so no worker can write one participant's marker alone.
 */

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
export interface GroupRolledBackData {
  label: string;
  reason: string;
  markers: Array<{ name: string; runId: string; version: number }>;
}

export function groupStreamOf(groupId: string): string {
  return `coordinator-${groupId}`;
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

/** The group rollback requested and not finished, if any. */
function pendingGroupRollback(events: readonly EventEnvelope[]): EventEnvelope<string, GroupRollbackRequestedData> | undefined {
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i] as EventEnvelope;
    if (e.type === GroupEvents.GroupRolledBack) return undefined;
    if (e.type === GroupEvents.GroupRollbackRequested) return e as EventEnvelope<string, GroupRollbackRequestedData>;
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/** Some participants have no effective checkpoint with the label. Nothing was written, nothing compensated. */
export class LabelMissingError extends RewindError {
  readonly groupId: string;
  readonly label: string;
  readonly missing: readonly string[];
  constructor(groupId: string, label: string, missing: string[]) {
    super(
      'LABEL_MISSING',
      `group "${groupId}" cannot roll back to "${label}": ${missing.map((m) => `"${m}"`).join(', ')} ${missing.length === 1 ? 'has' : 'have'} no checkpoint "${label}" in ${missing.length === 1 ? 'its' : 'their'} effective history`,
      'pick a label every participant has reached, or wait until they have',
    );
    this.groupId = groupId;
    this.label = label;
    this.missing = missing;
  }
}

/** The operation does not fit the group's (or one participant's) status. Nothing was written. */
export class GroupStateError extends RewindError {
  readonly groupId: string;
  constructor(groupId: string, detail: string, hint: string) {
    super('GROUP_STATE', `group "${groupId}": ${detail}`, hint);
    this.groupId = groupId;
  }
}

export class GroupNotFoundError extends RewindError {
  constructor(groupId: string) {
    super('GROUP_NOT_FOUND', `no group with id "${groupId}"`, 'start it with coordinator.start()');
  }
}

// ---------------------------------------------------------------------------
// Definition
// ---------------------------------------------------------------------------

export interface ParticipantDefinition {
  /** The agent's name; its run is `<groupId>.<name>`. */
  name: string;
  workflow: Workflow;
  /** Its input, or a function of the outputs of the participants before it (they run in order). Journaled once computed. */
  input?: unknown | ((outputs: Record<string, unknown>) => unknown);
}

export interface GroupDefinition {
  name: string;
  participants: ParticipantDefinition[];
  /** When a participant fails (or needs attention): roll every participant back to this label, or ('fail', default) mark the group failed. */
  onFailure?: { rollbackTo: string } | 'fail';
}

const NAME = /^[A-Za-z0-9_-]{1,60}$/;

export function defineGroup(definition: GroupDefinition): Readonly<GroupDefinition> {
  const issues: string[] = [];
  if (typeof definition?.name !== 'string' || !NAME.test(definition.name)) issues.push('name must be 1-60 letters, digits, _ or -');
  if (!Array.isArray(definition?.participants) || definition.participants.length === 0)
    issues.push('participants must be a non-empty array');
  const seen = new Set<string>();
  for (const p of definition?.participants ?? []) {
    if (typeof p?.name !== 'string' || !NAME.test(p.name))
      issues.push(`participant name ${JSON.stringify(p?.name)} must be 1-60 letters, digits, _ or -`);
    else if (seen.has(p.name)) issues.push(`participant "${p.name}" appears twice`);
    else seen.add(p.name);
    if (typeof p?.workflow?.run !== 'function') issues.push(`participant "${p?.name}" needs a workflow made by defineWorkflow()`);
  }
  if (issues.length) throw new ValidationError('invalid group definition', issues);
  return Object.freeze({ ...definition });
}

// ---------------------------------------------------------------------------
// Coordinator
// ---------------------------------------------------------------------------

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

export interface GroupRollbackRequest {
  label: string;
  reason: string;
}

/** A RunLog that holds back the RolledBack marker: the coordinator writes every participant's in one commit. */
class HeldMarkerLog extends RunLog {
  override append(events: NewEvent[]): Promise<EventEnvelope[]> {
    if (events.some((e) => e.type === RunEvents.RolledBack || e.type === RunEvents.RunFailed)) return Promise.resolve([]);
    return super.append(events);
  }
}

export function createCoordinator(runtime: Runtime, options: { groups?: GroupDefinition[] } = {}): Coordinator {
  return new Coordinator(runtime, options);
}

export class Coordinator {
  readonly runtime: Runtime;
  readonly store: EventStore;
  readonly #groups = new Map<string, Readonly<GroupDefinition>>();
  readonly #internals: RuntimeInternals;
  /** One carrier of a group's rollback per process; the pipeline and an explicit rollback share it. */
  readonly #carrying = new Map<string, Promise<GroupInfo>>();
  /** Group rollbacks being requested here: a participant paused by one hands the pipeline over to it. */
  readonly #requesting = new Map<string, Promise<GroupInfo>>();

  constructor(runtime: Runtime, options: { groups?: GroupDefinition[] } = {}) {
    this.runtime = runtime;
    this.store = runtime.store;
    this.#internals = runtime[RUNTIME_INTERNALS]();
    for (const g of options.groups ?? []) this.register(g);
  }

  register(definition: GroupDefinition): this {
    const group = defineGroup(definition);
    this.#groups.set(group.name, group);
    for (const p of group.participants) this.runtime.register(p.workflow);
    return this;
  }

  /** Starts the group (idempotent for one id and group) and drives its participants, in order, until the group stops. */
  async start(group: GroupDefinition | string, groupId: string): Promise<GroupInfo> {
    if (typeof group !== 'string') this.register(group);
    const def = this.#group(typeof group === 'string' ? group : group.name);
    if (typeof groupId !== 'string' || !NAME.test(groupId))
      throw new ValidationError(`invalid group id ${JSON.stringify(groupId)}`, [], 'use 1-60 letters, digits, _ or -');
    const data: GroupStartedData = { groupId, group: def.name, participants: def.participants.map((p) => p.name) };
    try {
      await this.store.append(groupStreamOf(groupId), [{ type: GroupEvents.GroupStarted, data }], { expectedVersion: 'no_stream' });
    } catch (error) {
      if (!(error instanceof ConcurrencyError)) throw error;
      const [first] = await this.store.read(groupStreamOf(groupId), { from: 1, to: 1 });
      if ((first?.data as GroupStartedData | undefined)?.group !== def.name) {
        throw new GroupStateError(
          groupId,
          `already exists as a group "${(first?.data as GroupStartedData | undefined)?.group}"`,
          'pick another group id',
        );
      }
    }
    return this.#advance(groupId);
  }

  /**
   * Picks a group up where its log ends: a rollback in progress is carried on,
   * a rolled-back group goes forward again, a running one drives its participants.
   */
  async resume(groupId: string): Promise<GroupInfo> {
    const events = await this.#events(groupId);
    const last = events[events.length - 1] as EventEnvelope;
    if (last.type === GroupEvents.GroupRolledBack) {
      await this.#append(groupId, [{ type: GroupEvents.GroupResumed, data: {} }], last.version);
    }
    return this.#advance(groupId);
  }

  async get(groupId: string): Promise<GroupInfo> {
    return this.#info(groupId, await this.#events(groupId));
  }

  /** Rolls every participant back to its checkpoint `label`, together (see the module comment). */
  rollback(groupId: string, request: GroupRollbackRequest, cause?: GroupRollbackRequestedData['cause']): Promise<GroupInfo> {
    const promise = this.#rollback(groupId, request, cause).finally(() => {
      if (this.#requesting.get(groupId) === promise) this.#requesting.delete(groupId);
    });
    this.#requesting.set(groupId, promise);
    return promise;
  }

  async #rollback(groupId: string, request: GroupRollbackRequest, cause?: GroupRollbackRequestedData['cause']): Promise<GroupInfo> {
    if (typeof request?.label !== 'string' || request.label === '') throw new ValidationError('a group rollback needs a checkpoint label');
    if (typeof request.reason !== 'string' || request.reason.trim() === '') throw new ValidationError('a group rollback needs a reason');
    for (let tries = 0; ; tries++) {
      const events = await this.#events(groupId);
      const tail = events[events.length - 1] as EventEnvelope;
      const status = groupStatusAfter(tail.type);
      if (status === 'rolling_back' || status === 'needs_attention') {
        throw new GroupStateError(groupId, `is ${status}`, 'resume or retry the group rollback in progress first');
      }
      const started = participantsOf(events);
      if (started.length === 0) throw new GroupStateError(groupId, 'has no participant started yet', 'nothing to roll back');
      // Stop this process's drivers at their next ctx call, so no step of theirs completes unrecorded under the request.
      for (const p of started) await this.#internals.hold(p.runId);
      const targets: GroupRollbackRequestedData['participants'] = [];
      const appends: StreamAppend[] = [];
      const missing: string[] = [];
      for (const p of started) {
        const runEvents = await this.store.read(streamOf(p.runId));
        const last = runEvents[runEvents.length - 1] as EventEnvelope;
        const runStatus = statusAfter(last.type);
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
      const data: GroupRollbackRequestedData = {
        label: request.label,
        reason: request.reason,
        ...(cause ? { cause } : {}),
        participants: targets,
      };
      appends.unshift({
        streamId: groupStreamOf(groupId),
        events: [{ type: GroupEvents.GroupRollbackRequested, data }],
        expectedVersion: tail.version,
      });
      try {
        await this.store.appendMany(appends);
        break;
      } catch (error) {
        // A participant or the group moved after we read it: read again and re-decide.
        if (!(error instanceof ConcurrencyError) || tries >= 20) throw error;
      }
    }
    return this.#carryOut(groupId);
  }

  /** The participant holding the group gets its blocked compensation run again (fresh retry budget, same key); then the rest. */
  retry(groupId: string, note?: string): Promise<GroupInfo> {
    return this.#unblock(groupId, note === undefined ? {} : { note });
  }

  /** An operator undid the blocked step's effect by hand; the group rollback goes on. */
  resolveByHand(groupId: string, note: string): Promise<GroupInfo> {
    if (typeof note !== 'string' || note.trim() === '') throw new ValidationError('resolveByHand needs a note saying what was done');
    return this.#unblock(groupId, { resolvedByHand: note });
  }

  #group(name: string): Readonly<GroupDefinition> {
    const group = this.#groups.get(name);
    if (!group)
      throw new ValidationError(
        `no group definition named "${name}" is registered`,
        [],
        'pass it to createCoordinator(runtime, { groups }) or coordinator.register()',
      );
    return group;
  }

  async #events(groupId: string): Promise<EventEnvelope[]> {
    const events = await this.store.read(groupStreamOf(groupId));
    if (events.length === 0) throw new GroupNotFoundError(groupId);
    return events;
  }

  async #append(groupId: string, events: NewEvent[], expectedVersion: number | 'any'): Promise<void> {
    await this.store.append(groupStreamOf(groupId), events, { expectedVersion });
  }

  async #unblock(groupId: string, what: { note?: string; resolvedByHand?: string }): Promise<GroupInfo> {
    const events = await this.#events(groupId);
    const tail = events[events.length - 1] as EventEnvelope;
    if (tail.type !== GroupEvents.GroupNeedsAttention) {
      throw new GroupStateError(
        groupId,
        `is ${groupStatusAfter(tail.type)}`,
        'only a group that needs attention has a compensation to retry',
      );
    }
    const blocked = tail.data as GroupNeedsAttentionData;
    const [runTail] = await this.store.read(streamOf(blocked.runId), { direction: 'backward', limit: 1 });
    const appends: StreamAppend[] = [
      {
        streamId: groupStreamOf(groupId),
        events: [{ type: GroupEvents.GroupCompensationRetried, data: { participant: blocked.participant, runId: blocked.runId, ...what } }],
        expectedVersion: tail.version,
      },
    ];
    // The participant may have been unblocked directly (runtime.retryCompensation); then only the group moves on.
    if (runTail?.type === RunEvents.NeedsAttention) {
      const event: NewEvent =
        what.resolvedByHand !== undefined
          ? { type: RunEvents.ResolvedByHand, data: { stepKey: blocked.stepKey, note: what.resolvedByHand } }
          : { type: RunEvents.CompensationRetried, data: { stepKey: blocked.stepKey, ...(what.note ? { note: what.note } : {}) } };
      appends.push({ streamId: streamOf(blocked.runId), events: [event], expectedVersion: runTail.version });
    }
    await this.store.appendMany(appends);
    return this.#carryOut(groupId);
  }

  /** The process manager: each participant in order, started with its journaled input, followed until it stops. */
  async #advance(groupId: string): Promise<GroupInfo> {
    for (;;) {
      const events = await this.#events(groupId);
      const tail = events[events.length - 1] as EventEnvelope;
      const status = groupStatusAfter(tail.type);
      if (pendingGroupRollback(events)) {
        if (status === 'needs_attention') return this.#info(groupId, events);
        return this.#carryOut(groupId);
      }
      if (status !== 'running') return this.#info(groupId, events);
      const def = this.#group((events[0] as EventEnvelope<string, GroupStartedData>).data.group);
      const started = new Map(participantsOf(events).map((p) => [p.name, p]));
      const outputs: Record<string, unknown> = {};
      let moved = false;
      for (const p of def.participants) {
        let record = started.get(p.name);
        if (!record) {
          const input = (typeof p.input === 'function' ? (p.input as (o: Record<string, unknown>) => unknown)(outputs) : p.input) ?? null;
          canonicalJson(input);
          record = { name: p.name, runId: `${groupId}.${p.name}`, workflow: p.workflow.name, input: input as Json };
          try {
            await this.#append(groupId, [{ type: GroupEvents.ParticipantStarted, data: record }], (events.at(-1) as EventEnvelope).version);
          } catch (error) {
            if (error instanceof ConcurrencyError) {
              moved = true;
              break;
            }
            throw error;
          }
          events.push(...(await this.store.read(groupStreamOf(groupId), { from: events.length + 1 })));
        }
        // start() is idempotent for one id and input, so a crash between the record and the start only delays it.
        // A participant rolled back with the group goes on from the checkpoint once the group is resumed.
        const info = await this.runtime
          .start(p.workflow, record.input, { runId: record.runId })
          .then((i) => (i.status === 'rolled_back' ? this.runtime.resume(record.runId) : i));
        if (info.status === 'completed') {
          outputs[p.name] = info.output;
          continue;
        }
        // Held for a group rollback (or driven by someone else): the rollback, not this pass, decides what comes next.
        if (info.status === 'running' || info.status === 'rolling_back') {
          const requesting = this.#requesting.get(groupId);
          if (requesting) return requesting.catch(() => this.get(groupId));
          const now = await this.#events(groupId);
          return pendingGroupRollback(now) ? this.#carryOut(groupId) : this.#info(groupId, now);
        }
        const error = info.error ?? info.attention?.error;
        const cause = { participant: p.name, status: info.status, ...(error ? { error } : {}) };
        if (def.onFailure !== undefined && def.onFailure !== 'fail') {
          const label = def.onFailure.rollbackTo;
          const reason = `participant "${p.name}" ${info.status}${error ? `: ${error.message}` : ''}`;
          try {
            return await this.rollback(groupId, { label, reason }, cause);
          } catch (e) {
            if (!(e instanceof LabelMissingError || e instanceof GroupStateError)) throw e;
            // The group cannot go back together: it fails as it stands, saying why.
            await this.#append(groupId, [{ type: GroupEvents.GroupFailed, data: { ...cause, rollbackRefused: e.message } }], 'any');
            return this.get(groupId);
          }
        }
        await this.#append(groupId, [{ type: GroupEvents.GroupFailed, data: cause }], 'any');
        return this.get(groupId);
      }
      if (moved) continue;
      await this.#append(groupId, [{ type: GroupEvents.GroupCompleted, data: { outputs: outputs as Json } }], 'any');
      return this.get(groupId);
    }
  }

  #carryOut(groupId: string): Promise<GroupInfo> {
    const running = this.#carrying.get(groupId);
    if (running) return running;
    const promise = this.#carryOutOnce(groupId).finally(() => this.#carrying.delete(groupId));
    this.#carrying.set(groupId, promise);
    return promise;
  }

  /** Stages 2-3. Everything left to do is derived from the streams, so this is also how a crashed rollback resumes. */
  async #carryOutOnce(groupId: string): Promise<GroupInfo> {
    const events = await this.#events(groupId);
    const request = pendingGroupRollback(events);
    if (!request) return this.#info(groupId, events);
    if (groupStatusAfter((events[events.length - 1] as EventEnvelope).type) === 'needs_attention') return this.#info(groupId, events);
    const done = new Set(
      events
        .slice(request.version)
        .filter((e) => e.type === GroupEvents.ParticipantCompensated)
        .map((e) => (e.data as ParticipantCompensatedData).name),
    );
    const signal = new AbortController().signal;

    // The agent started last is undone first, as a saga undoes its steps.
    for (const p of [...request.data.participants].reverse()) {
      if (done.has(p.name)) continue;
      const runEvents = await this.store.read(streamOf(p.runId));
      const runRequest = runEvents[p.requestVersion - 1] as EventEnvelope<string, RollbackRequestedData> | undefined;
      if (runRequest?.type !== RunEvents.RollbackRequested || runRequest.data.coordinator !== groupId) {
        throw new GroupStateError(
          groupId,
          `participant "${p.name}" has no rollback request of this group at version ${p.requestVersion}`,
          'its stream was changed outside the coordinator',
        );
      }
      const log = new HeldMarkerLog(this.store, p.runId, runEvents);
      const outcome = await carryOutRollback({
        log,
        request: runRequest,
        compensators: await this.#compensators(log),
        clock: this.#internals.clock,
        signal,
        compensationRetry: this.#internals.compensationRetry,
      });
      if (outcome === 'needs_attention') {
        const attention = log.events[log.events.length - 1]?.data as NeedsAttentionData;
        const data: GroupNeedsAttentionData = { participant: p.name, runId: p.runId, ...attention };
        await this.#append(groupId, [{ type: GroupEvents.GroupNeedsAttention, data }], 'any');
        return this.get(groupId);
      }
      await this.#append(groupId, [{ type: GroupEvents.ParticipantCompensated, data: { name: p.name, runId: p.runId } }], 'any');
    }

    // Stage 3: every marker, and the group's, in one commit at the versions read here.
    for (let tries = 0; ; tries++) {
      const group = await this.#events(groupId);
      if (!pendingGroupRollback(group)) return this.#info(groupId, group);
      const appends: StreamAppend[] = [];
      const markers: GroupRolledBackData['markers'] = [];
      for (const p of request.data.participants) {
        const runEvents = await this.store.read(streamOf(p.runId));
        const runRequest = runEvents[p.requestVersion - 1] as EventEnvelope<string, RollbackRequestedData>;
        const target = runEvents[runRequest.data.targetVersion - 1];
        const index: CheckpointIndex = target?.type === RunEvents.Checkpoint ? (target.data as CheckpointData).index : {};
        const { label, reason, trigger, after } = runRequest.data;
        const marker: RolledBackData = {
          requestVersion: p.requestVersion,
          targetVersion: runRequest.data.targetVersion,
          label,
          reason,
          trigger,
          after,
          index,
        };
        appends.push({
          streamId: streamOf(p.runId),
          events: [{ type: RunEvents.RolledBack, data: marker }],
          expectedVersion: runEvents.length,
        });
        markers.push({ name: p.name, runId: p.runId, version: runEvents.length + 1 });
      }
      const data: GroupRolledBackData = { label: request.data.label, reason: request.data.reason, markers };
      appends.unshift({
        streamId: groupStreamOf(groupId),
        events: [{ type: GroupEvents.GroupRolledBack, data }],
        expectedVersion: group.length,
      });
      try {
        await this.store.appendMany(appends);
        return this.get(groupId);
      } catch (error) {
        // Another process finished it, or wrote to a participant meanwhile: read again.
        if (!(error instanceof ConcurrencyError) || tries >= 20) throw error;
      }
    }
  }

  /** Replays the participant's code up to the end of its journal to get its steps' compensate/verify closures back. */
  async #compensators(log: RunLog): Promise<ReadonlyMap<string, Compensator>> {
    const started = log.events[0]?.data as RunStartedData;
    const workflow = this.#internals.workflow(started.workflow);
    const collect = new Pass({
      workflow,
      log,
      breakers: this.#internals.breakers,
      clock: this.#internals.clock,
      mode: 'collect',
      signal: new AbortController().signal,
    });
    await workflow.run(collect, started.input).catch(() => {});
    if (collect.halt?.reason === 'error') throw collect.halt.error;
    return collect.compensators;
  }

  async #info(groupId: string, events: EventEnvelope[]): Promise<GroupInfo> {
    const first = events[0]?.data as GroupStartedData;
    const tail = events[events.length - 1] as EventEnvelope;
    const status = groupStatusAfter(tail.type);
    const started = new Map(participantsOf(events).map((p) => [p.name, p]));
    const participants: ParticipantInfo[] = [];
    for (const name of first.participants) {
      const p = started.get(name);
      if (!p) {
        participants.push({ name, runId: `${groupId}.${name}`, workflow: '', status: 'not_started', version: 0, rollbacks: 0 });
        continue;
      }
      const runEvents = await this.store.read(streamOf(p.runId));
      if (runEvents.length === 0) {
        participants.push({ name, runId: p.runId, workflow: p.workflow, status: 'not_started', version: 0, rollbacks: 0 });
        continue;
      }
      const last = runEvents[runEvents.length - 1] as EventEnvelope;
      const runStatus = statusAfter(last.type);
      participants.push({
        name,
        runId: p.runId,
        workflow: p.workflow,
        status: runStatus,
        version: last.version,
        rollbacks: runEvents.filter((e) => e.type === RunEvents.RolledBack).length,
        ...(runStatus === 'completed' ? { output: (last.data as { output?: unknown }).output } : {}),
        ...(runStatus === 'failed' ? { error: (last.data as { error: SerializedError }).error } : {}),
        ...(runStatus === 'needs_attention' ? { attention: last.data as NeedsAttentionData } : {}),
      });
    }
    const lastRequest = [...events].reverse().find((e) => e.type === GroupEvents.GroupRollbackRequested) as
      | EventEnvelope<string, GroupRollbackRequestedData>
      | undefined;
    return {
      groupId,
      group: first.group,
      status,
      version: tail.version,
      participants,
      ...(lastRequest
        ? {
            rollback: {
              label: lastRequest.data.label,
              reason: lastRequest.data.reason,
              ...(lastRequest.data.cause ? { cause: lastRequest.data.cause } : {}),
              done: !pendingGroupRollback(events),
            },
          }
        : {}),
      ...(status === 'needs_attention' ? { attention: tail.data as GroupNeedsAttentionData } : {}),
    };
  }
}

function participantsOf(events: readonly EventEnvelope[]): ParticipantStartedData[] {
  return events.filter((e) => e.type === GroupEvents.ParticipantStarted).map((e) => e.data as ParticipantStartedData);
}
