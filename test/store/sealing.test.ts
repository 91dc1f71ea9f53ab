import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventEnvelope } from '../../src/events/envelope.js';
import { generateKeyPair } from '../../src/events/signing.js';
import { defineProjection } from '../../src/projections/definition.js';
import { openProjections } from '../../src/projections/projections.js';
import { type Seal, startSealing } from '../../src/store/index.js';
import type { EventStore } from '../../src/store/types.js';
import { kinds, openTestStore, removeTempDirs } from '../projections/helpers.js';

const stores: EventStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  removeTempDirs();
});

const keys = generateKeyPair();
const order = (n: number) => ({ type: 'Placed', data: { order: { id: `o-${n}`, total: n } } });

async function until(condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(10);
  }
}

describe.each(kinds)('seals on %s', (kind) => {
  const fresh = async () => {
    const store = await openTestStore(kind);
    stores.push(store);
    return store;
  };

  it('are written as the log grows, each going on from the last, and never for nothing new', async () => {
    const store = await fresh();
    const seals: Seal[] = [];
    for (let n = 1; n <= 5; n++) await store.append(`order-${n % 3}`, [order(n)]);
    const sealing = startSealing(store, { signingKey: keys.privateKey, everyEvents: 5, everyMs: 60_000, onSeal: (s) => seals.push(s) });
    // What is there when it starts is sealed at once.
    await until(() => seals.length === 1);
    // Five more (in one append, so no look at the head falls between them): the second seal.
    await store.append('order-9', [6, 7, 8, 9, 10].map(order));
    await until(() => seals.length === 2);
    // Two more: not enough for a third.
    for (const n of [11, 12]) await store.append('order-9', [order(n)]);
    await sleep(600);
    await sealing.stop();
    expect(seals.map((s) => [s.digest.treeHead.since, s.digest.treeHead.position, s.position])).toEqual([
      [0, 5, 6],
      [5, 11, 12],
    ]);
    const report = await store.verify({ publicKeys: [keys.publicKey] });
    expect(report).toMatchObject({ ok: true, events: 14, seals: { found: 2, verified: 2, coveredTo: 11 } });
  });

  it('leave whole-log readers alone: projections without a filter, subscriptions, readAll', async () => {
    const store = await fresh();
    // A projection that takes every event for an order: a seal reaching key() would throw, failing the seal's append (inline) or stopping the projection (async).
    const everything = (name: string, mode: 'inline' | 'async') =>
      defineProjection<{ total: number }>({
        name,
        version: 1,
        mode,
        key: (e) => (e.data as { order: { id: string } }).order.id,
        evolve: (_doc, e) => ({ total: (e.data as { order: { total: number } }).order.total }),
      });
    const projections = await openProjections(store, [everything('inline-orders', 'inline'), everything('async-orders', 'async')]);
    projections.start();
    const seen: EventEnvelope[] = [];
    const controller = new AbortController();
    const following = (async () => {
      for await (const event of store.subscribe({ signal: controller.signal })) seen.push(event);
    })();

    await store.append('order-1', [order(1)]);
    expect(await store.seal({ signingKey: keys.privateKey })).toBeDefined();
    await store.append('order-2', [order(2)]);
    expect(await store.seal({ signingKey: keys.privateKey })).toBeDefined();
    await store.append('order-3', [order(3)]);

    await until(() => seen.length === 3);
    const statuses = async () => (await projections.status()).map((s) => [s.name, s.state, s.position, s.lagEvents]);
    const head = await store.headPosition();
    // Both stand at the head, the seals' positions passed over, neither stopped.
    await expect.poll(statuses, { timeout: 15_000 }).toEqual([
      ['inline-orders', 'ok', head, 0],
      ['async-orders', 'ok', head, 0],
    ]);
    expect((await projections.find('inline-orders')).length).toBe(3);
    expect((await projections.find('async-orders')).length).toBe(3);
    controller.abort();
    await following;
    expect(seen.map((e) => e.streamId)).toEqual(['order-1', 'order-2', 'order-3']);
    expect((await store.readAll()).map((e) => e.streamId)).toEqual(['order-1', 'order-2', 'order-3']);
    expect((await store.listStreams()).map((s) => s.streamId)).toEqual(['$rewind-seals', 'order-1', 'order-2', 'order-3']);
    await projections.close();
  });
});
