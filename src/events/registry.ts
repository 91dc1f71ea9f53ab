import type { ZodType } from 'zod';
import type { EventEnvelope } from './envelope.js';
import { ValidationError } from './errors.js';

export type Upcaster = (data: any, event: EventEnvelope) => unknown;

interface TypeEntry {
  /** The schema version new events of this type are written with. */
  current: number;
  schema?: ZodType;
  /** upcasters.get(n) turns version n into n + 1. */
  upcasters: Map<number, Upcaster>;
}

/**
 * Knows the event types an application writes: their current schema version,
 * an optional zod schema checked on append, and upcasters applied on read so
 * that an event written under an old schema replays under today's code.
 * Types that were never registered pass through untouched.
 */
export class EventRegistry {
  readonly #types = new Map<string, TypeEntry>();

  /** Declares a type. `schemaVersion` defaults to 1. */
  register(type: string, options: { schemaVersion?: number; schema?: ZodType } = {}): this {
    const current = options.schemaVersion ?? 1;
    if (!Number.isInteger(current) || current < 1) {
      throw new ValidationError(`schemaVersion of "${type}" must be a positive integer, got ${current}`);
    }
    const entry = this.#entry(type);
    entry.current = current;
    entry.schema = options.schema;
    return this;
  }

  /** Declares how to turn `type` at `fromVersion` into `fromVersion + 1`. */
  upcast(type: string, fromVersion: number, upcaster: Upcaster): this {
    const entry = this.#entry(type);
    if (entry.upcasters.has(fromVersion)) {
      throw new ValidationError(`an upcaster for "${type}" v${fromVersion} is already registered`);
    }
    entry.upcasters.set(fromVersion, upcaster);
    if (entry.current <= fromVersion) entry.current = fromVersion + 1;
    return this;
  }

  /** The schema version to stamp on a new event of this type. */
  currentVersion(type: string): number {
    return this.#types.get(type)?.current ?? 1;
  }

  /** Throws a ValidationError when `data` does not match the type's schema. */
  validate(type: string, schemaVersion: number, data: unknown): void {
    const entry = this.#types.get(type);
    if (!entry) return;
    if (schemaVersion > entry.current) {
      throw new ValidationError(
        `event type "${type}" is at schema version ${entry.current}; version ${schemaVersion} is unknown to this code`,
        [],
        'deploy the code that knows the newer schema before writing it',
      );
    }
    if (!entry.schema || schemaVersion !== entry.current) return;
    const result = entry.schema.safeParse(data);
    if (!result.success) {
      throw new ValidationError(
        `data of event type "${type}" does not match its schema`,
        result.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`),
      );
    }
  }

  /** Brings a stored event up to the current schema version. Pure: returns a new envelope. */
  upcastEvent<E extends EventEnvelope>(event: E): E {
    const entry = this.#types.get(event.type);
    if (!entry || event.schemaVersion >= entry.current) return event;
    let data: unknown = event.data;
    for (let v = event.schemaVersion; v < entry.current; v++) {
      const step = entry.upcasters.get(v);
      if (!step) {
        throw new ValidationError(
          `no upcaster from "${event.type}" v${v} to v${v + 1} (event ${event.id} in stream "${event.streamId}")`,
          [],
          `register one with registry.upcast("${event.type}", ${v}, fn)`,
        );
      }
      data = step(data, { ...event, data, schemaVersion: v });
    }
    return { ...event, data, schemaVersion: entry.current };
  }

  #entry(type: string): TypeEntry {
    if (typeof type !== 'string' || type.length === 0) {
      throw new ValidationError('an event type must be a non-empty string');
    }
    let entry = this.#types.get(type);
    if (!entry) {
      entry = { current: 1, upcasters: new Map() };
      this.#types.set(type, entry);
    }
    return entry;
  }
}
