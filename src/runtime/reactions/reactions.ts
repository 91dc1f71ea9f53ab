import { setTimeout as delay } from 'node:timers/promises';
import { ValidationError } from '../../events/errors.js';
import { storageBackendOf } from '../../store/event-store.js';
import type { Ownership } from '../ownership.js';
import type { Runtime } from '../runtime.js';
import { checkReactions, type Reaction } from './definition.js';
import { type ReactionEvent, Reactor } from './reactor.js';
import { type ReactionStatus, reactionStatuses, settleParked } from './status.js';

/**
 * The reactions a runtime runs (`createRuntime({ reactions })`): each follows
 * the log in the background while this process holds its lease, so any number
 * of processes may be given the same reactions. Status, skip and retry read
 * and write the log, and work from any process (the CLI, the HTTP API).
 */
export class Reactions {
  readonly store: Runtime['store'];
  readonly #reactors: Reactor[];
  readonly #stop = new AbortController();
  readonly #loops: Promise<void>[];

  /** Use createRuntime({ reactions }). */
  constructor(runtime: Runtime, own: Ownership, reactions: readonly Reaction[], onEvent: (event: ReactionEvent) => void) {
    checkReactions(reactions);
    this.store = runtime.store;
    const backend = storageBackendOf(runtime.store);
    if (reactions.length > 0 && !backend)
      throw new ValidationError('reactions need a store opened by openStore (memory, SQLite or PostgreSQL)');
    this.#reactors = reactions.map((r) => new Reactor(runtime, backend as NonNullable<typeof backend>, own, r, onEvent));
    this.#loops = this.#reactors.map((r) => r.run(this.#stop.signal));
  }

  /** The names of the reactions run here. */
  get names(): string[] {
    return this.#reactors.map((r) => r.reaction.name);
  }

  /** Every reaction that has run against this log (here or in another process), from the log. */
  status(): Promise<ReactionStatus[]> {
    return reactionStatuses(this.store);
  }

  /** Goes past the event a reaction is parked on without acting on it (recorded, with who and why). */
  skip(name: string, options: { actor?: string; reason?: string } = {}): Promise<ReactionStatus> {
    return settleParked(this.store, name, 'skip', options);
  }

  /** Tries the event a reaction is parked on again, with fresh attempts. */
  retry(name: string, options: { actor?: string; reason?: string } = {}): Promise<ReactionStatus> {
    return settleParked(this.store, name, 'retry', options);
  }

  /**
   * Resolves once every reaction run here has handled the log up to its head
   * as of the call, or is parked. For tests and scripts; `timeoutMs` (default
   * 30 s) ends the wait with an error naming the reactions still behind.
   */
  async settled(options: { timeoutMs?: number } = {}): Promise<void> {
    const head = await this.store.headPosition();
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    for (;;) {
      const statuses = new Map((await this.status()).map((s) => [s.name, s]));
      const behind = this.#reactors.filter((r) => {
        const s = statuses.get(r.reaction.name);
        if (s?.state === 'parked') return false;
        return Math.max(r.position ?? -1, s?.position ?? -1) < head;
      });
      if (behind.length === 0) return;
      if (Date.now() > deadline)
        throw new ValidationError(`reactions still behind position ${head}: ${behind.map((r) => r.reaction.name).join(', ')}`);
      await delay(10);
    }
  }

  /** Stops following the log (what was acted on is kept; the rest waits for the next process). */
  async close(): Promise<void> {
    this.#stop.abort();
    await Promise.allSettled(this.#loops);
  }
}
