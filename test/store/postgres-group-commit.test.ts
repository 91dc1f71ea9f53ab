import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConcurrencyError, EventIdConflictError } from '../../src/events/errors.js';
import { EventRegistry } from '../../src/events/registry.js';
import { openStore } from '../../src/store/open.js';
import { prepareAppends } from '../../src/store/prepare.js';
import type { AppendResult, EventStore, ExpectedVersion, StreamAppend } from '../../src/store/types.js';
import { databaseUrl, openTestPostgresStore, uniqueSchema } from '../support/postgres.js';

/*
 * Appends made at once by one process share a transaction (group commit,
 * src/store/postgres/append-queue.ts): every call still gets the outcome it
 * would get alone, as if the calls had been made one by one in the order they
 * came.
 */

let store: EventStore;
let schema: string;
let client: pg.Client;
beforeAll(async () => {
  schema = uniqueSchema();
  store = await openTestPostgresStore({ schema });
  client = new pg.Client({ connectionString: databaseUrl() });
  await client.connect();
});
afterAll(async () => {
  await client.end();
  await store.close();
});

/** Transactions that wrote these streams' events: one per group. */
async function transactionsOf(streamIds: string[]): Promise<number> {
  const { rows } = await client.query<{ n: string }>(
    `SELECT count(DISTINCT tx_id) AS n FROM "${schema}".events WHERE stream_id = ANY ($1)`,
    [streamIds],
  );
  return Number(rows[0]?.n);
}

/** One stream append of one event with a chosen id, as the store sends it to append_calls() (and builds before it to append_events()). */
function rawAppend(streamId: string, id: string, expectedVersion: ExpectedVersion = 'any') {
  const [prepared] = prepareAppends([{ streamId, events: [{ id, type: 't', data: 'raw' }] }], {
    registry: new EventRegistry(),
    now: () => new Date().toISOString(),
  });
  const events = prepared?.events.map((e) => ({ ...e, data: e.dataJson, metadata: e.metadataJson }));
  return { streamId, expectedVersion, idsGiven: true, events };
}

const ev = (data: unknown, id?: string) => ({ type: 't', data, ...(id ? { id } : {}) });

