import type { EventEnvelope } from '../events/envelope.js';
import type { AnyProjection } from './definition.js';
import { filterOf, matches } from './definition.js';
import { effectiveHistory, rollbackTarget } from './effective-history.js';
import { ProjectionHandlerError } from './errors.js';
import type { Applier } from './storage/types.js';

/** A stored document: its owner stream and its JSON text. */
export interface StoredDoc {
  streamId: string;
  json: string;
}

/** What applying events needs from the read model (inside the transaction that will write the result). */
export interface DocView {
  get(key: string): StoredDoc | undefined;
  /** A stream's events with version ≤ toVersion, as stored (the caller upcasts). */
  history(streamId: string, toVersion: number): EventEnvelope[];
}

/**
 * The result of applying events, to be written in one transaction: first
 * every document owned by a `wiped` stream is deleted, then each key in `docs`
 * is put (or deleted, when null).
 */
export interface Changeset {
  wiped: Set<string>;
  docs: Map<string, StoredDoc | null>;
}

const MAX_KEY_LENGTH = 500;

/**
 * Applies events to a read model without touching it: pure given the view.
 * Ordinary events evolve one document; a RolledBack marker wipes its stream's
 * documents and replays that stream's effective history, so undone work never
 * shows. Throws ProjectionHandlerError naming the event when the projection's
 * code fails. `events` and the view's histories are as stored: upcast here.
 */
export function applyEvents(
  def: AnyProjection,
  events: readonly EventEnvelope[],
  view: DocView,
  upcast: (event: EventEnvelope) => EventEnvelope,
): Changeset {
  const changes: Changeset = { wiped: new Set(), docs: new Map() };
  const current = (key: string): StoredDoc | undefined => {
    if (changes.docs.has(key)) return changes.docs.get(key) ?? undefined;
    const stored = view.get(key);
    return stored && changes.wiped.has(stored.streamId) ? undefined : stored;
  };
  const evolve = (event: EventEnvelope): void => {
    const key = call(def, event, 'key', () => def.key(event));
    if (key === undefined) return;
    if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
      throw new ProjectionHandlerError(
        def.name,
        event,
        `key() returned ${JSON.stringify(key)}; expected a string of 1-${MAX_KEY_LENGTH} characters or undefined`,
      );
    }
    const before = current(key);
    if (before && before.streamId !== event.streamId) {
      throw new ProjectionHandlerError(
        def.name,
        event,
        `document "${key}" belongs to stream "${before.streamId}"; a document is built by the events of one stream only (put the stream id in the key)`,
      );
    }
    const doc = before ? JSON.parse(before.json) : undefined;
    const after = call(def, event, 'evolve', () => def.evolve(doc, event));
    if (after === undefined) {
      if (before) changes.docs.set(key, null);
      return;
    }
    if (after === null || typeof after !== 'object' || Array.isArray(after)) {
      throw new ProjectionHandlerError(def.name, event, 'evolve() must return a plain object (the document) or undefined (delete it)');
    }
    const json = call(def, event, 'evolve', () => JSON.stringify(after));
    changes.docs.set(key, { streamId: event.streamId, json });
  };

  for (const stored of events) {
    const event = upcast(stored);
    if (def.streamPrefix !== undefined && !event.streamId.startsWith(def.streamPrefix)) continue;
    if (rollbackTarget(event) !== undefined) {
      changes.wiped.add(event.streamId);
      for (const [key, doc] of changes.docs) if (doc?.streamId === event.streamId) changes.docs.set(key, null);
      const history = view.history(event.streamId, event.version).map(upcast);
      try {
        for (const past of effectiveHistory(history, { keepMarkers: true })) if (matches(def, past)) evolve(past);
      } catch (error) {
        // Blame the marker: it is the event of this batch the projection stops at.
        if (!(error instanceof ProjectionHandlerError) || error.position === event.position) throw error;
        throw new ProjectionHandlerError(
          def.name,
          event,
          `replaying stream "${event.streamId}" after the rollback: ${error.detail}`,
          error,
        );
      }
    } else if (matches(def, event)) {
      evolve(event);
    }
  }
  return changes;
}

function call<T>(def: AnyProjection, event: EventEnvelope, what: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof ProjectionHandlerError) throw error;
    throw new ProjectionHandlerError(def.name, event, `${what}() threw: ${(error as Error)?.message ?? String(error)}`, error);
  }
}

/** The projection's code bound to an upcaster, as the storage layer calls it. */
export function applierOf(def: AnyProjection, upcast: (event: EventEnvelope) => EventEnvelope): Applier {
  const inScope = (e: EventEnvelope) => def.streamPrefix === undefined || e.streamId.startsWith(def.streamPrefix);
  return {
    filter: filterOf(def),
    keyOf(event) {
      if (!inScope(event)) return undefined;
      const upcast_ = upcast(event);
      if (!matches(def, upcast_)) return undefined;
      try {
        const key = def.key(upcast_);
        return typeof key === 'string' ? key : undefined;
      } catch {
        return undefined;
      }
    },
    rollbacks: (events) => events.filter((e) => inScope(e) && rollbackTarget(e) !== undefined),
    apply: (events, view) => applyEvents(def, events, view, upcast),
  };
}
