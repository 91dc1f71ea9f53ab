import type { Json } from './envelope.js';
import { ValidationError } from './errors.js';
import { MAX_JSON_DEPTH } from './json-depth.js';

/**
 * Canonical JSON: object keys sorted by code unit, no whitespace, numbers and
 * strings as ECMAScript serialises them (which is what RFC 8785 asks for).
 * Two values that mean the same JSON give the same bytes, so they hash alike.
 * Anything JSON cannot carry faithfully is refused rather than silently changed.
 */
export function canonicalJson(value: unknown): string {
  return encode(value, undefined);
}

/** A value's canonical text and the copy of it that the text stands for. */
export interface CanonicalCopy {
  text: string;
  copy: Json;
}

/**
 * The canonical text and, from the same walk, a copy of `value` exactly as
 * JSON.parse would give it back from that text: keys in the text's order,
 * -0 as 0, undefined array items as null. Owned by the caller, shared with
 * nobody, without parsing the text again.
 */
export function canonicalJsonAndCopy(value: unknown): CanonicalCopy {
  const sink: Sink = { value: null };
  const text = encode(value, sink);
  return { text, copy: sink.value };
}

/** Where a walk that copies leaves the copy of the value it has just written. */
interface Sink {
  value: Json;
}

function encode(value: unknown, sink: Sink | undefined): string {
  try {
    return write(value, 0, sink);
  } catch (error) {
    if (!(error instanceof NotJson)) throw error;
    const steps = error.path.reverse();
    let where = `$${steps.join('')} is ${error.what}`;
    if (error.what === TOO_DEEP) {
      const cycle = firstRepeat(error.containers.reverse());
      where =
        cycle === undefined
          ? `$ is ${TOO_DEEP}`
          : `$${steps.slice(0, cycle).join('')} is a reference back to one of its own containers (a cycle)`;
    }
    throw new ValidationError(
      `${where}, which JSON cannot represent`,
      [],
      'convert it to plain JSON (strings, finite numbers, booleans, null, arrays, plain objects) first',
    );
  }
}

// Deeper than MAX_JSON_DEPTH is refused; it is also how a cycle shows, which the containers on the way down then name.
const TOO_DEEP = `nested more than ${MAX_JSON_DEPTH} levels deep`;

/**
 * Thrown from where the bad value is; each container on the way out adds its
 * step to the path, so no path is built otherwise. Too deep, the containers
 * come along too: the chain from the value down to the one refused, which
 * tells a cycle from mere depth without walking the value again.
 */
class NotJson {
  readonly path: string[] = [];
  readonly containers: object[] = [];
  constructor(readonly what: string) {}
}

// The same keys come back in every event of a kind: their quoted form is kept, up to a bound.
const quotedKeys = new Map<string, string>();
function quote(key: string): string {
  let quoted = quotedKeys.get(key);
  if (quoted === undefined) {
    quoted = JSON.stringify(key);
    if (quotedKeys.size < 10_000) quotedKeys.set(key, quoted);
  }
  return quoted;
}

function write(value: unknown, depth: number, sink: Sink | undefined): string {
  if (value === null) {
    if (sink) sink.value = null;
    return 'null';
  }
  switch (typeof value) {
    case 'boolean':
      if (sink) sink.value = value;
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new NotJson(`the number ${value}`);
      // The text says 0 for -0, so the copy does too.
      if (sink) sink.value = value === 0 ? 0 : value;
      // For a finite number, String() is JSON's form too.
      return String(value);
    case 'string':
      if (sink) sink.value = value;
      return JSON.stringify(value);
    case 'object':
      if (depth >= MAX_JSON_DEPTH) {
        const tooDeep = new NotJson(TOO_DEEP);
        tooDeep.containers.push(value as object);
        throw tooDeep;
      }
      return Array.isArray(value) ? writeArray(value, depth + 1, sink) : writeObject(value, depth + 1, sink);
    default:
      throw new NotJson(`a ${typeof value}`);
  }
}

function writeArray(value: unknown[], depth: number, sink: Sink | undefined): string {
  const copy: Json[] | undefined = sink ? new Array(value.length) : undefined;
  let text = '[';
  let i = 0;
  try {
    for (; i < value.length; i++) {
      const item = value[i];
      if (i > 0) text += ',';
      if (item === undefined) {
        text += 'null';
        if (copy) copy[i] = null;
      } else {
        text += write(item, depth, sink);
        if (copy) copy[i] = (sink as Sink).value;
      }
    }
  } catch (error) {
    if (error instanceof NotJson) {
      error.path.push(`[${i}]`);
      if (error.what === TOO_DEEP) error.containers.push(value);
    }
    throw error;
  }
  if (sink) sink.value = copy as Json[];
  return `${text}]`;
}

function writeObject(value: object, depth: number, sink: Sink | undefined): string {
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) throw new NotJson(`an instance of ${value.constructor?.name ?? 'a class'}`);
  const record = value as Record<string, unknown>;
  const copy: { [key: string]: Json } | undefined = sink ? {} : undefined;
  const keys = Object.keys(record);
  if (keys.length > 1) keys.sort();
  let text = '{';
  let key = '';
  try {
    for (key of keys) {
      const member = record[key];
      if (member === undefined) continue;
      text += `${text.length === 1 ? '' : ','}${quote(key)}:${write(member, depth, sink)}`;
      if (!copy) continue;
      // Assigning "__proto__" would set the prototype, not a key (JSON.parse makes it a key).
      if (key === '__proto__')
        Object.defineProperty(copy, key, { value: (sink as Sink).value, enumerable: true, writable: true, configurable: true });
      else copy[key] = (sink as Sink).value;
    }
  } catch (error) {
    if (error instanceof NotJson) {
      error.path.push(`.${key}`);
      if (error.what === TOO_DEEP) error.containers.push(value);
    }
    throw error;
  }
  if (sink) sink.value = copy as { [key: string]: Json };
  return `${text}}`;
}

/**
 * In a chain of containers from the value down, each the parent of the next:
 * how many steps down the first one that is also an earlier one is (a cycle),
 * or undefined when all differ (merely deep). As long as the walk that made
 * the chain, which MAX_JSON_DEPTH bounds.
 */
function firstRepeat(chain: readonly object[]): number | undefined {
  const seen = new Set<object>();
  for (let i = 0; i < chain.length; i++) {
    const container = chain[i] as object;
    if (seen.has(container)) return i;
    seen.add(container);
  }
  return undefined;
}
