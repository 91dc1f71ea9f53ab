import type { Json } from '../../events/envelope.js';

/**
 * What the AI SDK hands around is almost JSON: Dates, Uint8Arrays, URLs and
 * undefined fields are what keep it from being journaled as is. This maps
 * them to their plain JSON spelling (binary as base64, which a model's file
 * parts accept as data) and drops what means nothing in a log (functions,
 * abort signals).
 */
export function toJson(value: unknown, seen = new Set<object>()): Json | undefined {
  if (value === null) return null;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'bigint':
      return value.toString();
    case 'object':
      break;
    default:
      return undefined;
  }
  const object = value as object;
  if (object instanceof Date) return object.toISOString();
  if (object instanceof URL) return object.href;
  if (object instanceof Uint8Array) return Buffer.from(object.buffer, object.byteOffset, object.byteLength).toString('base64');
  if (object instanceof ArrayBuffer) return Buffer.from(object).toString('base64');
  if (typeof AbortSignal !== 'undefined' && object instanceof AbortSignal) return undefined;
  if (object instanceof Error) return { name: object.name, message: object.message };
  if (seen.has(object)) return undefined;
  seen.add(object);
  try {
    if (Array.isArray(object)) return object.map((item) => toJson(item, seen) ?? null);
    const out: { [key: string]: Json } = {};
    for (const [key, item] of Object.entries(object)) {
      const json = toJson(item, seen);
      // Assigning "__proto__" would set the prototype (model output can carry that key), not add it.
      if (json !== undefined) Object.defineProperty(out, key, { value: json, enumerable: true, writable: true, configurable: true });
    }
    return out;
  } finally {
    seen.delete(object);
  }
}
