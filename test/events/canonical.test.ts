import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, canonicalJsonAndCopy } from '../../src/events/canonical.js';
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

  it('copies in the same walk exactly what parsing its text gives back, sharing nothing (property)', () => {
    // JSON values plus what the text changes: undefined members and items, -0, "__proto__" keys, unsorted keys.
    const member = fc.oneof(fc.jsonValue(), fc.constant(undefined), fc.constant(-0));
    const value = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, member, tie('array'), tie('object')),
      array: fc.array(tie('node'), { maxLength: 5 }),
      object: fc.array(fc.tuple(fc.oneof(fc.string(), fc.constant('__proto__')), tie('node')), { maxLength: 5 }).map((entries) => {
        const o: Record<string, unknown> = {};
        for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
        return o;
      }),
    })).node;
    fc.assert(
      fc.property(value, (v) => {
        fc.pre(v !== undefined);
        const { text, copy } = canonicalJsonAndCopy(v);
        expect(text).toBe(canonicalJson(v));
        const parsed = JSON.parse(text);
        // Same values, same key order, no -0 (toEqual alone would let both pass).
        expect(JSON.stringify(copy)).toBe(JSON.stringify(parsed));
        expect(copy).toStrictEqual(parsed);
        const shared = (a: unknown, b: unknown): boolean =>
          a !== null && typeof a === 'object' && (a === b || Object.keys(a).some((k) => shared((a as never)[k], (b as never)?.[k])));
        expect(shared(copy, v)).toBe(false);
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

  const nested = (levels: number): unknown => {
    let deep: unknown = 'bottom';
    for (let i = 0; i < levels; i++) deep = i % 2 === 0 ? [deep] : { d: deep };
    return deep;
  };
  const refusal = (run: () => unknown): Error => {
    try {
      run();
    } catch (e) {
      return e as Error;
    }
    throw new Error('not refused');
  };

  it.each([1001, 3000, 4000, 10_000, 100_000])('refuses %i levels with the same ValidationError, whatever the depth', (levels) => {
    const value = nested(levels);
    for (const encode of [canonicalJson, canonicalJsonAndCopy]) {
      const error = refusal(() => encode(value));
      expect(error).toBeInstanceOf(ValidationError);
      expect(error.message).toBe(
        '$ is nested more than 1000 levels deep, which JSON cannot represent (convert it to plain JSON (strings, finite numbers, booleans, null, arrays, plain objects) first)',
      );
    }
  });

  it('accepts exactly 1000 levels', () => {
    expect(canonicalJson(nested(1000))).toBe(JSON.stringify(nested(1000)));
  });

  it('names a cycle deep inside a value by the path the walk took to it, in key order', () => {
    const loop: Record<string, unknown> = { z: 1 };
    loop.b = { back: loop };
    loop.a = 'first';
    let value: unknown = loop;
    for (let i = 0; i < 600; i++) value = [value];
    const error = refusal(() => canonicalJson(value));
    expect(error.message).toBe(
      `$${'[0]'.repeat(600)}.b.back is a reference back to one of its own containers (a cycle), which JSON cannot represent (convert it to plain JSON (strings, finite numbers, booleans, null, arrays, plain objects) first)`,
    );
  });
});
