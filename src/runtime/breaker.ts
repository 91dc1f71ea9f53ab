import type { EventEnvelope } from '../events/envelope.js';
import { ConcurrencyError } from '../events/errors.js';
import type { EventStore } from '../store/types.js';
import { BreakerOpenError } from './errors.js';

export interface BreakerOptions {
  /** Consecutive failures that open the breaker. Default 5. */
  failureThreshold?: number;
  /** How long it stays open before one trial call is let through. Default 30 s. */
  cooldownMs?: number;
}

export type BreakerState =
  | { state: 'closed'; failures: number }
  | { state: 'open'; openedAt: number; until: number }
  | { state: 'half_open' };

export const BreakerEvents = {
  BreakerOpened: 'BreakerOpened',
  BreakerHalfOpened: 'BreakerHalfOpened',
  BreakerClosed: 'BreakerClosed',
} as const;

// The pure core: (state, input) -> state. The shell below persists transitions.

export function breakerOnSuccess(_s: BreakerState): BreakerState {
  return { state: 'closed', failures: 0 };
}

export function breakerOnFailure(s: BreakerState, now: number, options: Required<BreakerOptions>): BreakerState {
  if (s.state === 'half_open') return { state: 'open', openedAt: now, until: now + options.cooldownMs };
  if (s.state === 'open') return s;
  const failures = s.failures + 1;
  return failures >= options.failureThreshold
    ? { state: 'open', openedAt: now, until: now + options.cooldownMs }
    : { state: 'closed', failures };
}

/** Open past its cool-down becomes half-open: the next call is the trial. */
export function breakerOnCall(s: BreakerState, now: number): BreakerState {
  return s.state === 'open' && now >= s.until ? { state: 'half_open' } : s;
}

function foldBreaker(events: readonly EventEnvelope[]): BreakerState {
  let s: BreakerState = { state: 'closed', failures: 0 };
  for (const e of events) {
    if (e.type === BreakerEvents.BreakerOpened) s = { state: 'open', ...(e.data as { openedAt: number; until: number }) };
    else if (e.type === BreakerEvents.BreakerHalfOpened) s = { state: 'half_open' };
    else if (e.type === BreakerEvents.BreakerClosed) s = { state: 'closed', failures: 0 };
  }
  return s;
}

interface Slot {
  state: BreakerState;
  version: number;
  /** A half-open breaker lets one trial through at a time; everyone else fails fast. */
  trialInFlight: boolean;
}

/**
 * Circuit breakers by name, shared by every run of a runtime. Transitions
 * (not every call) are events in the `breaker-<name>` stream, so they are
 * visible in the log and shared with other workers; the failure count of a
 * closed breaker stays in memory, which is what keeps a healthy call cheap.
 */
export class Breakers {
  readonly #store: EventStore;
  readonly #defaults: Required<BreakerOptions>;
  readonly #options = new Map<string, Required<BreakerOptions>>();
  readonly #slots = new Map<string, Promise<Slot>>();
  readonly #now: () => number;

  constructor(store: EventStore, now: () => number, defaults: BreakerOptions = {}) {
    this.#store = store;
    this.#now = now;
    this.#defaults = { failureThreshold: defaults.failureThreshold ?? 5, cooldownMs: defaults.cooldownMs ?? 30_000 };
  }

  configure(name: string, options: BreakerOptions): void {
    this.#options.set(name, { ...this.#defaults, ...options });
  }

  async state(name: string): Promise<BreakerState> {
    return (await this.#slot(name)).state;
  }

  /** Throws BreakerOpenError to fail fast; otherwise the call may proceed. */
  async acquire(name: string): Promise<void> {
    const slot = await this.#slot(name);
    const next = breakerOnCall(slot.state, this.#now());
    if (next !== slot.state) await this.#transition(name, slot, next);
    if (slot.state.state === 'open') throw new BreakerOpenError(name, slot.state.until);
    if (slot.state.state === 'half_open') {
      if (slot.trialInFlight) throw new BreakerOpenError(name, this.#now());
      slot.trialInFlight = true;
    }
  }

  async success(name: string): Promise<void> {
    const slot = await this.#slot(name);
    slot.trialInFlight = false;
    const next = breakerOnSuccess(slot.state);
    if (slot.state.state === 'closed') slot.state = next;
    else await this.#transition(name, slot, next);
  }

  async failure(name: string): Promise<void> {
    const slot = await this.#slot(name);
    slot.trialInFlight = false;
    const next = breakerOnFailure(slot.state, this.#now(), this.#options.get(name) ?? this.#defaults);
    if (next.state === slot.state.state) slot.state = next;
    else await this.#transition(name, slot, next);
  }

  #slot(name: string): Promise<Slot> {
    let slot = this.#slots.get(name);
    if (!slot) {
      slot = this.#store.read(streamOf(name)).then((events) => ({
        state: foldBreaker(events),
        version: events.at(-1)?.version ?? 0,
        trialInFlight: false,
      }));
      this.#slots.set(name, slot);
    }
    return slot;
  }

  async #transition(name: string, slot: Slot, next: BreakerState): Promise<void> {
    const type =
      next.state === 'open'
        ? BreakerEvents.BreakerOpened
        : next.state === 'half_open'
          ? BreakerEvents.BreakerHalfOpened
          : BreakerEvents.BreakerClosed;
    const data = next.state === 'open' ? { openedAt: next.openedAt, until: next.until } : {};
    slot.state = next;
    try {
      const result = await this.#store.append(streamOf(name), [{ type, data }], { expectedVersion: slot.version });
      slot.version = result.version;
    } catch (error) {
      if (!(error instanceof ConcurrencyError)) throw error;
      // Another worker moved this breaker first: its view wins.
      const events = await this.#store.read(streamOf(name));
      slot.state = foldBreaker(events);
      slot.version = events.at(-1)?.version ?? 0;
    }
  }
}

export function streamOf(breaker: string): string {
  return `breaker-${breaker}`;
}
