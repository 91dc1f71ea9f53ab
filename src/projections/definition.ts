import type { EventEnvelope, Json } from '../events/envelope.js';
import { ValidationError } from '../events/errors.js';
import { ROLLED_BACK } from './effective-history.js';

/** A read-model document: a JSON object, so queries can match its top-level fields. */
export type Doc = { [field: string]: Json };

/**
 * A read model built from the log. Its documents are keyed by string, and each
 * is OWNED by the stream whose events built it: that is what lets a rollback
 * in one stream rebuild exactly that stream's slice from its effective
 * history. Handlers are pure, so the same code gives the same model live,
 * inline, rebuilt, and on every backend.
 */
export interface ProjectionDefinition<D extends Doc = Doc, N extends string = string> {
  /** Unique; letters, digits, '-', '_' and '.'. Queries name the projection by it. */
  name: N;
  /** Bump when the handlers change meaning: the model is then rebuilt from position 0 and swapped in. */
  version: number;
  /**
   * 'inline': applied in the same transaction as the append; a handler that throws on an event of the
   *   append fails the append (on an event another writer appended, it stops the projection instead).
   * 'async' (default): applied by a consumer shortly after; a throwing handler stops the projection.
   */
  mode?: 'inline' | 'async';
  /** Only these event types reach the handlers (RolledBack markers are always honoured). */
  types?: readonly string[];
  /** Only streams whose id starts with this. */
  streamPrefix?: string;
  /** The document an event updates, or undefined to ignore the event. */
  key(event: EventEnvelope): string | undefined;
  /** The document after the event; undefined deletes it. `doc` is a fresh copy: mutate it freely. */
  evolve(doc: D | undefined, event: EventEnvelope): D | undefined;
}

export type AnyProjection = ProjectionDefinition<any, string>;

/** The names of a union of projection definitions. */
export type ProjectionName<P extends AnyProjection> = P['name'];

/** The document type of the projection named N among P (`Doc` for a definition typed `any`). */
export type DocOf<P extends AnyProjection, N extends string> =
  P extends ProjectionDefinition<infer D, infer Name> ? (N extends Name ? (0 extends 1 & D ? Doc : D) : never) : never;

/**
 * Identity function that keeps the document type and the name, so that
 * `projections.find('orders')` knows its documents: the types are inferred from
 * `name` and `evolve`'s `doc` parameter, or given as `defineProjection<Order, 'orders'>({...})`.
 */
export function defineProjection<D extends Doc, const N extends string = string>(
  definition: ProjectionDefinition<D, N>,
): ProjectionDefinition<D, N> {
  return definition;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

/** Every problem of every definition at once, as one ValidationError. */
export function checkDefinitions(definitions: readonly AnyProjection[]): void {
  const issues: string[] = [];
  if (!Array.isArray(definitions)) throw new ValidationError('projections must be an array of definitions');
  const seen = new Set<string>();
  definitions.forEach((def, i) => {
    const at = typeof def?.name === 'string' ? `projection "${def.name}"` : `projections[${i}]`;
    if (def === null || typeof def !== 'object') {
      issues.push(`${at} must be an object`);
      return;
    }
    if (typeof def.name !== 'string' || !NAME.test(def.name)) {
      issues.push(`${at}.name must be 1-100 letters, digits, '-', '_' or '.', starting with a letter or digit`);
    } else if (seen.has(def.name)) {
      issues.push(`${at} is defined twice`);
    } else seen.add(def.name);
    if (!Number.isSafeInteger(def.version) || def.version < 1) issues.push(`${at}.version must be a positive integer`);
    if (def.mode !== undefined && def.mode !== 'inline' && def.mode !== 'async') issues.push(`${at}.mode must be 'inline' or 'async'`);
    if (
      def.types !== undefined &&
      !(Array.isArray(def.types) && def.types.length > 0 && def.types.every((t: unknown) => typeof t === 'string' && t.length > 0))
    ) {
      issues.push(`${at}.types must be a non-empty array of event types`);
    }
    if (def.streamPrefix !== undefined && typeof def.streamPrefix !== 'string') issues.push(`${at}.streamPrefix must be a string`);
    if (typeof def.key !== 'function') issues.push(`${at}.key must be a function (event) => string | undefined`);
    if (typeof def.evolve !== 'function') issues.push(`${at}.evolve must be a function (doc, event) => doc | undefined`);
  });
  if (issues.length > 0) throw new ValidationError('invalid projection definition', issues);
}

/** The log filter that feeds a projection: its types plus the rollback marker. */
export function filterOf(def: AnyProjection): { types?: string[]; streamPrefix?: string } {
  const filter: { types?: string[]; streamPrefix?: string } = {};
  if (def.types) filter.types = [...new Set([...def.types, ROLLED_BACK])];
  if (def.streamPrefix !== undefined) filter.streamPrefix = def.streamPrefix;
  return filter;
}

export function matches(def: AnyProjection, event: Pick<EventEnvelope, 'type' | 'streamId'>): boolean {
  if (def.streamPrefix !== undefined && !event.streamId.startsWith(def.streamPrefix)) return false;
  return def.types === undefined || def.types.includes(event.type);
}
