import type { Json } from '../../events/envelope.js';
import type { Version } from './events.js';

/**
 * What this process last submitted for a channel of a stream: the version,
 * the checkpoint that wrote it, and the value either as items (plain JSON, our
 * own copy, never handed out) or as the serde's JSON text. The next version is
 * compared with it to find an appended tail.
 */
export interface Submitted {
  version: Version;
  writer: string;
  items?: Json[];
  text?: string;
}

/** A channel value ready to be stored: its full JSON, and when it extends a submitted array, the items appended. */
export interface PlannedValue {
  full: () => Json;
  tail?: { base: Version; writer: string; items: Json[] };
  /** What to remember as submitted for the channel; undefined forgets it. */
  next?: Submitted;
}

// Beyond this depth a value is treated as not plain (which is also how a cycle is caught).
const MAX_DEPTH = 256;
const NOT_PLAIN = Symbol('not plain');

/**
 * Our own copy of `value` when it is plain JSON, else undefined. Plain JSON:
 * null, booleans, finite numbers, strings, arrays without holes and objects
 * whose prototype is Object.prototype or null, none holding undefined. For
 * such a value JSON.stringify writes exactly what JsonPlusSerializer writes
 * (its replacer changes nothing in it), so it needs no serde: that is the
 * fast path. The copy is what is stored: nothing the caller does to its own
 * objects afterwards reaches the log.
 */
export function copyPlain(value: unknown): Json | undefined {
  const copy = copyOf(value, 0);
  return copy === NOT_PLAIN ? undefined : copy;
}

function copyOf(value: unknown, depth: number): Json | typeof NOT_PLAIN {
  if (value === null) return null;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : NOT_PLAIN;
    case 'object':
      break;
    default:
      return NOT_PLAIN;
  }
  if (depth > MAX_DEPTH) return NOT_PLAIN;
  if (Array.isArray(value)) {
    const out: Json[] = new Array(value.length);
    for (let i = 0; i < value.length; i++) {
      const item = copyOf(value[i], depth + 1);
      if (item === NOT_PLAIN) return NOT_PLAIN;
      out[i] = item;
    }
    return out;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return NOT_PLAIN;
  const out: { [key: string]: Json } = {};
  for (const key in value) {
    const member = copyOf((value as Record<string, unknown>)[key], depth + 1);
    if (member === NOT_PLAIN) return NOT_PLAIN;
    // Assigning "__proto__" would set the prototype, not a key (JSON.parse makes it a key).
    if (key === '__proto__') Object.defineProperty(out, key, { value: member, enumerable: true, writable: true, configurable: true });
    else out[key] = member;
  }
  return out;
}

/**
 * Does `value` (the caller's) mean the same JSON as `json` (our parsed copy)?
 * Keys in any order, since the log stores canonical (sorted) JSON anyway.
 * Walks `json`'s finite depth in step, so a cyclic `value` ends too.
 */
export function sameJson(value: unknown, json: Json): boolean {
  if (value === json) return true;
  if (typeof value !== 'object' || value === null || typeof json !== 'object' || json === null) return false;
  if (Array.isArray(value)) {
    if (!Array.isArray(json) || value.length !== json.length) return false;
    for (let i = 0; i < value.length; i++) {
      const item = value[i];
      if (item !== json[i] && !sameJson(item, json[i] as Json)) return false;
    }
    return true;
  }
  if (Array.isArray(json)) return false;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  // Our copy's keys drive the walk (it has no undefined members); then the caller's must be no more.
  const record = value as Record<string, unknown>;
  let keys = 0;
  for (const key in json) {
    const member = record[key];
    if (member !== json[key] && !sameJson(member, json[key] as Json)) return false;
    if (!Object.hasOwn(record, key)) return false;
    keys++;
  }
  for (const _ in record) keys--;
  return keys === 0;
}

/**
 * A plain value. When it is an array that starts with exactly the items last
 * submitted, only the new items are copied: O(new items) instead of
 * serialising the whole list every step, which is what a growing message
 * list costs the savers that store each checkpoint whole.
 */
export function planPlain(value: unknown, version: Version, writer: string, last: Submitted | undefined): PlannedValue | undefined {
  if (Array.isArray(value) && last?.items && value.length > last.items.length) {
    const known = last.items;
    let same = true;
    for (let i = 0; same && i < known.length; i++) same = sameJson(value[i], known[i] as Json);
    const tail = same ? (copyPlain(value.slice(known.length)) as Json[] | undefined) : undefined;
    if (tail) {
      const items = known.concat(tail);
      return { full: () => items, tail: { base: last.version, writer: last.writer, items: tail }, next: { version, writer, items } };
    }
  }
  const copy = copyPlain(value);
  if (copy === undefined) return undefined;
  return { full: () => copy, next: Array.isArray(copy) ? { version, writer, items: copy } : undefined };
}

/** A value the serde turned into JSON text; a tail when the last submitted text is a proper prefix of this array. */
export function planText(text: string, version: Version, writer: string, last: Submitted | undefined): PlannedValue {
  const next = text.charCodeAt(0) === 91 /* [ */ ? { version, writer, text } : undefined;
  const full = () => JSON.parse(text) as Json;
  if (last?.text !== undefined && extendsArray(last.text, text)) {
    const items = JSON.parse(`[${text.slice(last.text.length)}`) as Json[];
    return { full, tail: { base: last.version, writer: last.writer, items }, next };
  }
  return { full, next };
}

/** Is `next` the array `previous` with items appended? */
function extendsArray(previous: string, next: string): boolean {
  const end = previous.length - 1;
  return (
    end > 1 &&
    previous.charCodeAt(0) === 91 /* [ */ &&
    next.length > previous.length &&
    next.charCodeAt(end) === 44 /* , */ &&
    // A slice compares with memcmp; startsWith on a long string walks it a character at a time.
    next.slice(0, end) === previous.slice(0, end)
  );
}