describe('PostgreSQL: group commit', () => {
  it('answers each call of a group apart: a refused call writes nothing and fails no other', async () => {
    await store.append('g1-b', [ev(0, 'g1-taken')]);
    const original = await store.append('g1-e', [ev(1, 'g1-e1'), ev(2, 'g1-e2')], { expectedVersion: 'no_stream' });

    // Made in one turn of the event loop: they go in one group.
    const outcomes = await Promise.allSettled([
      store.append('g1-a', [ev('a')], { expectedVersion: 'no_stream' }),
      store.append('g1-b', [ev('b')], { expectedVersion: 5 }),
      store.appendMany([
        { streamId: 'g1-c1', events: [ev('c1')], expectedVersion: 'no_stream' },
        { streamId: 'g1-c2', events: [ev('c2')], expectedVersion: 'exists' },
      ]),
      store.append('g1-d', [ev('d', 'g1-taken')]),
      store.append('g1-e', [ev(1, 'g1-e1'), ev(2, 'g1-e2')], { expectedVersion: 'no_stream' }),
      store.append('g1-f', [ev('f1'), ev('f2')]),
    ]);

    const [a, b, c, d, e, f] = outcomes;
    expect(a).toMatchObject({ status: 'fulfilled', value: { streamId: 'g1-a', version: 1 } });
    expect(b).toMatchObject({ status: 'rejected', reason: { streamId: 'g1-b', expected: 5, actual: 1 } });
    expect((b as PromiseRejectedResult).reason).toBeInstanceOf(ConcurrencyError);
    expect(c).toMatchObject({ status: 'rejected', reason: { streamId: 'g1-c2', expected: 'exists', actual: 0 } });
    expect(d).toMatchObject({ status: 'rejected', reason: { eventId: 'g1-taken' } });
    expect((d as PromiseRejectedResult).reason).toBeInstanceOf(EventIdConflictError);
    expect(e).toEqual({ status: 'fulfilled', value: original });
    expect(f).toMatchObject({ status: 'fulfilled', value: { streamId: 'g1-f', version: 2 } });

    // The refused calls wrote nothing; the others went in one transaction, in the order they came.
    expect(await store.streamVersion('g1-c1')).toBe(0);
    expect(await store.streamVersion('g1-d')).toBe(0);
    expect(await store.streamVersion('g1-b')).toBe(1);
    expect(await transactionsOf(['g1-a', 'g1-f'])).toBe(1);
    const [written, last] = [(a as PromiseFulfilledResult<AppendResult>).value, (f as PromiseFulfilledResult<AppendResult>).value];
    expect(last.events.map((x) => x.position)).toEqual([written.position + 1, written.position + 2]);
    expect(await store.verify()).toMatchObject({ ok: true });
  });

  it('runs a failed group again one by one: an id two calls write at once goes to the first', async () => {
    const outcomes = await Promise.allSettled([
      store.append('g2-x', [ev('x', 'g2-same')]),
      store.append('g2-y', [ev('y', 'g2-same')]),
      store.append('g2-z', [ev('z')]),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({
      eventId: 'g2-same',
      message: expect.stringContaining('belongs to stream "g2-x"'),
    });
    expect(await store.streamVersion('g2-y')).toBe(0);
    expect((await store.read('g2-z')).map((x) => x.data)).toEqual(['z']);
  });

  it('runs a group again one by one when another writer stores one of its ids at the same time', async () => {
    // Given another connection's append holding id "g4-raced" in stream g4-other, not yet committed.
    const raw = new pg.Client({ connectionString: databaseUrl() });
    await raw.connect();
    try {
      await raw.query('BEGIN');
      await raw.query(`SELECT * FROM "${schema}".append_calls($1::jsonb)`, [JSON.stringify([[rawAppend('g4-other', 'g4-raced')]])]);

      // When one group of three calls, one of them with that id, waits on it at the unique index, and it commits.
      const outcomes = Promise.allSettled([
        store.append('g4-a', [ev('a')]),
        store.append('g4-b', [ev('b', 'g4-raced')]),
        store.append('g4-c', [ev('c')]),
      ]);
      await new Promise((r) => setTimeout(r, 300));
      await raw.query('COMMIT');

      // Then the statement failed whole, and the calls, run again one by one, each got their own outcome.
      const [a, b, c] = await outcomes;
      expect(a).toMatchObject({ status: 'fulfilled', value: { streamId: 'g4-a', version: 1 } });
      expect(b).toMatchObject({
        status: 'rejected',
        reason: { eventId: 'g4-raced', message: expect.stringContaining('belongs to stream "g4-other"') },
      });
      expect(c).toMatchObject({ status: 'fulfilled', value: { streamId: 'g4-c', version: 1 } });
      expect(await store.streamVersion('g4-b')).toBe(0);
      expect((await store.read('g4-a')).map((x) => x.data)).toEqual(['a']);
      expect((await store.read('g4-c')).map((x) => x.data)).toEqual(['c']);
    } finally {
      await raw.end();
    }
  });

  it('keeps append_events for processes of the previous build: same rows, refusals raised as they were', async () => {
    const call = (appends: unknown[]) => client.query(`SELECT * FROM "${schema}".append_events($1::jsonb)`, [JSON.stringify(appends)]);
    const batch = [rawAppend('g6-a', 'g6-1'), rawAppend('g6-b', 'g6-2')];
    const { rows: written } = await call(batch);
    expect(written.map((r) => [r.r_ord, r.r_id, r.r_version])).toEqual([
      [0, 'g6-1', 1],
      [1, 'g6-2', 1],
    ]);
    // Repeated unchanged: the stored events, each named by its append.
    const { rows: again } = await call(batch);
    expect(again).toEqual(written);
    // A wrong expected version: the stream's version as the message, its id as the detail.
    await expect(call([rawAppend('g6-a', 'g6-3', 0)])).rejects.toMatchObject({ code: 'RW002', message: '1', detail: 'g6-a' });
    await expect(call([rawAppend('g6-c', 'g6-1')])).rejects.toMatchObject({ code: 'RW001', message: 'g6-1' });
    expect(await store.streamVersion('g6-c')).toBe(0);
  });

  it('keeps the order of calls to one stream made at once: each sees the one before it', async () => {
    const expected: ExpectedVersion[] = ['any', 'any', 'any', 3, 3, 'any'];
    const outcomes = await Promise.allSettled(expected.map((v, i) => store.append('g3', [ev(i)], { expectedVersion: v })));
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value.version : o.reason.actual))).toEqual([1, 2, 3, 4, 4, 5]);
    expect((await store.read('g3')).map((x) => x.data)).toEqual([0, 1, 2, 3, 5]);
  });

  it('gives every call of a group the outcome the calls would get one by one (property)', async () => {
    const call = fc.record({
      stream: fc.integer({ min: 0, max: 3 }),
      events: fc.array(
        fc.record({ key: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }), n: fc.integer({ min: 0, max: 1 }) }),
        {
          minLength: 1,
          maxLength: 3,
        },
      ),
      expected: fc.constantFrom<ExpectedVersion>('any', 'no_stream', 'exists', 0, 1, 2, 3),
    });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(call, { minLength: 1, maxLength: 8 }), async (calls) => {
        const tag = `p${run++}`;
        const appends: StreamAppend[] = calls.map((c) => ({
          streamId: `${tag}-s${c.stream}`,
          expectedVersion: c.expected,
          // A key twice in one append is bad input, refused before any I/O: each key once per append.
          events: c.events.map((e, i) =>
            ev(e.n, e.key === undefined || c.events.findIndex((o) => o.key === e.key) < i ? undefined : `${tag}-k${e.key}`),
          ),
        }));
        const memory = await openStore('memory:');
        const alone: unknown[] = [];
        for (const a of appends)
          alone.push(await memory.append(a.streamId, a.events, { expectedVersion: a.expectedVersion }).then(shape, shape));
        const memoryRead = (id: string) => memory.read(id);
        const together = await Promise.all(
          appends.map((a) => store.append(a.streamId, a.events, { expectedVersion: a.expectedVersion }).then(shape, shape)),
        );
        expect(together).toEqual(alone);
        // And nothing was lost or leaked: every stream holds what the memory store holds.
        for (const streamId of new Set(appends.map((a) => a.streamId))) {
          expect((await store.read(streamId)).map((e) => [e.version, e.data])).toEqual(
            (await memoryRead(streamId)).map((e) => [e.version, e.data]),
          );
        }
        await memory.close();
      }),
      { numRuns: 40 },
    );
    expect(await store.verify()).toMatchObject({ ok: true });
  });
});

/** What a caller learns from an append: the versions written, or the kind of refusal. */
function shape(outcome: AppendResult | Error): unknown {
  if (!(outcome instanceof Error)) return { versions: outcome.events.map((e) => e.version) };
  if (outcome instanceof ConcurrencyError) return { refused: 'concurrency', actual: outcome.actual };
  if (outcome instanceof EventIdConflictError) return { refused: 'id', id: outcome.eventId };
  throw outcome;
}
