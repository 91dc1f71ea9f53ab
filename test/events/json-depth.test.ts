import { describe, expect, it } from 'vitest';
import { jsonTextNestsDeeperThan, MAX_JSON_DEPTH } from '../../src/events/json-depth.js';

describe('jsonTextNestsDeeperThan', () => {
  it('counts arrays and objects inside one another, not side by side', () => {
    expect(jsonTextNestsDeeperThan('[[1],[2],{"a":1}]', 2)).toBe(false);
    expect(jsonTextNestsDeeperThan('[[1],[2],{"a":{}}]', 2)).toBe(true);
    expect(jsonTextNestsDeeperThan('"text"', 0)).toBe(false);
    expect(jsonTextNestsDeeperThan('[]', 0)).toBe(true);
  });

  it('ignores brackets inside strings, escaped quotes included', () => {
    expect(jsonTextNestsDeeperThan('["[[[[", "\\"[[[[", "\\\\", {"{{{{": "]]]]"}]', 2)).toBe(false);
    expect(jsonTextNestsDeeperThan('["\\\\", [[]]]', 2)).toBe(true);
  });

  it('stops at the first level too many, however deep the text goes', () => {
    const levels = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
    expect(MAX_JSON_DEPTH).toBe(1000);
    expect(jsonTextNestsDeeperThan(levels(1000))).toBe(false);
    for (const n of [1001, 3000, 100_000, 1_000_000]) expect(jsonTextNestsDeeperThan(levels(n)), String(n)).toBe(true);
  });
});
