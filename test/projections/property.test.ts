import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { NewEvent } from '../../src/events/envelope.js';
import { openProjections } from '../../src/projections/projections.js';
import { expectedItems, itemsProjection, kinds, openTestStore, removeTempDirs } from './helpers.js';

afterEach(removeTempDirs);

type Command =
  | { kind: 'append'; stream: number; events: NewEvent[] }
  | { kind: 'rollback'; stream: number; fraction: number }
  | { kind: 'catchUp' };

const item = fc.constantFrom('x', 'y', 'z');
const event: fc.Arbitrary<NewEvent> = fc.oneof(
  fc.record({ type: fc.constant('Added'), data: fc.record({ item, n: fc.integer({ min: -5, max: 5 }) }) }),
  fc.record({ type: fc.constant('Removed'), data: fc.record({ item }) }),
  fc.record({ type: fc.constant('Noted'), data: fc.record({ item, text: fc.string({ maxLength: 4 }) }) }),
  fc.record({ type: fc.constant('Ignored'), data: fc.record({ item }) }),
);
const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      stream: fc.nat(2),
      events: fc.array(event, { minLength: 1, maxLength: 3 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('rollback' as const),
      stream: fc.nat(2),
      fraction: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('catchUp' as const) }) },
);

describe.each(kinds)('live and rebuilt read models agree (%s)', (kind) => {
  it('inline, asynchronous, rebuilt and computed-from-scratch models are identical, rollbacks included', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { maxLength: 30 }), fc.integer({ min: 1, max: 7 }), async (commands, batchSize) => {
        const store = await openTestStore(kind);
        try {
          const defs = [itemsProjection('inline-items', 'inline'), itemsProjection('async-items', 'async')];
          const projections = await openProjections(store, defs, { batchSize });
          for (const c of commands) {
            const streamId = `s-${'stream' in c ? c.stream : 0}`;
            if (c.kind === 'append') await store.append(streamId, c.events);
            else if (c.kind === 'rollback') {
              const version = await store.streamVersion(streamId);
              if (version === 0) continue;
              await store.append(streamId, [{ type: 'RolledBack', data: { targetVersion: Math.floor(c.fraction * version) } }]);
            } else await projections.catchUp(['async-items']);
          }
          await projections.catchUp(['async-items']);
          await projections.catchUp();
          const expected = expectedItems(await store.readAll({ limit: 100_000 }));
          const all = { limit: 10_000 };
          expect(await projections.find('inline-items', all)).toEqual(expected);
          expect(await projections.find('async-items', all)).toEqual(expected);
          await projections.rebuild('inline-items');
          await projections.rebuild('async-items');
          expect(await projections.find('inline-items', all)).toEqual(expected);
          expect(await projections.find('async-items', all)).toEqual(expected);
          await projections.close();
        } finally {
          await store.close();
        }
      }),
      { numRuns: kind === 'memory' ? 150 : kind === 'sqlite' ? 60 : 25 },
    );
  });
});
