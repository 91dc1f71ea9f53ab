import type { EventEnvelope, NewEvent } from '../../events/envelope.js';
import { ConcurrencyError } from '../../events/errors.js';
import type { EventStore } from '../../store/types.js';
import { answers, type StreamCache } from './stream-cache.js';
import type { StreamIndex } from './thread-index.js';

/** Appends retried after losing a race before the error reaches the caller. */
export const MAX_ATTEMPTS = 8;
/** A snapshot of a stream's index every this many events: a saver opening a thread reads at most that many. */
const SNAPSHOT_EVERY = 64;

/** A put or putWrites waiting for its stream's next append. */
export interface Pending {
  put: boolean;
  /** The checkpoint whose writes it must know (putWrites). */
  requires?: string;
  /** The event to append, decided against the index as it is now; undefined when there is nothing to write. */
  build(index: StreamIndex): NewEvent | undefined;
  /** After a lost race: the error when the events appended meanwhile make this one unsound. */
  conflict?(meanwhile: EventEnvelope[]): Error | undefined;
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * The saver's writes, one stream at a time: a lock per stream (prune and
 * the queue's appends take turns on it) and a queue per stream whose waiting
 * calls go out together in one append.
 */
export class WriteQueue {
  readonly #store: EventStore;
  readonly #cache: StreamCache;
  readonly #locks = new Map<string, Promise<void>>();
  readonly #queues = new Map<string, Pending[]>();

  constructor(store: EventStore, cache: StreamCache) {
    this.#store = store;
    this.#cache = cache;
  }

  /**
   * Group commit per stream: calls that arrive while an append is in flight
   * (parallel tasks' writes, a put overlapping them under LangGraph's default
   * async durability) go out together in the next append, one commit. A
   * batch holds at most one put, because a put's blobs are encoded against
   * the index as it stands before it.
   */
  submit(streamId: string, op: Omit<Pending, 'resolve' | 'reject'>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const queue = this.#queues.get(streamId);
      if (queue) {
        queue.push({ ...op, resolve, reject });
        return;
      }
      this.#queues.set(streamId, [{ ...op, resolve, reject }]);
      void this.exclusive(streamId, () => this.#drain(streamId));
    });
  }

  async #drain(streamId: string): Promise<void> {
    const queue = this.#queues.get(streamId) as Pending[];
    try {
      let index = this.#cache.touch(streamId) ?? (await this.#cache.build(streamId, true));
      while (queue.length > 0) {
        const second = queue.findIndex((op, i) => op.put && queue.slice(0, i).some((o) => o.put));
        const batch = queue.splice(0, second === -1 ? queue.length : second);
        for (const op of batch) {
          if (op.requires !== undefined && !answers(index, { checkpoint: op.requires }))
            index = await this.#cache.load(streamId, { checkpoint: op.requires });
        }
        await this.#commit(streamId, index, batch);
      }
    } catch (error) {
      for (const op of queue.splice(0)) op.reject(error);
    } finally {
      this.#queues.delete(streamId);
    }
  }

  async #commit(streamId: string, index: StreamIndex, batch: Pending[]): Promise<void> {
    for (let attempt = 1; batch.length > 0; attempt++) {
      const events: NewEvent[] = [];
      const sent: Pending[] = [];
      for (const op of batch) {
        const event = op.build(index);
        if (event) {
          events.push(event);
          sent.push(op);
        } else op.resolve();
      }
      if (events.length === 0) return;
      const withPut = sent.some((op) => op.put);
      try {
        // Writes merge (first regular write wins, special ones replace, in log order), so alone they need no version.
        const result = await this.#store.append(streamId, events, { expectedVersion: withPut ? index.version : 'any' });
        await this.#cache.absorb(streamId, index, result.events);
        if (index.version - index.snapshotAt >= SNAPSHOT_EVERY) await this.#cache.snapshot(streamId, index);
        for (const op of sent) op.resolve();
        return;
      } catch (error) {
        if (!(error instanceof ConcurrencyError) || attempt >= MAX_ATTEMPTS) {
          for (const op of sent) op.reject(error);
          return;
        }
        const meanwhile = await this.#cache.catchUp(streamId, index);
        batch = sent.filter((op) => {
          const conflict = op.conflict?.(meanwhile);
          if (conflict) op.reject(conflict);
          return !conflict;
        });
      }
    }
  }

  async exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => mine);
    this.#locks.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.#locks.get(key) === tail) this.#locks.delete(key);
    }
  }
}
