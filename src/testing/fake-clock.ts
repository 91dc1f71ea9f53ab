import type { Clock } from '../runtime/clock.js';

interface Timer {
  at: number;
  order: number;
  resolve: () => void;
}

/** Macrotask turns with nothing but fake timers left before time skips: promise chains and store appends settle first. */
const IDLE_TURNS = 3;

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * A clock for tests that skips time. Every wait the runtime makes goes
 * through its clock (ctx.sleep, a step's timeout, retry backoff, a
 * compensation's retry, a breaker's cool-down), so a test of a one-hour
 * timeout takes milliseconds: whenever the code is waiting on this clock
 * alone, time jumps to the earliest wake-up. A step that waits on real I/O
 * is not waited for: stub it (or pass `autoAdvance: false` and move time
 * yourself with `advance`).
 */
export class FakeClock implements Clock {
  readonly startedAt: number;
  #now: number;
  #order = 0;
  readonly #timers: Timer[] = [];
  readonly #auto: boolean;
  #skipping = false;

  constructor(options: { now?: number | string | Date; autoAdvance?: boolean } = {}) {
    const start = options.now ?? '2026-01-01T00:00:00.000Z';
    this.#now = typeof start === 'number' ? start : new Date(start).getTime();
    if (!Number.isFinite(this.#now)) throw new RangeError(`FakeClock: not a time: ${String(options.now)}`);
    this.startedAt = this.#now;
    this.#auto = options.autoAdvance ?? true;
  }

  now(): number {
    return this.#now;
  }

  /** Fake milliseconds since the clock was made. */
  get elapsed(): number {
    return this.#now - this.startedAt;
  }

  /** Waits not yet over. */
  get pending(): number {
    return this.#timers.length;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const timer: Timer = {
        at: this.#now + Math.max(0, ms),
        order: this.#order++,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.#remove(timer);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#timers.push(timer);
      this.#timers.sort((a, b) => a.at - b.at || a.order - b.order);
      if (this.#auto) void this.#skip();
    });
  }

  /** Moves time forward by `ms`, waking every wait due on the way in order and letting what it starts settle. */
  async advance(ms: number): Promise<void> {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`FakeClock.advance: needs a non-negative number of ms, got ${ms}`);
    const until = this.#now + ms;
    for (let next = this.#timers[0]; next && next.at <= until; next = this.#timers[0]) {
      this.#fire(next);
      for (let i = 0; i < IDLE_TURNS; i++) await nextTurn();
    }
    this.#now = until;
  }

  /** While waits are pending: let everything else settle, then jump to the earliest. */
  async #skip(): Promise<void> {
    if (this.#skipping) return;
    this.#skipping = true;
    try {
      while (this.#timers.length > 0) {
        for (let i = 0; i < IDLE_TURNS; i++) await nextTurn();
        const next = this.#timers[0];
        if (next) this.#fire(next);
      }
    } finally {
      this.#skipping = false;
    }
  }

  #fire(timer: Timer): void {
    this.#remove(timer);
    this.#now = Math.max(this.#now, timer.at);
    timer.resolve();
  }

  #remove(timer: Timer): void {
    const i = this.#timers.indexOf(timer);
    if (i >= 0) this.#timers.splice(i, 1);
  }
}
