import { describe, expect, it } from 'vitest';
import { toJson } from '../../src/surfaces/ai-sdk/json.js';

describe('toJson, what the AI SDK hands around made journal-safe', () => {
  it('keeps a "__proto__" key (model output can carry one) as a key, not a prototype', () => {
    const out = toJson(JSON.parse('{"__proto__":{"polluted":true},"a":1}')) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(JSON.stringify(out)).toBe('{"__proto__":{"polluted":true},"a":1}');
  });

  it('spells dates, binary and errors as JSON and drops what means nothing in a log', () => {
    expect(
      toJson({ at: new Date(0), bytes: new Uint8Array([1, 2]), error: new TypeError('bad'), f: () => 1, n: Number.NaN, u: undefined }),
    ).toEqual({ at: '1970-01-01T00:00:00.000Z', bytes: 'AQI=', error: { name: 'TypeError', message: 'bad' }, n: null });
  });
});
