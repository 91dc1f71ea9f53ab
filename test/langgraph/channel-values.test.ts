import { MemorySaver } from '@langchain/langgraph';
import { emptyCheckpoint } from '@langchain/langgraph-checkpoint';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open.js';
import { copyPlain, sameJson } from '../../src/surfaces/langgraph/channel-values.js';
import { RewindCheckpointSaver } from '../../src/surfaces/langgraph/index.js';

const json = (value: unknown) => JSON.parse(JSON.stringify(value));

describe('plain JSON, the fast path past the serde', () => {
  it('copies any JSON value as a JSON round trip would, "__proto__" keys included', () => {
    expect(Object.getPrototypeOf(copyPlain(JSON.parse('{"__proto__":{"a":1}}')))).toBe(Object.prototype);
    expect(JSON.stringify(copyPlain(JSON.parse('{"__proto__":{"a":1}}')))).toBe('{"__proto__":{"a":1}}');
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(JSON.stringify(copyPlain(value))).toBe(JSON.stringify(value));
        expect(sameJson(value, json(value))).toBe(true);
      }),
    );
  });

  it.each([
    ['undefined', { a: undefined }],
    ['NaN', [Number.NaN]],
    ['a Date', { at: new Date(0) }],
    ['a Map', new Map()],
    ['a class instance', new (class Message {})()],
    ['a function', { f: () => 1 }],
    ['a hole', new Array(3)],
    [
      'a cycle',
      (() => {
        const o: Record<string, unknown> = {};
        o.self = o;
        return o;
      })(),
    ],
  ])('leaves %s to the serde', (_what, value) => {
    expect(copyPlain(value)).toBeUndefined();
  });

  it('tells values apart whatever their key order', () => {
    expect(sameJson({ a: 1, b: [1, { c: 'x' }] }, { b: [1, { c: 'x' }], a: 1 })).toBe(true);
    expect(sameJson({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(sameJson({ a: 1, b: 2 }, { a: 1 })).toBe(false);
    expect(sameJson({ a: undefined }, {})).toBe(false);
    expect(sameJson([1, 2], [1, 2, 3])).toBe(false);
    expect(sameJson({ 0: 'x' }, ['x'])).toBe(false);
    expect(sameJson(new Date(0), {})).toBe(false);
  });
});

/**
 * JSON values without "__proto__" keys: LangGraph's own serde drops such a key
 * when it revives a value (it assigns the keys), so MemorySaver cannot be the
 * oracle for them; the first test above holds copyPlain to JSON for them.
 */
const jsonValue = () => fc.jsonValue().filter((v) => !JSON.stringify(v).includes('"__proto__"'));

/** One step of a list channel: grow it, edit an item in place, replace it, or put a serde-only value in it. */
const step = fc.oneof(
  fc.record({ op: fc.constant('append' as const), items: fc.array(jsonValue(), { minLength: 1, maxLength: 3 }) }),
  fc.record({ op: fc.constant('edit' as const), at: fc.nat(), value: jsonValue() }),
  fc.record({ op: fc.constant('replace' as const), items: fc.array(jsonValue(), { maxLength: 3 }) }),
  fc.record({ op: fc.constant('date' as const), at: fc.integer({ min: 0, max: 2 ** 40 }) }),
);

describe('a growing channel stored as tails reads back as it was put', () => {
  it('matches MemorySaver checkpoint by checkpoint, also from a saver that rebuilds the thread (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), async (steps) => {
        const store = await openStore('memory:');
        const ours = new RewindCheckpointSaver(store);
        const theirs = new MemorySaver();
        let list: unknown[] = [];
        const ids: string[] = [];
        for (const [i, s] of steps.entries()) {
          // The way a reducer makes the next value: a new array sharing the old items, except when edited in place.
          if (s.op === 'append') list = list.concat(s.items);
          else if (s.op === 'edit' && list.length > 0) list[s.at % list.length] = s.value;
          else if (s.op === 'replace') list = s.items;
          else if (s.op === 'date') list = list.concat([new Date(s.at)]);
          const id = `cp-${String(i).padStart(4, '0')}`;
          const checkpoint = { ...emptyCheckpoint(), id, channel_values: { list }, channel_versions: { list: i + 1 } };
          const parent = ids.at(-1);
          for (const saver of [ours, theirs]) {
            await saver.put(
              { configurable: { thread_id: 't', checkpoint_ns: '', checkpoint_id: parent } },
              checkpoint,
              { source: 'loop', step: i, parents: {} },
              { list: i + 1 },
            );
          }
          ids.push(id);
        }
        const fresh = new RewindCheckpointSaver(store);
        for (const id of ids) {
          const config = { configurable: { thread_id: 't', checkpoint_ns: '', checkpoint_id: id } };
          const expected = json((await theirs.getTuple(config))?.checkpoint.channel_values);
          expect(json((await ours.getTuple(config))?.checkpoint.channel_values)).toEqual(expected);
          expect(json((await fresh.getTuple(config))?.checkpoint.channel_values)).toEqual(expected);
        }
        await store.close();
      }),
      { numRuns: 60 },
    );
  });
});
