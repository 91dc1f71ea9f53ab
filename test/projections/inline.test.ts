import { afterEach, describe, expect, it } from 'vitest';
import { ProjectionHandlerError } from '../../src/projections/errors.js';
import { openProjections } from '../../src/projections/projections.js';
import type { EventStore } from '../../src/store/types.js';
import { databaseUrl } from '../support/postgres.js';
import {
  appenderProcess,
  evolveItem,
  expectedItems,
  itemsProjection,
  killChildren,
  kinds,
  openSharedStore,
  removeTempDirs,
} from './helpers.js';

// Inline projections: one that throws refuses the append it is handed and touches nothing else.

const stores: EventStore[] = [];
afterEach(async () => {
  killChildren();
  await Promise.all(stores.splice(0).map((s) => s.close()));
  removeTempDirs();
});

const added = (item: string, n = 1) => ({ type: 'Added', data: { item, n } });
const all = { limit: 1000 };

/** Items, but the handler throws on an Added of 13 while `broken` says so. */
function fragile(name: string, broken: { now: boolean }) {
  return itemsProjection(name, 'inline', 1, {
    evolve: (doc, e) => {
      if (broken.now && (e.data as { n?: number }).n === 13) throw new Error('unlucky 13');
      return evolveItem(doc, e);
    },
  });
}

describe.each(kinds)('inline projections on %s', (kind) => {
  it.each([
    ['opened together', 1],
    ['opened separately', 2],
  ])('two of them, %s: when the second throws, the first keeps neither the refused events nor their position', async (_, opens) => {
    // Given a sturdy and a fragile inline projection with a few events applied.
    const { store } = await openSharedStore(kind);
    stores.push(store);
    const sturdy = itemsProjection('sturdy', 'inline');
    const broken = { now: true };
    const opened =
      opens === 1
        ? [await openProjections(store, [sturdy, fragile('fragile', broken)])]
        : [await openProjections(store, [sturdy]), await openProjections(store, [fragile('fragile', broken)])];
    const projections = opened[0] as (typeof opened)[0];
    await store.append('s-1', [added('a', 2)]);
    await store.append('s-2', [added('b', 3)]);
    const before = await projections.find('sturdy', all);

    // When an append the fragile one throws on is refused.
    const refused = store.append('s-1', [added('a', 5), added('c', 13)]);
    await expect(refused).rejects.toBeInstanceOf(ProjectionHandlerError);
    await expect(refused).rejects.toMatchObject({ projection: 'fragile' });

    // Then the sturdy one holds what it held, at the position it had.
    expect(await projections.find('sturdy', all)).toEqual(before);
    const status = Object.fromEntries((await projections.status()).map((s) => [s.name, s]));
    expect(status.sturdy).toMatchObject({ position: 2, head: 2, state: 'ok' });
    // And the next append (which takes the refused one's position on memory and SQLite) is applied, not skipped.
    const { position } = await store.append('s-3', [added('d', 7)]);
    if (kind !== 'postgres') expect(position).toBe(3);
    const log = await store.readAll();
    expect(await projections.find('sturdy', all)).toEqual(expectedItems(log));
    for (const p of opened) {
      for (const s of await p.status()) expect(s).toMatchObject({ position, lagEvents: 0, state: 'ok' });
      await p.close();
    }
  });

  it('appends made at once share commits (the group commit), and one whose events it cannot apply fails alone', async () => {
    // Given two inline projections, one that throws on an Added of 13.
    const { store, url: shared } = await openSharedStore(kind);
    const url = kind === 'postgres' ? shared : undefined;
    stores.push(store);
    const broken = { now: true };
    const projections = await openProjections(store, [itemsProjection('sturdy', 'inline'), fragile('fragile', broken)]);

    // When 40 appends are made at once, on 40 streams, and one of them carries a 13.
    const calls = Array.from({ length: 40 }, (_, i) => store.append(`g-${i}`, [added(`x${i}`, i === 17 ? 13 : 100 + i)]));
    const settled = await Promise.allSettled(calls);

    // Then that one is refused by the projection's error and the 39 others are written and applied by both.
    const refused = settled.flatMap((r, i) => (r.status === 'rejected' ? [[i, r.reason]] : []));
    expect(refused).toHaveLength(1);
    expect(refused[0]?.[0]).toBe(17);
    expect(refused[0]?.[1]).toBeInstanceOf(ProjectionHandlerError);
    const log = await store.readAll();
    expect(log).toHaveLength(39);
    expect(await projections.find('sturdy', all)).toEqual(expectedItems(log));
    expect(await projections.find('fragile', all)).toEqual(expectedItems(log));
    for (const s of await projections.status()) expect(s).toMatchObject({ state: 'ok', lagEvents: 0 });
    if (url) {
      // On PostgreSQL, in fewer transactions than appends: calls in flight together went in one commit.
      const { default: pg } = await import('pg');
      const at = new URL(url);
      const client = new pg.Client({ connectionString: databaseUrl() });
      await client.connect();
      const { rows } = await client.query(`SELECT count(DISTINCT tx_id)::int AS n FROM ${at.searchParams.get('schema')}.events`);
      await client.end();
      expect(rows[0].n).toBeLessThan(39);
    }
    await projections.close();
  });

  it('an event it cannot apply, appended by a writer without it, stops that projection only; appends go on', async () => {
    // Given an inline projection in this process, and an event it throws on, appended by another
    // process that does not have the projection (on memory, one process: before it was opened).
    const { store, url } = await openSharedStore(kind);
    stores.push(store);
    const broken = { now: true };
    const projections = () => openProjections(store, [fragile('items', broken), itemsProjection('sturdy', 'inline')]);
    const p = url ? await projections() : undefined;
    await store.append('s-1', [added('a', 1)]);
    let poison: number;
    if (url) poison = Number(await appenderProcess([url, 'once', 'other-1', JSON.stringify([added('p', 13), added('q', 2)])]).done) - 1;
    else poison = (await store.append('other-1', [added('p', 13), added('q', 2)])).events[0]?.position as number;
    const mine = p ?? (await projections());

    // When this process appends, on any stream.
    const appended = await store.append('s-1', [added('a', 4)]);
    await store.append('s-2', [added('b', 5)]);

    // Then its appends are accepted; the projection stopped at the foreign event, the error in its status.
    expect(appended.position).toBe(poison + 2);
    const status = Object.fromEntries((await mine.status()).map((s) => [s.name, s]));
    expect(status.items).toMatchObject({ state: 'failed', position: poison - 1, head: poison + 3 });
    expect(status.items?.error?.position).toBe(poison);
    expect(status.items?.error?.message).toMatch(/unlucky 13/);
    // What came before the foreign event is applied, nothing after it; the other projection is up to date.
    const log = await store.readAll();
    expect(await mine.find('items', all)).toEqual(expectedItems(log.filter((e) => e.position < poison)));
    expect(status.sturdy).toMatchObject({ state: 'ok', position: poison + 3 });
    expect(await mine.find('sturdy', all)).toEqual(expectedItems(log));

    // After the fix and a resume, the projection takes everything from that event on.
    broken.now = false;
    await mine.resume('items');
    await mine.catchUp();
    expect(await mine.find('items', all)).toEqual(expectedItems(log));
    await store.append('s-2', [added('b', 13)]);
    expect(await mine.find('items', all)).toEqual(expectedItems(await store.readAll()));
    expect((await mine.status())[0]).toMatchObject({ state: 'ok', error: null, lagEvents: 0 });
    await mine.close();
  });
});
