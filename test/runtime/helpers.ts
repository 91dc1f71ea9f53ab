import { join } from 'node:path';
import fc from 'fast-check';
import type { EventEnvelope } from '../../src/events/envelope.js';
import type { Clock } from '../../src/runtime/clock.js';
import { openStore } from '../../src/store/open.js';
import type { EventStore } from '../../src/store/types.js';
import { tempDir } from '../support/temp.js';

/** The store every runtime test runs on. REWIND_RUNTIME_STORE=sqlite runs the same tests on a fresh SQLite file. */
export async function makeStore(): Promise<EventStore> {
  if (process.env.REWIND_RUNTIME_STORE === 'sqlite') {
    // 'normal' survives a process crash, which is all these tests simulate; it keeps the 10,000-event runs quick.
    return openStore(`sqlite:${join(tempDir('rewind-rt-'), 'runs.db')}`, { durability: 'normal' });
  }
  return openStore('memory:');
}

/** A clock whose sleeps return at once, so backoffs and cool-downs cost no wall time. */
export function fastClock(start = 1_700_000_000_000): Clock & { advance(ms: number): void } {
  let now = start;
  return {
    now: () => now,
    sleep: async (ms) => {
      now += Math.max(0, ms);
    },
    advance: (ms) => {
      now += ms;
    },
  };
}

/** A fake external API that counts calls per idempotency key and applies each key's effect at most once. */
export class FakeService {
  readonly calls = new Map<string, number>();
  readonly applied: string[] = [];
  call(key: string, effect: string): string {
    this.calls.set(key, (this.calls.get(key) ?? 0) + 1);
    if (!this.applied.includes(`${key}=${effect}`)) this.applied.push(`${key}=${effect}`);
    return effect;
  }
  count(prefix: string): number {
    let n = 0;
    for (const [k, v] of this.calls) if (k.includes(prefix)) n += v;
    return n;
  }
}

export class SimulatedCrash extends Error {}

/**
 * The store as a process that dies right after one append is acknowledged:
 * the events are written, then every later call fails, as if the process
 * were gone. A fresh runtime on the underlying store plays the new process.
 */
export function crashAfter(store: EventStore, when: (event: EventEnvelope) => boolean): EventStore {
  let dead = false;
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'append') {
        return async (...args: Parameters<EventStore['append']>) => {
          if (dead) throw new SimulatedCrash('process is dead');
          const result = await target.append(...args);
          if (result.events.some(when)) {
            dead = true;
            throw new SimulatedCrash('crashed after append');
          }
          return result;
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** Counts the events the runtime reads through store.read. */
export function countingReads(store: EventStore): { store: EventStore; eventsRead: () => number; reset: () => void } {
  let read = 0;
  const proxy = new Proxy(store, {
    get(target, prop) {
      if (prop === 'read') {
        return async (...args: Parameters<EventStore['read']>) => {
          const events = await target.read(...args);
          read += events.length;
          return events;
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store: proxy, eventsRead: () => read, reset: () => (read = 0) };
}

export async function typesOf(store: EventStore, runId: string): Promise<string[]> {
  return (await store.read(`run-${runId}`)).map((e) => e.type);
}

/** A random workflow program for the property tests: emits, checkpoints, steps, and failures that roll back. */
export type Op = { kind: 'emit'; value: number } | { kind: 'checkpoint'; label: string } | { kind: 'step' } | { kind: 'fail'; to: string };

export const label = fc.constantFrom('c0', 'c1', 'c2');
export const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('emit' as const), value: fc.integer({ min: -100, max: 100 }) }),
  fc.record({ kind: fc.constant('checkpoint' as const), label }),
  fc.record({ kind: fc.constant('step' as const) }),
  fc.record({ kind: fc.constant('fail' as const), to: fc.oneof(fc.constant('latest'), label) }),
);
