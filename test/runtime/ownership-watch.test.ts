import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Ownership } from '../../src/runtime/ownership.js';
import { openStore } from '../../src/store/open.js';

// The store watch behind requests and reactions: a listener hears of changes to the log, and only of those.

describe('the ownership store watch', () => {
  it('tells a watcher of appends; one that joins after every watcher left hears of no change that did not happen', async () => {
    const store = await openStore('memory:');
    const own = new Ownership(store, { leaseMs: 1_000 });
    let first = 0;
    const stopFirst = own.watch(() => first++);
    await store.append('s', [{ type: 'A', data: null }]);
    await expect.poll(() => first).toBeGreaterThan(0);
    stopFirst();

    // Given nothing appended since the last look, when a watcher joins, then it is not called.
    let second = 0;
    const stopSecond = own.watch(() => second++);
    await sleep(100);
    expect(second).toBe(0);
    // When something is appended, then it is.
    await store.append('s', [{ type: 'B', data: null }]);
    await expect.poll(() => second).toBe(1);
    stopSecond();
    own.close();
    await store.close();
  });
});
