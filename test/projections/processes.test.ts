import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { NewEvent } from '../../src/events/envelope.js';
import { openProjections } from '../../src/projections/projections.js';
import { expectedItems, itemsProjection, killChildren, openTestStore, removeTempDirs, runFixture, tempDir } from './helpers.js';

afterEach(() => {
  killChildren();
  removeTempDirs();
});

function run(file: string, mode: 'follow' | 'catchup', batch: number, spinMicros: number, wait = false) {
  return runFixture('projections-consumer.ts', [file, mode, String(batch), String(spinMicros), ...(wait ? ['wait'] : [])]);
}

/**
 * Streams of items with rollbacks in the first third, so the consumer's pages cross markers. Not later:
 * a marker recomputes its stream from the log, which would hide an event applied twice before it.
 */
async function fillLog(file: string, appends: number): Promise<void> {
  const store = await openTestStore('sqlite', file);
  const calls: Promise<unknown>[] = [];
  for (let i = 0; i < appends; i++) {
    const streamId = `s-${i % 13}`;
    const events: NewEvent[] =
      i % 17 === 16 && i < appends / 3
        ? [{ type: 'RolledBack', data: { targetVersion: Math.max(0, Math.floor(i / 13) - 3) } }]
        : [
            { type: 'Added', data: { item: `i${i % 5}`, n: (i % 7) - 3 } },
            { type: i % 11 === 0 ? 'Removed' : 'Noted', data: { item: `i${i % 3}`, text: `t${i}` } },
          ];
    calls.push(store.append(streamId, events));
    if (calls.length === 200) await Promise.all(calls.splice(0));
  }
  await Promise.all(calls);
  await store.close();
}

function positionIn(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    db.pragma('busy_timeout = 5000');
    const row = db.prepare("SELECT position FROM projections WHERE name = 'items'").get() as { position: number } | undefined;
    return row?.position ?? 0;
  } catch {
    return 0;
  } finally {
    db.close();
  }
}

async function modelOf(file: string) {
  const store = await openTestStore('sqlite', file);
  try {
    const projections = await openProjections(store, [itemsProjection('items', 'async')]);
    const live = await projections.find('items', { limit: 10_000 });
    const head = await store.headPosition();
    const [status] = await projections.status();
    await projections.rebuild('items');
    const rebuilt = await projections.find('items', { limit: 10_000 });
    const expected = expectedItems(await store.readAll({ limit: 100_000 }));
    return { live, rebuilt, expected, head, position: status?.position };
  } finally {
    await store.close();
  }
}

describe('consumers in other processes (SQLite file)', () => {
  it('a consumer killed with SIGKILL mid-batch and restarted ends equal to a fresh rebuild', async () => {
    const file = join(tempDir(), 'kill.db');
    await fillLog(file, 3000);
    const first = run(file, 'follow', 400, 150);
    // Kill once at least one batch is committed, while the next one is inside its transaction.
    const t0 = Date.now();
    while (positionIn(file) === 0 && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 20));
    first.child.kill('SIGKILL');
    const killed = await first.done;
    expect(killed.signal).toBe('SIGKILL');
    const atKill = positionIn(file);
    expect(atKill).toBeGreaterThan(0);
    const head = await (async () => {
      const s = await openTestStore('sqlite', file);
      const h = await s.headPosition();
      await s.close();
      return h;
    })();
    expect(atKill).toBeLessThan(head);

    const second = await run(file, 'catchup', 400, 0).done;
    expect(second.err).toBe('');
    expect(second.out).toContain('done');
    const model = await modelOf(file);
    expect(model.position).toBe(model.head);
    expect(model.live).toEqual(model.expected);
    expect(model.rebuilt).toEqual(model.live);
  }, 60_000);

  it('two consumers of one projection in two processes at once: the model is still right', async () => {
    const file = join(tempDir(), 'two.db');
    await fillLog(file, 3000);
    const a = run(file, 'catchup', 50, 20, true);
    const b = run(file, 'catchup', 50, 20, true);
    await Promise.all([a.ready, b.ready]);
    a.child.stdin?.write('go\n');
    b.child.stdin?.write('go\n');
    // Keep appending meanwhile, so both follow a moving head.
    await fillLog(file, 300);
    const [ra, rb] = await Promise.all([a.done, b.done]);
    expect(ra.err).toBe('');
    expect(rb.err).toBe('');
    // A last catch-up covers appends made after both finished.
    await run(file, 'catchup', 50, 0).done;
    const model = await modelOf(file);
    expect(model.live).toEqual(model.expected);
    expect(model.rebuilt).toEqual(model.expected);
  }, 60_000);
});
