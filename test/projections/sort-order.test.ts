import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { Json } from '../../src/events/envelope.js';
import { defineProjection } from '../../src/projections/definition.js';
import { openProjections } from '../../src/projections/projections.js';
import { checkQuery, compareText, type FindQuery, runQuery } from '../../src/projections/query.js';
import type { EventStore } from '../../src/store/types.js';
import { kinds, openTestStore, removeTempDirs } from './helpers.js';

const stores: EventStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  removeTempDirs();
});

// Strings on both sides of the surrogate range: UTF-16 order (JavaScript's <) puts the emoji and the
// mathematical script A before U+E000-U+FFFF; code point order (UTF-8 bytes: SQLite, PostgreSQL "C") after.
const TEXT_IN_ORDER = ['', 'a', 'aＡ', 'a😀', 'é', '\uD7FB', '\uE000', 'Ａ', '\uFFFD', '𝒜', '😀', '😀a'];

const values = defineProjection<{ v: Json }>({
  name: 'values',
  version: 1,
  key: (e) => (e.data as { key: string }).key,
  evolve: (_doc, e) => (e.data as { doc: { v: Json } }).doc,
});

describe.each(kinds)('sort order on %s', (kind) => {
  it('text sorts by code point, in orderBy and in the default key order, as query.ts does', async () => {
    // Given one document per string, its key made of the string too, appended in shuffled order.
    const store = await openTestStore(kind);
    stores.push(store);
    const projections = await openProjections(store, [values]);
    const docs: { key: string; doc: { v: Json } }[] = [
      ...TEXT_IN_ORDER.map((v) => ({ key: `k${v}`, doc: { v } })),
      { key: 'n1', doc: { v: 1 } },
      { key: 'n2', doc: { v: -2.5 } },
      { key: 'b1', doc: { v: true } },
      { key: 'o1', doc: { v: { z: 1, a: [2] } } },
      { key: 'o2', doc: { v: [3, 'x'] } },
      { key: 'o0', doc: { v: { a: 9 } } },
      { key: 'm1', doc: { v: null } },
    ];
    const shuffled = [...docs].sort(
      (a, b) => ((a.key.length * 7 + a.key.charCodeAt(0)) % 5) - ((b.key.length * 7 + b.key.charCodeAt(0)) % 5),
    );
    for (const d of shuffled) await store.append(`s-${d.key}`, [{ type: 'Set', data: d }]);
    await projections.catchUp();
    const keys = async (query: FindQuery) => (await projections.find('values', query)).map((d) => d.key);

    // Then every backend answers in the same order, the one written here.
    const texts = TEXT_IN_ORDER.map((v) => `k${v}`);
    const expected = ['m1', 'b1', 'n2', 'n1', ...texts, 'o0', 'o1', 'o2'];
    expect(await keys({ orderBy: 'v', limit: 100 })).toEqual(expected);
    // Descending reverses the values; tied values (objects and arrays) stay in key order.
    expect(await keys({ orderBy: { field: 'v', direction: 'desc' }, limit: 100 })).toEqual([
      'o0',
      'o1',
      'o2',
      ...[...texts].reverse(),
      'n1',
      'n2',
      'b1',
      'm1',
    ]);
    expect(await keys({ limit: 100 })).toEqual(['b1', ...texts, 'm1', 'n1', 'n2', 'o0', 'o1', 'o2']);
    // And the reference agrees.
    const found = docs.map((d) => ({ key: d.key, streamId: `s-${d.key}`, doc: d.doc }));
    expect(runQuery(found, checkQuery({ orderBy: 'v', limit: 100 })).map((d) => d.key)).toEqual(expected);
    // Paging through the default order meets every document once.
    const pages = [await keys({ limit: 7 }), await keys({ limit: 7, offset: 7 }), await keys({ limit: 7, offset: 14 })];
    expect(pages.flat()).toEqual(await keys({ limit: 100 }));
    await projections.close();
  });
});

describe('compareText', () => {
  it('orders strings as their UTF-8 bytes do (code point order)', () => {
    const utf8 = (a: string, b: string) => Math.sign(Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
    // Any code point, and strings over a few characters either side of the surrogates (so that they share prefixes).
    const codePoint = fc.integer({ min: 0, max: 0x10ffff }).filter((c) => c < 0xd800 || c > 0xdfff);
    const text = fc.oneof(
      fc.array(codePoint, { maxLength: 6 }).map((points) => String.fromCodePoint(...points)),
      fc.string({ unit: fc.constantFrom('a', 'é', '\uD7FB', '\uE000', 'Ａ', '𝒜', '😀') }),
    );
    fc.assert(
      fc.property(text, text, (a, b) => Math.sign(compareText(a, b)) === utf8(a, b)),
      { numRuns: 1000 },
    );
    expect([...TEXT_IN_ORDER].reverse().sort(compareText)).toEqual(TEXT_IN_ORDER);
  });
});
