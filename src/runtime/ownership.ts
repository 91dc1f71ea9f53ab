import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { EventStore, Fence, StreamLease } from '../store/types.js';

/** How often a runtime looks for news (requests, signals) while it drives runs: a local read of a counter. */
const WATCH_MS = 20;

export interface OwnershipOptions {
  /** How long a run stays this runtime's without renewal; renewed every third of it. */
  leaseMs: number;
  /** Names this runtime in the leases (and in `drivenBy`). Default host:pid:random. */
  owner?: string;
}

/**
 * The runs (and reactions) one runtime owns: at most one driver per run, across processes.
 * A run is driven only under its lease (store/leases.ts), taken before the
 * first read of a drive, renewed while the drive goes on, released when it
 * rests; every append of the drive carries the lease as a fence, so a driver
 * that lost its run (paused past the lease while another took over) writes
 * nothing more. It also watches the store for news, so the runs it drives
 * learn promptly of requests made elsewhere.
 */
export class Ownership {
  readonly owner: string;
  readonly leaseMs: number;
  readonly #store: EventStore;
  readonly #held = new Map<string, { fence: Fence; lost: (error: Error) => void }>();
  readonly #watchers = new Set<() => void>();
  #renewTimer: NodeJS.Timeout | undefined;
  #watchTimer: NodeJS.Timeout | undefined;
  #counter: number | undefined;
  #renewing = false;
  #watching = false;

  constructor(store: EventStore, options: OwnershipOptions) {
    this.#store = store;
    this.leaseMs = options.leaseMs;
    this.owner = options.owner ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  }

  /**
   * Takes a stream's lease (a run's, for a drive; a reaction's control
   * stream): the fence its appends carry, or the lease of whoever holds it
   * now. `lost` is called should a renewal find the lease taken over.
   */
  async take(streamId: string, lost: (error: Error) => void): Promise<{ fence: Fence } | { holder: StreamLease }> {
    const got = await this.#store.acquireLease(streamId, this.owner, this.leaseMs);
    if (!got.acquired) return { holder: got.holder };
    const fence = { owner: this.owner, epoch: got.lease.epoch };
    this.#held.set(streamId, { fence, lost });
    this.#renewTimer ??= setInterval(() => void this.#renew(), Math.max(10, Math.floor(this.leaseMs / 3))).unref();
    return { fence };
  }

  /** Lets the stream go (a lease taken over since stays with its new holder). */
  async release(streamId: string): Promise<void> {
    const held = this.#held.get(streamId);
    if (!held) return;
    this.#held.delete(streamId);
    if (this.#held.size === 0) this.#stopRenewing();
    await this.#store.releaseLease(streamId, this.owner, held.fence.epoch).catch(() => {});
  }

  /** Who holds the stream's lease now, if anyone does (a lapsed or released lease is no one's). */
  async holder(streamId: string): Promise<StreamLease | undefined> {
    const lease = await this.#store.leaseOf(streamId);
    return lease && lease.until > Date.now() ? lease : undefined;
  }

  /** Calls `listener` whenever the store may have changed (any process's append), while subscribed. */
  watch(listener: () => void): () => void {
    this.#watchers.add(listener);
    this.#watchTimer ??= setInterval(() => void this.#look(), WATCH_MS).unref();
    return () => {
      this.#watchers.delete(listener);
      if (this.#watchers.size === 0) {
        clearInterval(this.#watchTimer);
        this.#watchTimer = undefined;
        this.#counter = undefined;
      }
    };
  }

  close(): void {
    this.#stopRenewing();
    clearInterval(this.#watchTimer);
    this.#watchTimer = undefined;
    this.#watchers.clear();
  }

  #stopRenewing(): void {
    clearInterval(this.#renewTimer);
    this.#renewTimer = undefined;
  }

  async #look(): Promise<void> {
    if (this.#watching) return;
    this.#watching = true;
    try {
      const counter = await this.#store.changeCounter();
      if (counter === this.#counter) return;
      this.#counter = counter;
      for (const listener of this.#watchers) listener();
    } catch {
      // A closed store or a lost connection: the drives see it on their own.
    } finally {
      this.#watching = false;
    }
  }

  async #renew(): Promise<void> {
    if (this.#renewing || this.#held.size === 0) return;
    this.#renewing = true;
    const snapshot = [...this.#held];
    try {
      const kept = new Set(
        await this.#store.renewLeases(
          this.owner,
          snapshot.map(([streamId]) => streamId),
          this.leaseMs,
        ),
      );
      for (const [streamId, held] of snapshot) {
        if (kept.has(streamId) || this.#held.get(streamId) !== held) continue;
        this.#held.delete(streamId);
        held.lost(new Error(`the lease on ${streamId} was taken over by another process`));
      }
    } catch {
      // The store is unreachable: the fence keeps a lapsed holder from writing, and the next renewal tries again.
    } finally {
      this.#renewing = false;
    }
  }
}
