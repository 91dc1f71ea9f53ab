import { afterEach, describe, expect, it } from 'vitest';
import { NotFoundError, ValidationError } from '../../src/events/errors.js';
import { defineProjection } from '../../src/projections/definition.js';
import { ProjectionHandlerError, ProjectionsUnsupportedError } from '../../src/projections/errors.js';
import { openProjections } from '../../src/projections/projections.js';
import { Store as StoreClass } from '../../src/store/event-store.js';
import { MemoryBackend } from '../../src/store/memory.js';
import type { EventStore } from '../../src/store/types.js';
import { evolveItem, expectedItems, itemsProjection, kinds, openTestStore, removeTempDirs } from './helpers.js';

const stores: EventStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  removeTempDirs();
});

const added = (item: string, n = 1) => ({ type: 'Added', data: { item, n } });

describe.each(kinds)('projections on %s', (kind) => {
  const fresh = async (file?: string) => {
    const store = await openTestStore(kind, file);
    stores.push(store);
    return store;
  };

  it('inline: the model changes with the append; a throwing handler fails the append and writes nothing', async () => {
    const store = await fresh();
    const inline = itemsProjection('items', 'inline', 1, {
      evolve: (doc, e) => {
        if ((e.data as { n?: number }).n === 13) throw new Error('unlucky');
        return evolveItem(doc, e);
      },
    });
    const projections = await openProjections(store, [inline]);
    await store.append('s-1', [added('a', 2), added('a', 3)]);
    expect(await projections.get('items', 's-1/a')).toMatchObject({ total: 5, adds: 2 });

    const refused = store.append('s-1', [added('a', 1), added('b', 13)]);
    await expect(refused).rejects.toBeInstanceOf(ProjectionHandlerError);
    await expect(refused).rejects.toMatchObject({ code: 'PROJECTION_HANDLER', projection: 'items' });
    expect(await store.streamVersion('s-1')).toBe(2);
    expect(await store.headPosition()).toBe(2);
    expect(await projections.get('items', 's-1/a')).toMatchObject({ total: 5, adds: 2 });
    const [status] = await projections.status();
    expect(status).toMatchObject({ position: 2, head: 2, lagEvents: 0, state: 'ok' });

    // Other appends in the same group commit are not affected.
    const [good, bad] = await Promise.allSettled([store.append('s-2', [added('c')]), store.append('s-3', [added('d', 13)])]);
    expect(good.status).toBe('fulfilled');
    expect(bad.status).toBe('rejected');
    expect(await projections.find('items')).toHaveLength(2);
    await projections.close();
  });

  it('inline: catches up on events appended while it was not installed', async () => {
    const store = await fresh();
    await store.append('s-1', [added('a', 1)]);
    const projections = await openProjections(store, [itemsProjection('items', 'inline')]);
    await store.append('s-1', [added('a', 1)]);
    expect(await projections.get('items', 's-1/a')).toMatchObject({ total: 2, adds: 2 });
    await projections.close();
  });

  it('inline: a new version keeps the old model until its rebuild swaps in, then follows appends again', async () => {
    const store = await fresh();
    const v1 = await openProjections(store, [itemsProjection('items', 'inline')]);
    await store.append('s-1', [added('a', 1), added('a', 1)]);
    await v1.close();
    const doubled = itemsProjection('items', 'inline', 2, { evolve: (doc, e) => evolveItem(evolveItem(doc, e), e) });
    const v2 = await openProjections(store, [doubled]);
    await store.append('s-1', [added('a', 1)]);
    // Still the whole v1 model (not a v1/v2 mix) until the rebuild is done.
    expect(await v2.get('items', 's-1/a')).toMatchObject({ total: 2, adds: 2 });
    expect((await v2.status())[0]).toMatchObject({ state: 'rebuilding', activeVersion: 1 });
    await v2.catchUp();
    expect(await v2.get('items', 's-1/a')).toMatchObject({ total: 6, adds: 6 });
    await store.append('s-1', [added('a', 1)]);
    expect(await v2.get('items', 's-1/a')).toMatchObject({ total: 8, adds: 8 });
    expect((await v2.status())[0]).toMatchObject({ state: 'ok', activeVersion: 2, lagEvents: 0 });
    await v2.close();
  });

  it('a projection that throws on one event stops there, visibly; others go on; after the fix it resumes from that event', async () => {
    const store = await fresh();
    let broken = true;
    const fragile = itemsProjection('fragile', 'async', 1, {
      evolve: (doc, e) => {
        if (broken && (e.data as { item: string }).item === 'poison') throw new Error('cannot digest poison');
        return evolveItem(doc, e);
      },
    });
    const sturdy = itemsProjection('sturdy', 'async');
    const errors: ProjectionHandlerError[] = [];
    const projections = await openProjections(store, [fragile, sturdy], { batchSize: 50, onError: (e) => errors.push(e) });
    await store.append('s-1', [added('a'), added('b')]);
    const { events } = await store.append('s-2', [added('poison'), added('c')]);
    await store.append('s-1', [added('a')]);
    const poison = events[0]?.position as number;

    await projections.catchUp();
    const status = Object.fromEntries((await projections.status()).map((s) => [s.name, s]));
    expect(status.fragile).toMatchObject({ state: 'failed', position: poison - 1, lagEvents: 3 });
    expect(status.fragile?.error?.position).toBe(poison);
    expect(status.fragile?.error?.message).toContain('cannot digest poison');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ position: poison, eventId: events[0]?.id });
    expect(status.sturdy).toMatchObject({ state: 'ok', position: 5, lagEvents: 0, error: null });
    // What came before the poison is applied; nothing after it.
    expect((await projections.find('fragile')).map((d) => d.key)).toEqual(['s-1/a', 's-1/b']);

    // Stopped means stopped: more appends and catch-ups do not move it.
    await store.append('s-1', [added('b')]);
    await projections.catchUp();
    expect((await projections.status())[0]?.position).toBe(poison - 1);

    broken = false;
    await projections.resume('fragile');
    await projections.catchUp();
    const all = { limit: 100 };
    expect(await projections.find('fragile', all)).toEqual(expectedItems(await store.readAll()));
    expect(await projections.find('fragile', all)).toEqual(await projections.find('sturdy', all));
    expect((await projections.status())[0]).toMatchObject({ state: 'ok', error: null, lagEvents: 0 });
    await projections.close();
  });

  it('a consumer started with start() follows appends live and stops on stop()', async () => {
    const store = await fresh();
    const projections = await openProjections(store, [itemsProjection('items', 'async')]);
    projections.start();
    await store.append('s-1', [added('a', 4)]);
    for (let i = 0; i < 200 && !(await projections.get('items', 's-1/a')); i++) await new Promise((r) => setTimeout(r, 10));
    expect(await projections.get('items', 's-1/a')).toMatchObject({ total: 4 });
    await projections.close();
  });

  it('a rebuild builds a new generation; queries see the old model until the atomic swap', async () => {
    const store = await fresh();
    const v1 = defineProjection<{ n: number; version: number }>({
      name: 'counts',
      version: 1,
      key: (e) => e.streamId,
      evolve: (doc) => ({ n: (doc?.n ?? 0) + 1, version: 1 }),
    });
    const first = await openProjections(store, [v1], { batchSize: 10 });
    for (let i = 0; i < 10; i++)
      await store.append(
        `s-${i % 3}`,
        Array.from({ length: 10 }, () => added('a')),
      );
    await first.catchUp();
    const before = await first.find('counts');
    expect(before.map((d) => d.doc)).toEqual([
      { n: 40, version: 1 },
      { n: 30, version: 1 },
      { n: 30, version: 1 },
    ]);
    await first.close();

    // A new version: detected at open, rebuilt from position 0 into a fresh generation.
    const v2 = { ...v1, version: 2, evolve: (doc: { n: number } | undefined) => ({ n: (doc?.n ?? 0) + 2, version: 2 }) };
    const second = await openProjections(store, [v2], { batchSize: 10 });
    expect((await second.status())[0]).toMatchObject({ state: 'rebuilding', activeVersion: 1, version: 2 });
    const seen: unknown[] = [];
    const progress: number[] = [];
    await second.rebuild('counts', {
      onProgress: async (p) => {
        progress.push(p.processed);
        expect(p.total).toBe(100);
        seen.push(await second.find('counts'));
      },
    });
    // Every query made mid-rebuild saw the whole old model, the last one (after the swap) the whole new one.
    for (const view of seen.slice(0, -1)) expect(view).toEqual(before);
    expect(seen.at(-1)).toEqual(before.map((d) => ({ ...d, doc: { n: (d.doc.n as number) * 2, version: 2 } })));
    expect(progress.at(-1)).toBe(100);
    expect(progress.length).toBeGreaterThan(5);
    expect((await second.status())[0]).toMatchObject({ state: 'ok', activeVersion: 2, position: 100, lagEvents: 0 });
    await second.close();
  });

  it('queries: equality on top-level fields, order, limit and offset, the same on every backend', async () => {
    const store = await fresh();
    const people = defineProjection({
      name: 'people',
      version: 1,
      key: (e) => e.streamId,
      evolve: (_doc, e) => e.data as { [k: string]: string | number | boolean | null },
    });
    const projections = await openProjections(store, [people]);
    const rows = [
      { name: 'ann', age: 31, admin: true, team: 'a' },
      { name: 'bob', age: 25, admin: false, team: 'b' },
      { name: 'cy', age: 40, admin: true, team: null },
      { name: 'di', age: '40', admin: 1, team: 'a' },
      { name: 'ed', admin: false, team: 'a' },
    ];
    for (const row of rows) await store.append(`p-${row.name}`, [{ type: 'Person', data: row }]);
    await projections.catchUp();
    const names = async (q: Parameters<typeof projections.find>[1]) => (await projections.find('people', q)).map((d) => d.doc.name);
    expect(await names({ where: { admin: true } })).toEqual(['ann', 'cy']);
    expect(await names({ where: { age: 40 } })).toEqual(['cy']);
    expect(await names({ where: { age: '40' } })).toEqual(['di']);
    expect(await names({ where: { team: null } })).toEqual(['cy']);
    expect(await names({ where: { team: 'a', admin: false } })).toEqual(['ed']);
    expect(await names({ orderBy: 'age' })).toEqual(['ed', 'bob', 'ann', 'cy', 'di']);
    expect(await names({ orderBy: { field: 'age', direction: 'desc' }, limit: 2 })).toEqual(['di', 'cy']);
    expect(await names({ orderBy: 'name', offset: 3 })).toEqual(['di', 'ed']);
    expect(await projections.get('people', 'p-nobody')).toBeUndefined();
    await projections.close();
  });

  it('bad input gets typed errors', async () => {
    const store = await fresh();
    const good = itemsProjection('items', 'async');
    await expect(openProjections(store, [{ ...good, name: 'bad name!' }])).rejects.toBeInstanceOf(ValidationError);
    await expect(openProjections(store, [{ ...good, version: 0 }])).rejects.toThrow(/version must be a positive integer/);
    await expect(openProjections(store, [good, good])).rejects.toThrow(/defined twice/);
    await expect(openProjections(store, [{ ...good, evolve: undefined as never }])).rejects.toThrow(/evolve must be a function/);
    await expect(openProjections(store, [{ ...good, mode: 'sometimes' as never }])).rejects.toBeInstanceOf(ValidationError);
    await expect(openProjections(store, [good], { batchSize: 0 })).rejects.toBeInstanceOf(ValidationError);

    const projections = await openProjections(store, [good]);
    await expect(projections.get('nope', 'k')).rejects.toBeInstanceOf(NotFoundError);
    await expect(projections.find('nope')).rejects.toBeInstanceOf(NotFoundError);
    await expect(projections.rebuild('nope')).rejects.toBeInstanceOf(NotFoundError);
    await expect(projections.resume('nope')).rejects.toBeInstanceOf(NotFoundError);
    await expect(projections.get('items', '')).rejects.toBeInstanceOf(ValidationError);
    await expect(projections.find('items', { where: { 'a.b': 1 } })).rejects.toBeInstanceOf(ValidationError);
    await expect(projections.find('items', { where: { a: { deep: 1 } as never } })).rejects.toBeInstanceOf(ValidationError);
    await expect(projections.find('items', { limit: 0 })).rejects.toBeInstanceOf(ValidationError);
    await expect(projections.find('items', { orderBy: { field: 'x', direction: 'up' as never } })).rejects.toBeInstanceOf(ValidationError);
    await projections.close();
  });

  it('a handler that breaks the rules (shared document, bad key, non-object) stops with a clear error', async () => {
    const store = await fresh();
    const shared = defineProjection({
      name: 'shared',
      version: 1,
      key: () => 'one',
      evolve: (d, e) => ({ last: e.streamId, n: ((d?.n as number) ?? 0) + 1 }),
    });
    const badKey = defineProjection({ name: 'bad-key', version: 1, key: () => 42 as never, evolve: () => ({}) });
    const notObject = defineProjection({ name: 'not-object', version: 1, key: (e) => e.streamId, evolve: () => [1] as never });
    const projections = await openProjections(store, [shared, badKey, notObject]);
    await store.append('s-1', [added('a')]);
    await store.append('s-2', [added('a')]);
    await projections.catchUp();
    const status = Object.fromEntries((await projections.status()).map((s) => [s.name, s]));
    expect(status.shared?.error?.message).toMatch(/belongs to stream "s-1"/);
    expect(status.shared?.error?.position).toBe(2);
    expect(status['bad-key']?.error?.message).toMatch(/key\(\) returned 42/);
    expect(status['not-object']?.error?.message).toMatch(/plain object/);
    await projections.close();
  });
});

