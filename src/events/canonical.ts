import { ValidationError } from './errors.js';

/**
 * Canonical JSON: object keys sorted by code unit, no whitespace, numbers and
 * strings as ECMAScript serialises them (which is what RFC 8785 asks for).
 * Two values that mean the same JSON give the same bytes, so they hash alike.
 * Anything JSON cannot carry faithfully is refused rather than silently changed.
 */
export function canonicalJson(value: unknown): string {
  try {
    return write(value, new Set());
  } catch (error) {
    if (!(error instanceof NotJson)) throw error;
    throw new ValidationError(
      `$${error.path.reverse().join('')} is ${error.what}, which JSON cannot represent`,
      [],
      'convert it to plain JSON (strings, finite numbers, booleans, null, arrays, plain objects) first',
    );
  }
}

/** Thrown from where the bad value is; each container on the way out adds its step to the path, so no path is built otherwise. */
class NotJson {
  readonly path: string[] = [];
  constructor(readonly what: string) {}
}

/** `ancestors` holds the containers on the path to `value`, so a cycle is named instead of overflowing the stack. */
function write(value: unknown, ancestors: Set<object>): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new NotJson(`the number ${value}`);
      return JSON.stringify(value);
    case 'string':
      return JSON.stringify(value);
    case 'object': {
      if (ancestors.has(value)) throw new NotJson('a reference back to one of its own containers (a cycle)');
      ancestors.add(value);
      const text = Array.isArray(value) ? writeArray(value, ancestors) : writeObject(value, ancestors);
      ancestors.delete(value);
      return text;
    }
    default:
      throw new NotJson(`a ${typeof value}`);
  }
}

function writeArray(value: unknown[], ancestors: Set<object>): string {
  let text = '[';
  let i = 0;
  try {
    for (; i < value.length; i++) {
      const item = value[i];
      text += `${i === 0 ? '' : ','}${item === undefined ? 'null' : write(item, ancestors)}`;
    }
  } catch (error) {
    if (error instanceof NotJson) error.path.push(`[${i}]`);
    throw error;
  }
  return `${text}]`;
}

function writeObject(value: object, ancestors: Set<object>): string {
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) throw new NotJson(`an instance of ${value.constructor?.name ?? 'a class'}`);
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  let text = '{';
  let key = '';
  try {
    for (key of keys) {
      const member = record[key];
      if (member === undefined) continue;
      text += `${text.length === 1 ? '' : ','}${JSON.stringify(key)}:${write(member, ancestors)}`;
    }
  } catch (error) {
    if (error instanceof NotJson) error.path.push(`.${key}`);
    throw error;
  }
  return `${text}}`;
}
