import { ConcurrencyError } from '../../events/errors.js';
import { appendSystem } from '../../store/event-store.js';
import type { EventStore } from '../../store/types.js';
import type { ReactionStatus } from '../model/reaction.js';
import { type ControlState, controlState, type OperatorData, ReactionEvents } from './control.js';
import { consumerOf, controlStreamOf } from './definition.js';
import { ReactionNotFoundError, ReactionStateError } from './errors.js';

export type { ReactionStatus };

const PREFIX = controlStreamOf('');

/** The state of every reaction that has run against this log, read from the log: no code needed (the CLI and the HTTP API use it). */
export async function reactionStatuses(store: EventStore): Promise<ReactionStatus[]> {
  const head = await store.headPosition();
  const streams = await store.listStreams({ prefix: PREFIX, limit: 10_000 });
  const out: ReactionStatus[] = [];
  for (const { streamId } of streams) out.push(await statusOf(store, streamId.slice(PREFIX.length), head));
  return out;
}

async function statusOf(store: EventStore, name: string, head: number): Promise<ReactionStatus> {
  const state = controlState(await store.read(controlStreamOf(name)));
  const position = (await store.checkpointOf(consumerOf(name))) ?? state.from;
  const lease = await store.leaseOf(controlStreamOf(name));
  return {
    name,
    state: state.parked ? 'parked' : 'ok',
    position,
    head,
    lagEvents: Math.max(0, head - position),
    parked: state.parked,
    skipped: state.skipped.size,
    heldBy: lease && lease.until > Date.now() ? { owner: lease.owner, until: new Date(lease.until).toISOString() } : null,
  };
}

/** One reaction's state; ReactionNotFoundError when it never ran here. */
export async function reactionStatus(store: EventStore, name: string): Promise<ReactionStatus> {
  await controlOf(store, name);
  return statusOf(store, name, await store.headPosition());
}

/**
 * An operator's word on a parked reaction: 'retry' tries the event again
 * (fresh attempts, with the code now loaded), 'skip' goes past it without
 * acting on it. Recorded in the reaction's control stream, where the process
 * running the reaction reads it; refused (nothing written) unless parked.
 */
export async function settleParked(
  store: EventStore,
  name: string,
  how: 'retry' | 'skip',
  options: { actor?: string; reason?: string } = {},
): Promise<ReactionStatus> {
  const state = await controlOf(store, name);
  if (!state.parked) throw new ReactionStateError(name, how === 'skip' ? 'skip an event' : 'retry an event');
  const data: OperatorData = {
    position: state.parked.position,
    ...(options.actor ? { actor: options.actor } : {}),
    ...(options.reason ? { reason: options.reason } : {}),
  };
  const type = how === 'skip' ? ReactionEvents.ReactionSkipped : ReactionEvents.ReactionRetried;
  try {
    await appendSystem(store, { streamId: controlStreamOf(name), events: [{ type, data: { ...data } }], expectedVersion: state.version });
  } catch (error) {
    // Another operator (or the reaction itself) wrote first: look again.
    if (error instanceof ConcurrencyError) return settleParked(store, name, how, options);
    throw error;
  }
  return reactionStatus(store, name);
}

async function controlOf(store: EventStore, name: string): Promise<ControlState> {
  if (typeof name !== 'string' || name === '') throw new ReactionNotFoundError(String(name), []);
  const state = controlState(await store.read(controlStreamOf(name)));
  if (state.version === 0) {
    const known = (await store.listStreams({ prefix: PREFIX, limit: 100 })).map((s) => s.streamId.slice(PREFIX.length));
    throw new ReactionNotFoundError(name, known);
  }
  return state;
}