it('a backend without a projection host gets a typed error', async () => {
  const backend = new MemoryBackend();
  Object.defineProperty(backend, 'projectionHost', { value: undefined });
  const store = new StoreClass(backend);
  await expect(openProjections(store, [itemsProjection('items', 'async')])).rejects.toBeInstanceOf(ProjectionsUnsupportedError);
  await store.close();
});

describe.runIf(kinds.includes('postgres'))('two consumers of one projection at once (PostgreSQL, two connections pools)', () => {
  it('the conditional commit keeps the model right', async () => {
    const { openStore } = await import('../../src/store/open.js');
    const { databaseUrl, uniqueSchema } = await import('../support/postgres.js');
    const schema = uniqueSchema();
    const a = await openStore(databaseUrl(), { schema });
    const b = await openStore(databaseUrl(), { schema });
    stores.push(a, b);
    for (let i = 0; i < 40; i++) {
      await a.append(
        `s-${i % 7}`,
        Array.from({ length: 10 }, (_, j) => added(`i${j % 3}`, j)),
      );
    }
    const pa = await openProjections(a, [itemsProjection('items', 'async')], { batchSize: 7 });
    const pb = await openProjections(b, [itemsProjection('items', 'async')], { batchSize: 7 });
    await Promise.all([pa.catchUp(), pb.catchUp(), a.append('s-1', [added('late', 5)])]);
    await pa.catchUp();
    expect(await pa.find('items', { limit: 1000 })).toEqual(expectedItems(await a.readAll({ limit: 10_000 })));
    await pa.close();
    await pb.close();
  });

  it('inline: concurrent appends from a process with the projection and one without: none missed, none applied twice', async () => {
    const { openStore } = await import('../../src/store/open.js');
    const { databaseUrl, uniqueSchema } = await import('../support/postgres.js');
    const schema = uniqueSchema();
    const withIt = await openStore(databaseUrl(), { schema });
    const without = await openStore(databaseUrl(), { schema });
    stores.push(withIt, without);
    const projections = await openProjections(withIt, [itemsProjection('items', 'inline')]);
    await Promise.all(
      Array.from({ length: 60 }, (_, i) => (i % 2 ? withIt : without).append(`s-${i % 5}`, [added(`i${i % 3}`, i), added(`i${i % 2}`, 1)])),
    );
    // The last append comes from the process with the projection: it applies everything before it too.
    await withIt.append('s-0', [added('last', 1)]);
    expect(await projections.find('items', { limit: 1000 })).toEqual(expectedItems(await withIt.readAll({ limit: 10_000 })));
    expect((await projections.status())[0]).toMatchObject({ lagEvents: 0, state: 'ok' });
    await projections.close();
  });
});
