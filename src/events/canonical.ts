import { ValidationError } from './errors.js';

/**
 * Canonical JSON: object keys sorted by code unit, no whitespace, numbers and
 * strings as ECMAScript serialises them (which is what RFC 8785 asks for).
 * Two values that mean the same JSON give the same bytes, so they hash alike.
 * Anything JSON cannot carry faithfully is refused rather than silently changed.
 */
export function canonicalJson(value: unknown): string {
  return write(value, '$', new Set());
}

/** `ancestors` holds the objects on the path to `value`, so a cycle is named instead of overflowing the stack. */
function write(value: unknown, path: string, ancestors: Set<object>): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw notJson(path, `the number ${value}`);
      return JSON.stringify(value);
    case 'string':
      return JSON.stringify(value);
    case 'object': {
      if (ancestors.has(value)) throw notJson(path, 'a reference back to one of its own containers (a cycle)');
      ancestors.add(value);
      try {
        return writeContainer(value, path, ancestors);
      } finally {
        ancestors.delete(value);
      }
    }
    default:
      throw notJson(path, `a ${typeof value}`);
  }
}

function writeContainer(value: object, path: string, ancestors: Set<object>): string {
  if (Array.isArray(value)) {
    return `[${value.map((item, i) => (item === undefined ? 'null' : write(item, `${path}[${i}]`, ancestors))).join(',')}]`;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    throw notJson(path, `an instance of ${value.constructor?.name ?? 'a class'}`);
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record)
    .filter((k) => record[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${write(record[k], `${path}.${k}`, ancestors)}`).join(',')}}`;
}

function notJson(path: string, what: string): ValidationError {
  return new ValidationError(
    `${path} is ${what}, which JSON cannot represent`,
    [],
    'convert it to plain JSON (strings, finite numbers, booleans, null, arrays, plain objects) first',
  );
}
