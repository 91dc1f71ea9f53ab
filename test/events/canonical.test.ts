import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/events/canonical.js';
import { ValidationError } from '../../src/events/errors.js';

describe('canonicalJson', () => {
  it('sorts keys at every depth and drops undefined members', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: undefined } })).toBe('{"a":{"d":[3,{"y":2,"z":1}]},"b":1}');
  });

  it('writes numbers and strings as ECMAScript does', () => {
    expect(canonicalJson([1e21, 0.1, -0, 1.5e-7, 'é\n"\u2028'])).toBe('[1e+21,0.1,0,1.5e-7,"é\\n\\"\u2028"]');
  });

  it('gives equal output for equal values whatever their key order (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const shuffled = JSON.parse(
          JSON.stringify(value, (_k, v) =>
            v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).reverse()) : v,
          ),
        );
        expect(canonicalJson(shuffled)).toBe(canonicalJson(value));
        expect(JSON.parse(canonicalJson(value))).toEqual(JSON.parse(JSON.stringify(value)));
      }),
    );
  });

  it.each([
    ['NaN', { n: Number.NaN }, '$.n'],
    ['Infinity', [Number.POSITIVE_INFINITY], '$[0]'],
    ['a Date', { at: new Date(0) }, '$.at'],
    ['a Map', { m: new Map() }, '$.m'],
    ['a bigint', { n: 1n }, '$.n'],
    ['a function', { f: () => 1 }, '$.f'],
    [
      'a cycle',
      (() => {
        const o: Record<string, unknown> = { list: [] };
        (o.list as unknown[]).push(o);
        return o;
      })(),
      '$.list[0]',
    ],
    [
      'nesting deeper than 1000 levels',
      (() => {
        let deep: unknown = 'bottom';
        for (let i = 0; i < 1001; i++) deep = [deep];
        return deep;
      })(),
      '$ is nested more than 1000 levels deep',
    ],
  ])('refuses %s and says where it is', (_what, value, path) => {
    const error = (() => {
      try {
        canonicalJson(value);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as Error).message).toContain(path);
  });
});
