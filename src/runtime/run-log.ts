import type { EventEnvelope, NewEvent } from '../events/envelope.js';
import type { EventStore } from '../store/types.js';
import { RunNotFoundError } from './errors.js';
import { isRunEvent, type NewRunEvent, type RunEventOf, RunEvents } from './events.js';

export function streamOf(runId: string): string {
  return `run-${runId}`;
}

/**
 * A driver's copy of one run's stream: its RunStarted, and a contiguous run
 * of its newest events (all of them once `loadAll` was called). Every append
 * expects the version this copy ends at, so if anyone else (another worker, a
 * cancel, an operator's rollback) wrote in between, the append fails with
 * ConcurrencyError and this driver stops: two drivers can never both advance
 * a run.
 */
export class RunLog {
  readonly store: EventStore;
  readonly runId: string;
  readonly streamId: string;
  readonly started: RunEventOf<'RunStarted'>;
  /** Versions base..head, in order. */
  readonly events: EventEnvelope[];
  #queue: Promise<unknown> = Promise.resolve();

  constructor(store: EventStore, started: RunEventOf<'RunStarted'>, events: EventEnvelope[]) {
    this.store = store;
    this.runId = started.data.runId;
    this.streamId = streamOf(this.runId);
    this.started = started;
    this.events = events;
  }

  /** Reads a run's whole stream. */
  static async read(store: EventStore, runId: string): Promise<RunLog> {
    const events = await store.read(streamOf(runId));
    return new RunLog(store, startedOf(runId, events[0]), events);
  }

  /**
   * Reads a run's stream from its newest event back to the first event
   * `stopAt` says is far enough (inclusive), plus RunStarted: what the
   * rollback protocol reads, whatever the run's length.
   */
  static async readBack(store: EventStore, runId: string, stopAt: (event: EventEnvelope) => number | undefined): Promise<RunLog> {
    const stream = streamOf(runId);
    const newestFirst: EventEnvelope[] = [];
    let floor: number | undefined;
    let from: number | undefined;
    for (let limit = 16; floor === undefined; limit = Math.min(limit * 4, 1000)) {
      const page = await store.read(stream, { direction: 'backward', ...(from === undefined ? {} : { from }), limit });
      for (const event of page) {
        newestFirst.push(event);
        floor = stopAt(event);
        if (floor !== undefined) break;
      }
      from = (newestFirst.at(-1)?.version ?? 1) - 1;
      if (page.length < limit || from < 1) break;
    }
    const events = newestFirst.reverse();
    const lowest = events[0]?.version ?? 1;
    if (floor !== undefined && floor < lowest) events.unshift(...(await store.read(stream, { from: Math.max(1, floor), to: lowest - 1 })));
    const first = events[0]?.version === 1 ? events[0] : (await store.read(stream, { from: 1, to: 1 }))[0];
    return new RunLog(store, startedOf(runId, first), events);
  }

  /** The first version held. */
  get base(): number {
    return this.events[0]?.version ?? 1;
  }

  /** The version the stream ends at, as far as this copy knows. */
  get version(): number {
    return this.events[this.events.length - 1]?.version ?? 0;
  }

  get last(): EventEnvelope {
    return this.events[this.events.length - 1] ?? this.started;
  }

  /** Reads what this copy lacks before its base: a replay needs the whole journal. */
  async loadAll(): Promise<void> {
    if (this.base <= 1) return;
    const older = await this.store.read(this.streamId, { from: 1, to: this.base - 1 });
    this.events.unshift(...older);
  }

  /** Extends this copy back to `version` (inclusive). */
  async loadFrom(version: number): Promise<void> {
    if (this.base <= version) return;
    const older = await this.store.read(this.streamId, { from: Math.max(1, version), to: this.base - 1 });
    this.events.unshift(...older);
  }

  /** Appends runtime events, their data checked against their type. */
  record(...events: NewRunEvent[]): Promise<EventEnvelope[]> {
    return this.append(events);
  }

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

function startedOf(runId: string, first: EventEnvelope | undefined): RunEventOf<'RunStarted'> {
  if (!first) throw new RunNotFoundError(runId);
  if (!isRunEvent(first, RunEvents.RunStarted)) throw new RunNotFoundError(runId);
  return first;
}
