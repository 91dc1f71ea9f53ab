// rewind-runtime/testing/conformance: the suite every EventStore backend passes, written for vitest (which
// it imports). Its own entry, so that rewind-runtime/testing loads no test runner.
import { afterEach, describe, expect, it } from 'vitest';
import type { EventEnvelope, NewEvent } from '../events/envelope.js';
import { ConcurrencyError, EventIdConflictError, StoreClosedError, ValidationError } from '../events/errors.js';
import { verifyChain } from '../events/hash.js';
import { checkProof } from '../events/proof.js';
import { generateKeyPair } from '../events/signing.js';
import type { EventStore } from '../store/types.js';

export interface ConformanceOptions {
  /** Skip tests that need more than one connection or process to be meaningful. */
  singleConnection?: boolean;
}

const ev = (type: string, data: unknown = {}, extra: Partial<NewEvent> = {}): NewEvent => ({ type, data, ...extra });

/**
 * The behaviour every EventStore backend must share. Call it from a test file
 * with a factory that returns a fresh, empty store each time:
 *
 *   describeEventStoreConformance('my backend', () => openStore('mydb://…'));
 */
export function describeEventStoreConformance(name: string, open: () => Promise<EventStore>, _options: ConformanceOptions = {}): void {
  describe(`EventStore conformance: ${name}`, () => {
    const opened: EventStore[] = [];
    const fresh = async () => {
      const store = await open();
      opened.push(store);
      return store;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((s) => s.close()));
    });

    describe('append', () => {
      it('numbers events 1, 2, 3… within a stream and gives them increasing positions', async () => {
        const store = await fresh();
        const first = await store.append('order-1', [ev('Placed', { total: 10 }), ev('Paid', { amount: 10 })]);
        expect(first.streamId).toBe('order-1');
        expect(first.version).toBe(2);
        expect(first.events.map((e) => e.version)).toEqual([1, 2]);
        const second = await store.append('order-1', [ev('Shipped')]);
        expect(second.version).toBe(3);
        expect(second.position).toBeGreaterThan(first.position);
        const other = await store.append('order-2', [ev('Placed')]);
        expect(other.events[0]?.version).toBe(1);
        expect(other.position).toBeGreaterThan(second.position);
      });

      it('stores the envelope faithfully: ids, data, metadata, schema version, time and hash', async () => {
        const store = await fresh();
        const data = { text: 'héllo ✓ 𝄞', n: 1.5, big: 9007199254740991, neg: -0.25, list: [1, 'two', null, { deep: true }], empty: {} };
        const result = await store.append('s', [
          ev('Noted', data, {
            id: 'evt-1',
            metadata: {
              correlationId: 'c1',
              causationId: 'c0',
              actor: 'agent:planner',
              traceId: 't',
              idempotencyKey: 'k',
              custom: { a: 1 },
            },
            recordedAt: '2026-01-02T03:04:05.678Z',
            schemaVersion: 3,
          }),
        ]);
        const [stored] = await store.read('s');
        expect(stored).toEqual(result.events[0]);
        expect(stored).toMatchObject({
          id: 'evt-1',
          streamId: 's',
          version: 1,
          type: 'Noted',
          schemaVersion: 3,
          data,
          metadata: { correlationId: 'c1', causationId: 'c0', actor: 'agent:planner', traceId: 't', idempotencyKey: 'k', custom: { a: 1 } },
          recordedAt: '2026-01-02T03:04:05.678Z',
        });
        expect(stored?.hash).toMatch(/^[0-9a-f]{64}$/);
      });

      it('generates ids and a recordedAt when the caller gives none', async () => {
        const store = await fresh();
        const { events } = await store.append('s', [ev('A'), ev('B')]);
        expect(events[0]?.id).toMatch(/^[0-9a-f-]{36}$/);
        expect(events[0]?.id).not.toBe(events[1]?.id);
        expect(Date.parse(events[0]?.recordedAt ?? '')).not.toBeNaN();
        expect(events[0]?.metadata).toEqual({});
      });

      it('hands out copies: mutating what was appended or read changes nothing stored', async () => {
        const store = await fresh();
        const data = { list: [1] };
        const { events } = await store.append('s', [ev('A', data)]);
        data.list.push(2);
        (events[0]!.data as { list: number[] }).list.push(3);
        const [read] = await store.read('s');
        (read!.data as { list: number[] }).list.push(4);
        expect((await store.read('s'))[0]?.data).toEqual({ list: [1] });
      });
    });

    describe('expected version', () => {
      it('accepts the exact current version and refuses any other with the actual version', async () => {
        const store = await fresh();
        await store.append('s', [ev('A'), ev('B')], { expectedVersion: 0 });
        await store.append('s', [ev('C')], { expectedVersion: 2 });
        const error = await store.append('s', [ev('D')], { expectedVersion: 2 }).catch((e) => e);
        expect(error).toBeInstanceOf(ConcurrencyError);
        expect(error).toMatchObject({ code: 'CONCURRENCY', streamId: 's', expected: 2, actual: 3 });
        expect(await store.streamVersion('s')).toBe(3);
      });

      it("'no_stream' refuses an existing stream, 'exists' refuses a missing one", async () => {
        const store = await fresh();
        await store.append('s', [ev('A')], { expectedVersion: 'no_stream' });
        await expect(store.append('s', [ev('B')], { expectedVersion: 'no_stream' })).rejects.toMatchObject({
          name: 'ConcurrencyError',
          expected: 'no_stream',
          actual: 1,
        });
        await expect(store.append('missing', [ev('B')], { expectedVersion: 'exists' })).rejects.toMatchObject({
          name: 'ConcurrencyError',
          expected: 'exists',
          actual: 0,
        });
        await store.append('s', [ev('B')], { expectedVersion: 'exists' });
        await store.append('s', [ev('C')], { expectedVersion: 'any' });
        expect(await store.streamVersion('s')).toBe(3);
        expect(await store.streamVersion('missing')).toBe(0);
      });

      it('lets exactly one of several concurrent writers with the same expectation win', async () => {
        const store = await fresh();
        await store.append('s', [ev('A')]);
        const outcomes = await Promise.allSettled(
          Array.from({ length: 8 }, (_, i) => store.append('s', [ev('B', { writer: i })], { expectedVersion: 1 })),
        );
        const won = outcomes.filter((o) => o.status === 'fulfilled');
        const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
        expect(won).toHaveLength(1);
        for (const o of lost) expect(o.reason).toMatchObject({ name: 'ConcurrencyError', actual: 2 });
        expect(await store.streamVersion('s')).toBe(2);
      });
    });

    describe('idempotency by event id', () => {
      it('returns the original result for a repeated append and writes nothing', async () => {
        const store = await fresh();
        const events = [ev('A', { n: 1 }, { id: 'a-1' }), ev('B', { n: 2 }, { id: 'a-2' })];
        const first = await store.append('s', events, { expectedVersion: 'no_stream' });
        const later = await store.append('s', [ev('C')]);
        // A retry after a lost acknowledgement: the stream has moved on, the retry still succeeds.
        const again = await store.append('s', events, { expectedVersion: 'no_stream' });
        expect(again).toEqual(first);
        expect(await store.streamVersion('s')).toBe(3);
        expect(await store.headPosition()).toBe(later.position);
        expect((await store.readAll()).length).toBe(3);
      });

      it('refuses a stored id with different content, in another stream, or mixed with new ids', async () => {
        const store = await fresh();
        await store.append('s', [ev('A', { n: 1 }, { id: 'x-1' }), ev('A', { n: 2 }, { id: 'x-2' })]);
        await expect(store.append('s', [ev('A', { n: 99 }, { id: 'x-1' })])).rejects.toBeInstanceOf(EventIdConflictError);
        await expect(store.append('other', [ev('A', { n: 1 }, { id: 'x-1' })])).rejects.toBeInstanceOf(EventIdConflictError);
        await expect(store.append('s', [ev('A', { n: 1 }, { id: 'x-1' }), ev('A', { n: 3 }, { id: 'x-3' })])).rejects.toBeInstanceOf(
          EventIdConflictError,
        );
        expect(await store.streamVersion('s')).toBe(2);
        expect(await store.streamVersion('other')).toBe(0);
      });
    });

    describe('appendMany', () => {
      it('writes several streams in one commit, each with its own expectation', async () => {
        const store = await fresh();
        await store.append('a', [ev('A')]);
        const results = await store.appendMany([
          { streamId: 'a', events: [ev('A2')], expectedVersion: 1 },
          { streamId: 'b', events: [ev('B1'), ev('B2')], expectedVersion: 'no_stream' },
        ]);
        expect(results.map((r) => [r.streamId, r.version])).toEqual([
          ['a', 2],
          ['b', 2],
        ]);
      });

      it('writes nothing at all when one stream’s expectation fails', async () => {
        const store = await fresh();
        await store.append('a', [ev('A')]);
        const head = await store.headPosition();
        const error = await store
          .appendMany([
            { streamId: 'new', events: [ev('N')], expectedVersion: 'no_stream' },
            { streamId: 'a', events: [ev('A2')], expectedVersion: 5 },
          ])
          .catch((e) => e);
        expect(error).toMatchObject({ name: 'ConcurrencyError', streamId: 'a', expected: 5, actual: 1 });
        expect(await store.streamVersion('new')).toBe(0);
        expect(await store.headPosition()).toBe(head);
        // The failed attempt left no trace that could break a later append.
        await store.append('new', [ev('N')], { expectedVersion: 'no_stream' });
      });
    });

    describe('bad input', () => {
      const cases: [string, (s: EventStore) => Promise<unknown>][] = [
        ['no events', (s) => s.append('s', [])],
        ['an empty stream id', (s) => s.append('', [ev('A')])],
        ['an over-long stream id', (s) => s.append('s'.repeat(201), [ev('A')])],
        ['a control character in a stream id', (s) => s.append('run\u0000-1', [ev('A')])],
        ['a newline in an event type', (s) => s.append('s', [ev('Paid\nForged')])],
        [
          'a cycle in data',
          (s) => {
            const data: Record<string, unknown> = { a: 1 };
            data.self = data;
            return s.append('s', [ev('A', data)]);
          },
        ],
        ['a function in data', (s) => s.append('s', [ev('A', { f: () => 1 })])],
        ['undefined data', (s) => s.append('s', [{ type: 'A', data: undefined }])],
        ['an event over the size limit', (s) => s.append('s', [ev('A', { blob: 'x'.repeat(1024 * 1024) })])],
        ['a missing type', (s) => s.append('s', [{ data: {} } as unknown as NewEvent])],
        ['missing data', (s) => s.append('s', [{ type: 'A' } as NewEvent])],
        ['a NaN in data', (s) => s.append('s', [ev('A', { n: Number.NaN })])],
        ['a Date in data', (s) => s.append('s', [ev('A', { at: new Date() })])],
        ['a bigint in data', (s) => s.append('s', [ev('A', { n: 1n })])],
        ['a bad expected version', (s) => s.append('s', [ev('A')], { expectedVersion: -1 })],
        ['a string expected version', (s) => s.append('s', [ev('A')], { expectedVersion: 'latest' as never })],
        ['a bad schema version', (s) => s.append('s', [ev('A', {}, { schemaVersion: 0 })])],
        ['a malformed recordedAt', (s) => s.append('s', [ev('A', {}, { recordedAt: 'yesterday' })])],
        ['a duplicate id in one append', (s) => s.append('s', [ev('A', {}, { id: 'd' }), ev('B', {}, { id: 'd' })])],
        [
          'one stream twice in appendMany',
          (s) =>
            s.appendMany([
              { streamId: 'x', events: [ev('A')] },
              { streamId: 'x', events: [ev('B')] },
            ]),
        ],
        [
          'a good and a bad event together',
          (s) =>
            s.appendMany([
              { streamId: 'ok', events: [ev('A')] },
              { streamId: 'bad', events: [ev('')] },
            ]),
        ],
      ];
      for (const [what, call] of cases) {
        it(`refuses ${what} with a ValidationError and writes nothing`, async () => {
          const store = await fresh();
          const error = await call(store).catch((e) => e);
          expect(error).toBeInstanceOf(ValidationError);
          expect((error as ValidationError).message.length).toBeGreaterThan(10);
          expect(await store.headPosition()).toBe(0);
          expect(await store.listStreams()).toEqual([]);
        });
      }

      it('refuses nonsense read options', async () => {
        const store = await fresh();
        await expect(store.read('s', { limit: 0 })).rejects.toBeInstanceOf(ValidationError);
        await expect(store.read('s', { direction: 'sideways' as never })).rejects.toBeInstanceOf(ValidationError);
        await expect(store.readAll({ from: -1 })).rejects.toBeInstanceOf(ValidationError);
        await expect(store.readAll({ filter: { types: 'A' as never } })).rejects.toBeInstanceOf(ValidationError);
      });
    });

    describe('reading', () => {
      const seed = async (store: EventStore) => {
        for (let i = 1; i <= 5; i++) await store.append('s', [ev('E', { i })]);
      };

      it('reads a stream forward and backward, between versions, with a limit', async () => {
        const store = await fresh();
        await seed(store);
        const versions = (events: EventEnvelope[]) => events.map((e) => e.version);
        expect(versions(await store.read('s'))).toEqual([1, 2, 3, 4, 5]);
        expect(versions(await store.read('s', { from: 2, to: 4 }))).toEqual([2, 3, 4]);
        expect(versions(await store.read('s', { from: 3, limit: 2 }))).toEqual([3, 4]);
        expect(versions(await store.read('s', { direction: 'backward' }))).toEqual([5, 4, 3, 2, 1]);
        expect(versions(await store.read('s', { direction: 'backward', limit: 2 }))).toEqual([5, 4]);
        expect(versions(await store.read('s', { direction: 'backward', from: 4, to: 2 }))).toEqual([4, 3, 2]);
        expect(await store.read('missing')).toEqual([]);
        expect(await store.read('s', { from: 9 })).toEqual([]);
      });

      it('reads the whole log in position order, from a position, filtered', async () => {
        const store = await fresh();
        await store.append('run-1', [ev('Started'), ev('Step')]);
        await store.append('agent-1', [ev('Started')]);
        await store.append('run-2', [ev('Started'), ev('Done')]);
        const all = await store.readAll();
        expect(all.map((e) => `${e.streamId}:${e.type}`)).toEqual([
          'run-1:Started',
          'run-1:Step',
          'agent-1:Started',
          'run-2:Started',
          'run-2:Done',
        ]);
        for (let i = 1; i < all.length; i++) expect(all[i]!.position).toBeGreaterThan(all[i - 1]!.position);
        expect((await store.readAll({ from: all[2]!.position })).length).toBe(3);
        expect((await store.readAll({ limit: 2 })).length).toBe(2);
        expect((await store.readAll({ filter: { streamPrefix: 'run-' } })).map((e) => e.streamId)).toEqual([
          'run-1',
          'run-1',
          'run-2',
          'run-2',
        ]);
        expect((await store.readAll({ filter: { types: ['Started'] } })).length).toBe(3);
        expect((await store.readAll({ filter: { streamPrefix: 'run-', types: ['Done', 'Step'] } })).map((e) => e.type)).toEqual([
          'Step',
          'Done',
        ]);
        expect(await store.headPosition()).toBe(all[4]!.position);
      });

      it('treats a stream prefix literally, wildcards included', async () => {
        const store = await fresh();
        await store.append('a%b', [ev('A')]);
        await store.append('a_b', [ev('A')]);
        await store.append('axb', [ev('A')]);
        expect((await store.readAll({ filter: { streamPrefix: 'a%' } })).map((e) => e.streamId)).toEqual(['a%b']);
        expect((await store.readAll({ filter: { streamPrefix: 'a_' } })).map((e) => e.streamId)).toEqual(['a_b']);
        expect((await store.listStreams({ prefix: 'a_' })).map((s) => s.streamId)).toEqual(['a_b']);
      });

      it('lists streams with their version and head, by prefix and in pages', async () => {
        const store = await fresh();
        await store.append('b', [ev('A'), ev('B')]);
        await store.append('a', [ev('A')]);
        const c = await store.append('c', [ev('A')]);
        const list = await store.listStreams();
        expect(list.map((s) => [s.streamId, s.version])).toEqual([
          ['a', 1],
          ['b', 2],
          ['c', 1],
        ]);
        expect(list[2]).toMatchObject({ head: c.events[0]?.hash, position: c.position });
        expect((await store.listStreams({ after: 'a', limit: 1 })).map((s) => s.streamId)).toEqual(['b']);
        expect((await store.listStreams({ prefix: 'c' })).map((s) => s.streamId)).toEqual(['c']);
      });
    });

    describe('hash chain', () => {
      it('links every event to its predecessor in the stream and verifies', async () => {
        const store = await fresh();
        await store.append('s', [ev('A', { n: 1 }), ev('B', { n: 2 })]);
        await store.append('t', [ev('A')]);
        await store.append('s', [ev('C', { n: 3 })]);
        const events = await store.read('s');
        expect(verifyChain('s', events).ok).toBe(true);
        const edited = events.map((e, i) => (i === 1 ? { ...e, data: { n: 20 } } : e));
        expect(verifyChain('s', edited).firstBreak).toMatchObject({ streamId: 's', version: 2 });
        const report = await store.verify();
        expect(report).toMatchObject({ ok: true, streams: 2, events: 4, problems: [], problemCount: 0 });
        expect(await store.verify({ streamId: 't' })).toMatchObject({ ok: true, streams: 1, events: 1 });
      });
    });

    describe('audit trail', () => {
      it('seals, digests and proves an untouched log, and verifies it against all three', async () => {
        const store = await fresh();
        const keys = generateKeyPair();
        await store.append('order-1', [ev('Placed', { total: 10 }), ev('Paid', { amount: 10 })]);
        await store.append('order-2', [ev('Placed', { total: 5 })]);
        const seal = await store.seal({ signingKey: keys.privateKey });
        expect(seal?.digest.treeHead).toMatchObject({ kind: 'seal', size: 3, since: 0, keyId: keys.keyId });
        expect(seal?.digest.heads.map(([id, version]) => [id, version])).toEqual([
          ['order-1', 2],
          ['order-2', 1],
        ]);
        // Nothing but the seal itself is new: nothing to seal.
        expect(await store.seal({ signingKey: keys.privateKey })).toBeUndefined();
        const { events } = await store.append('order-1', [ev('Shipped')]);
        const second = await store.seal({ signingKey: keys.privateKey });
        // The second seal goes on from the first: the seal event and the new one, and only the streams they changed.
        expect(second?.digest.treeHead).toMatchObject({ size: 5, since: seal?.digest.treeHead.position });
        expect(second?.digest.heads.map(([id]) => id)).toEqual(['$rewind-seals', 'order-1']);

        const digest = await store.digest({ signingKey: keys.privateKey });
        expect(digest.treeHead).toMatchObject({ kind: 'digest', size: 6, position: await store.headPosition() });
        const report = await store.verify({ digest, publicKeys: [keys.publicKey] });
        expect(report).toMatchObject({ ok: true, events: 6, streams: 3, problems: [], problemCount: 0 });
        expect(report.seals).toMatchObject({ found: 2, verified: 2, unverified: 0 });
        expect(report.digest).toMatchObject({ size: 6, signature: 'valid' });
        expect((await store.verify({ streamId: 'order-1', publicKeys: [keys.publicKey] })).ok).toBe(true);

        const proof = await store.prove(events[0]!.id);
        expect(proof.treeHead).toEqual(second?.digest.treeHead);
        expect(checkProof(proof, keys.publicKey)).toMatchObject({
          ok: true,
          event: { id: events[0]!.id, streamId: 'order-1', version: 3 },
        });
        expect(checkProof(proof, generateKeyPair().publicKey)).toMatchObject({ ok: false });
        expect(checkProof({ ...proof, event: { ...proof.event, data: { forged: true } } }, keys.publicKey)).toMatchObject({ ok: false });
      });

      it("keeps '$' streams (the seals) to Rewind: applications cannot append there, whole-log reads leave them out", async () => {
        const store = await fresh();
        await store.append('s', [ev('A')]);
        await store.seal({ signingKey: generateKeyPair().privateKey });
        await expect(store.append('$mine', [ev('A')])).rejects.toBeInstanceOf(ValidationError);
        await store.append('t', [ev('B')]);
        expect((await store.readAll()).map((e) => e.streamId)).toEqual(['s', 't']);
        expect((await store.readAll({ filter: { streamPrefix: '$' } })).map((e) => e.type)).toEqual(['LogSealed']);
        expect((await store.read('$rewind-seals')).length).toBe(1);
        const controller = new AbortController();
        const seen: string[] = [];
        for await (const event of store.subscribe({ signal: controller.signal })) {
          seen.push(event.streamId);
          if (seen.length === 2) controller.abort();
        }
        expect(seen).toEqual(['s', 't']);
      });
    });

    describe('upcasting', () => {
      it('brings old events to the current schema on read; the stored form is what the chain covers', async () => {
        const store = await fresh();
        await store.append('s', [ev('Greeted', { name: 'Ada Lovelace' })]);
        store.registry.upcast('Greeted', 1, (data: { name: string }) => {
          const [first, last] = data.name.split(' ');
          return { first, last };
        });
        const [event] = await store.read('s');
        expect(event).toMatchObject({ schemaVersion: 2, data: { first: 'Ada', last: 'Lovelace' } });
        expect((await store.readAll())[0]?.data).toEqual({ first: 'Ada', last: 'Lovelace' });
        expect((await store.verify()).ok).toBe(true);
        const fresh2 = await store.append('s', [ev('Greeted', { first: 'Alan', last: 'Turing' })]);
        expect(fresh2.events[0]?.schemaVersion).toBe(2);
      });
    });

    describe('subscribe', () => {
      it('catches up, then delivers live appends in order with no gap and no repeat', async () => {
        const store = await fresh();
        await store.append('s', [ev('A', { i: 0 }), ev('A', { i: 1 })]);
        const controller = new AbortController();
        const seen: number[] = [];
        const done = (async () => {
          for await (const event of store.subscribe({ signal: controller.signal, batchSize: 3 })) {
            seen.push((event.data as { i: number }).i);
            if (seen.length === 20) controller.abort();
          }
        })();
        for (let i = 2; i < 20; i++) {
          await store.append(i % 2 ? 's' : 't', [ev('A', { i })]);
          if (i % 5 === 0) await new Promise((r) => setTimeout(r, 5));
        }
        await done;
        expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i));
      });

      it('starts from a position and honours a filter', async () => {
        const store = await fresh();
        const first = await store.append('run-1', [ev('A'), ev('B')]);
        await store.append('other', [ev('A')]);
        await store.append('run-2', [ev('B')]);
        const controller = new AbortController();
        const seen: string[] = [];
        for await (const event of store.subscribe({
          from: first.events[1]!.position,
          filter: { streamPrefix: 'run-', types: ['B'] },
          signal: controller.signal,
        })) {
          seen.push(event.streamId);
          if (seen.length === 2) controller.abort();
        }
        expect(seen).toEqual(['run-1', 'run-2']);
      });

      it('resumes a named consumer after its stored checkpoint', async () => {
        const store = await fresh();
        const { events } = await store.append('s', [ev('A', { i: 1 }), ev('A', { i: 2 }), ev('A', { i: 3 })]);
        expect(await store.checkpointOf('mailer')).toBeUndefined();
        await store.checkpoint('mailer', events[1]!.position);
        expect(await store.checkpointOf('mailer')).toBe(events[1]!.position);
        const controller = new AbortController();
        const seen: unknown[] = [];
        for await (const event of store.subscribe({ consumer: 'mailer', signal: controller.signal })) {
          seen.push(event.data);
          controller.abort();
        }
        expect(seen).toEqual([{ i: 3 }]);
      });

      it('ends when the store closes', async () => {
        const store = await open();
        const iteration = (async () => {
          for await (const _ of store.subscribe()) {
            /* nothing arrives */
          }
          return 'ended';
        })();
        await new Promise((r) => setTimeout(r, 20));
        await store.close();
        expect(await iteration).toBe('ended');
        await expect(store.append('s', [ev('A')])).rejects.toBeInstanceOf(StoreClosedError);
      });
    });

    describe('snapshots', () => {
      it('returns the newest snapshot of the same reducer version only', async () => {
        const store = await fresh();
        await store.append('s', [ev('A'), ev('B'), ev('C')]);
        await store.saveSnapshot('s', 1, { count: 1 }, 'v1');
        await store.saveSnapshot('s', 3, { count: 3 }, 'v1');
        await store.saveSnapshot('s', 2, { other: true }, 'v2');
        expect(await store.loadSnapshot('s', 'v1')).toMatchObject({ streamId: 's', version: 3, state: { count: 3 }, reducerVersion: 'v1' });
        expect(await store.loadSnapshot('s', 'v1', { atOrBefore: 2 })).toMatchObject({ version: 1, state: { count: 1 } });
        expect(await store.loadSnapshot('s', 'v2')).toMatchObject({ version: 2, state: { other: true } });
        expect(await store.loadSnapshot('s', 'v3')).toBeUndefined();
        expect(await store.loadSnapshot('missing', 'v1')).toBeUndefined();
      });

      it('replaces older snapshots of the same stream and reducer version when asked, and only those', async () => {
        const store = await fresh();
        await store.append('s', [ev('A'), ev('B'), ev('C')]);
        await store.append('t', [ev('A')]);
        await store.saveSnapshot('s', 1, { at: 1 }, 'v1');
        await store.saveSnapshot('s', 1, { other: 1 }, 'v2');
        await store.saveSnapshot('t', 1, { at: 1 }, 'v1');
        await store.saveSnapshot('s', 2, { at: 2 }, 'v1', { replaceOlder: true });
        expect(await store.loadSnapshot('s', 'v1', { atOrBefore: 1 })).toBeUndefined();
        expect(await store.loadSnapshot('s', 'v1')).toMatchObject({ version: 2, state: { at: 2 } });
        expect(await store.loadSnapshot('s', 'v2')).toMatchObject({ version: 1 });
        expect(await store.loadSnapshot('t', 'v1')).toMatchObject({ version: 1 });
        await store.saveSnapshot('s', 3, { at: 3 }, 'v1');
        expect(await store.loadSnapshot('s', 'v1', { atOrBefore: 2 })).toMatchObject({ version: 2 });
      });

      it('refuses a snapshot past the end of the stream or without a reducer version', async () => {
        const store = await fresh();
        await store.append('s', [ev('A')]);
        await expect(store.saveSnapshot('s', 2, {}, 'v1')).rejects.toBeInstanceOf(ValidationError);
        await expect(store.saveSnapshot('s', 1, {}, '')).rejects.toBeInstanceOf(ValidationError);
        expect(await store.loadSnapshot('s', 'v1')).toBeUndefined();
      });
    });
  });
}
