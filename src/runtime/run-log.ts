import type { EventEnvelope, NewEvent } from '../events/envelope.js';
import type { EventStore } from '../store/types.js';

export function streamOf(runId: string): string {
  return `run-${runId}`;
}

/**
 * A worker's copy of one run's stream. Every append expects the version this
 * worker last saw, so if anyone else (another worker, a cancel, an operator's
 * rollback) wrote in between, the append fails with ConcurrencyError and this
 * worker stops: two workers can never both advance a run.
 */
export class RunLog {
  readonly store: EventStore;
  readonly runId: string;
  readonly streamId: string;
  readonly events: EventEnvelope[];

  constructor(store: EventStore, runId: string, events: EventEnvelope[]) {
    this.store = store;
    this.runId = runId;
    this.streamId = streamOf(runId);
    this.events = events;
  }

  get version(): number {
    return this.events.length;
  }

  #queue: Promise<unknown> = Promise.resolve();

  /**
   * Appends are queued so that steps running in parallel (Promise.all over
   * ctx.step) each expect the version the previous append left, instead of
   * all expecting the same one and tripping over each other.
   */
  append(events: NewEvent[]): Promise<EventEnvelope[]> {
    const next = this.#queue.then(async () => {
      const result = await this.store.append(this.streamId, events, { expectedVersion: this.version });
      this.events.push(...result.events);
      return result.events;
    });
    this.#queue = next.catch(() => {});
    return next;
  }
}
