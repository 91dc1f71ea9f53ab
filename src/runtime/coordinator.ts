import { canonicalJson } from '../events/canonical.js';
import type { EventEnvelope, Json } from '../events/envelope.js';
import { ConcurrencyError, ValidationError } from '../events/errors.js';
import type { EventStore, StreamAppend } from '../store/types.js';
import { type NewRunEvent, RunEvents } from './events.js';
import { defineGroup, type GroupDefinition, NAME } from './group/definition.js';
import { GroupNotFoundError, GroupRollbackRefusedError, GroupStateError, LabelMissingError } from './group/errors.js';
import {
  GroupEvents,
  type GroupRollbackRequestedData,
  type GroupStartedData,
  groupStatusOf,
  groupStreamOf,
  isGroupEvent,
  type NewGroupEvent,
  participantsOf,
  pendingGroupRollback,
} from './group/events.js';
import { type GroupInfo, readGroupInfo } from './group/info.js';
import { carryOutGroupRollback, type GroupRollbackRequest, requestGroupRollback } from './group/rollback.js';
import { streamOf } from './run-log.js';
import { RUNTIME_INTERNALS, type Runtime, type RuntimeInternals } from './runtime.js';

export * from './group/definition.js';
export * from './group/errors.js';
export * from './group/events.js';
export type { GroupInfo, ParticipantInfo } from './group/info.js';
export type { GroupRollbackRequest } from './group/rollback.js';

/**
 * A coordinator: several agents, each its own run, cooperating under one
 * group (a saga / process manager). The group is a stream of its own,
 * `coordinator-<groupId>`; participants are ordinary runs `run-<groupId>.<name>`
 * that know nothing of the group until it rolls them back. The pipeline
 * starts them in order, each with its journaled input; a coordinated rollback
 * (group/rollback.ts) takes every one back to the same label together. What
 * a group's events mean is group/events.ts; reading its info, group/info.ts.
 */

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
      await this.#append(groupId, [{ type: GroupEvents.GroupStarted, data }], 'no_stream');
    } catch (error) {
      if (!(error instanceof ConcurrencyError)) throw error;
      const [first] = await this.store.read(groupStreamOf(groupId), { from: 1, to: 1 });
      const existing = first && isGroupEvent(first, GroupEvents.GroupStarted) ? first.data.group : undefined;
      if (existing !== def.name) throw new GroupStateError(groupId, `already exists as a group "${existing}"`, 'pick another group id');
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
    if (isGroupEvent(last, GroupEvents.GroupRolledBack))
      await this.#append(groupId, [{ type: GroupEvents.GroupResumed, data: {} }], last.version);
    return this.#advance(groupId);
  }

  async get(groupId: string): Promise<GroupInfo> {
    return readGroupInfo(this.store, groupId, await this.#events(groupId));
  }

  /** Rolls every participant back to its checkpoint `label`, together (see group/rollback.ts). */
  rollback(groupId: string, request: GroupRollbackRequest, cause?: GroupRollbackRequestedData['cause']): Promise<GroupInfo> {
    const promise = (async () => {
      if (typeof request?.label !== 'string' || request.label === '')
        throw new ValidationError('a group rollback needs a checkpoint label');
      if (typeof request.reason !== 'string' || request.reason.trim() === '') throw new ValidationError('a group rollback needs a reason');
      const [first] = await this.store.read(groupStreamOf(groupId), { from: 1, to: 1 });
      const group = first && isGroupEvent(first, GroupEvents.GroupStarted) ? this.#groups.get(first.data.group) : undefined;
      const hold = (runId: string) => this.#internals.hold(runId);
      await requestGroupRollback(this.store, groupId, request, cause, hold, group?.participants ?? []);
      return this.#carryOut(groupId);
    })().finally(() => {
      if (this.#requesting.get(groupId) === promise) this.#requesting.delete(groupId);
    });
    this.#requesting.set(groupId, promise);
    return promise;
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

  async #append(groupId: string, events: NewGroupEvent[], expectedVersion: number | 'any' | 'no_stream'): Promise<void> {
    await this.store.append(groupStreamOf(groupId), events, { expectedVersion });
  }

  async #unblock(groupId: string, what: { note?: string; resolvedByHand?: string }): Promise<GroupInfo> {
    const events = await this.#events(groupId);
    const tail = events[events.length - 1] as EventEnvelope;
    if (!isGroupEvent(tail, GroupEvents.GroupNeedsAttention)) {
      throw new GroupStateError(groupId, `is ${groupStatusOf(events)}`, 'only a group that needs attention has a compensation to retry');
    }
    const blocked = tail.data;
    const [runTail] = await this.store.read(streamOf(blocked.runId), { direction: 'backward', limit: 1 });
    const retried: NewGroupEvent = {
      type: GroupEvents.GroupCompensationRetried,
      data: { participant: blocked.participant, runId: blocked.runId, ...what },
    };
    const appends: StreamAppend[] = [{ streamId: groupStreamOf(groupId), events: [retried], expectedVersion: tail.version }];
    // The participant may have been unblocked directly (runtime.retryCompensation); then only the group moves on.
    if (runTail?.type === RunEvents.NeedsAttention) {
      const event: NewRunEvent =
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
      const status = groupStatusOf(events);
      if (pendingGroupRollback(events)) {
        if (status === 'needs_attention') return readGroupInfo(this.store, groupId, events);
        return this.#carryOut(groupId);
      }
      if (status !== 'running') return readGroupInfo(this.store, groupId, events);
      const first = events[0] as EventEnvelope;
      if (!isGroupEvent(first, GroupEvents.GroupStarted)) throw new GroupNotFoundError(groupId);
      const def = this.#group(first.data.group);
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
        const runId = record.runId;
        // start() is idempotent for one id and input, so a crash between the record and the start only delays it.
        // A participant rolled back with the group goes on from the checkpoint once the group is resumed.
        const info = await this.runtime
          .start(p.workflow, record.input, { runId })
          .then((i) => (i.status === 'rolled_back' ? this.runtime.resume(runId) : i));
        if (info.status === 'completed') {
          outputs[p.name] = info.output;
          continue;
        }
        // Held for a group rollback (or driven by someone else): the rollback, not this pass, decides what comes next.
        if (info.status === 'running' || info.status === 'rolling_back') {
          const requesting = this.#requesting.get(groupId);
          if (requesting) return requesting.catch(() => this.get(groupId));
          const now = await this.#events(groupId);
          return pendingGroupRollback(now) ? this.#carryOut(groupId) : readGroupInfo(this.store, groupId, now);
        }
        const error = info.error ?? info.attention?.error;
        const cause = { participant: p.name, status: info.status, ...(error ? { error } : {}) };
        if (def.onFailure !== undefined && def.onFailure !== 'fail') {
          const label = def.onFailure.rollbackTo;
          const reason = `participant "${p.name}" ${info.status}${error ? `: ${error.message}` : ''}`;
          try {
            return await this.rollback(groupId, { label, reason }, cause);
          } catch (e) {
            if (!(e instanceof LabelMissingError || e instanceof GroupStateError || e instanceof GroupRollbackRefusedError)) throw e;
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
    const promise = carryOutGroupRollback(this.#internals, groupId)
      .then(() => this.get(groupId))
      .finally(() => this.#carrying.delete(groupId));
    this.#carrying.set(groupId, promise);
    return promise;
  }
}
