import type { EventEnvelope, NewEvent } from '../events/envelope.js';
import type { ExpectedVersion } from '../events/errors.js';
import { uuidv7 } from '../events/ids.js';
import type { EventStore, Fence, StreamAppend } from '../store/types.js';
import { RunNotFoundError } from './errors.js';
import { isRunEvent, type NewRunEvent, type RunEventOf, RunEvents, type RunStartedData } from './events.js';

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
 *
 * Some facts may wait for the next append (`defer`): they ride in the same
 * commit as whatever is written next, so a step's completion and the next
 * step's start are one commit. Only facts whose loss a crash cannot turn
 * into a wrong effect are deferred (see Pass); a deferred fact has its
 * version from the moment it is deferred, since this copy is the run's only
 * writer and writes in the order facts were given, and its `recordedAt` from
 * that moment too: a step that ended, then a minute of the code's own work,
 * then the next step's start, read as a minute between the two, not none.
 */
export class RunLog {
  readonly store: EventStore;
  readonly runId: string;
  readonly streamId: string;
  #started: RunEventOf<'RunStarted'>;
  /** Versions base..head, in order: what is durable. */
  readonly events: EventEnvelope[];
  #queue: Promise<unknown> = Promise.resolve();
  /** Events given to appends not written yet. */
  #queued = 0;
  /** The next append, gathering the appends made until its turn comes. */
  #gathering: Gathering | undefined;
  /** Events waiting for the next append. */
  #deferred: NewEvent[] = [];
  /** Set by the first append that fails: the appends queued behind it were built on it, so they fail too. */
  #broken: { error: unknown } | undefined;
  /** The lease this copy's driver holds: every append carries it, so a driver that lost the run writes nothing more. */
  fence: Fence | undefined;

  constructor(store: EventStore, started: RunEventOf<'RunStarted'>, events: EventEnvelope[]) {
    this.store = store;
    this.runId = started.data.runId;
    this.streamId = streamOf(this.runId);
    this.#started = started;
    this.events = events;
  }

  /**
   * A run not written yet: its RunStarted is deferred, so it is written with
   * the run's first step (one commit, not two). The first append expects no
   * stream: if the run exists already it fails with ConcurrencyError, before
   * any step of this copy ran.
   */
  static fresh(store: EventStore, data: RunStartedData, now: Date): RunLog {
    const id = uuidv7();
    const provisional = {
      id,
      streamId: streamOf(data.runId),
      version: 1,
      position: 0,
      type: RunEvents.RunStarted,
      schemaVersion: 1,
      data,
      metadata: {},
      recordedAt: now.toISOString(),
      hash: '',
    } satisfies RunEventOf<'RunStarted'>;
    const log = new RunLog(store, provisional, []);
    log.#deferred.push({ id, type: RunEvents.RunStarted, data, recordedAt: wallTime() });
    return log;
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

  /** The run's RunStarted: the stored one once written. */
  get started(): RunEventOf<'RunStarted'> {
    return this.#started;
  }

  /** The version the stream ends at, as far as this copy knows: what is durable. */
  get version(): number {
    return this.events[this.events.length - 1]?.version ?? 0;
  }

  /** The version the next fact given to this copy will have (deferred and queued ones before it). */
  get next(): number {
    return this.version + this.#queued + this.#deferred.length + 1;
  }

  /** Whether facts wait for an append. */
  get pending(): boolean {
    return this.#deferred.length > 0;
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

  /** Appends runtime events, their data checked against their type, with whatever was deferred before them. */
  record(...events: NewRunEvent[]): Promise<EventEnvelope[]> {
    return this.append(events);
  }

  /**
   * Appends `events` (after whatever was deferred) together with another
   * stream's append, in one commit: a request's effect and the inbox's record
   * that it was carried out. Only at a safe point, with no append in flight.
   */
  async recordWith(events: NewEvent[], other: StreamAppend): Promise<void> {
    if (this.#queued > 0) throw new Error('recordWith needs a run log with no append in flight');
    const batch = [...this.#deferred, ...events];
    this.#deferred = [];
    try {
      if (this.#broken) throw this.#broken.error;
      if (batch.length === 0) {
        await this.store.appendMany([other]);
        return;
      }
      const events = inTimeOrder(batch, this.events.at(-1)?.recordedAt);
      const [result] = await this.store.appendMany([{ streamId: this.streamId, events, ...this.#guard() }, other]);
      this.events.push(...(result as { events: EventEnvelope[] }).events);
    } catch (error) {
      this.#broken ??= { error };
      throw error;
    }
  }

  /** What every append of the run's stream expects: the version this copy ends at, and the driver's lease. */
  #guard(): { expectedVersion: ExpectedVersion; fence?: Fence } {
    const expectedVersion = this.version === 0 ? 'no_stream' : this.version;
    return this.fence ? { expectedVersion, fence: this.fence } : { expectedVersion };
  }

  /** Holds facts for the next append, stamped with the time they happened; returns the version the first will have. */
  defer(...events: NewEvent[]): number {
    const version = this.next;
    const now = wallTime();
    this.#deferred.push(...events.map((event) => (event.recordedAt === undefined ? { ...event, recordedAt: now } : event)));
    return version;
  }

  /** Writes what was deferred, if anything. */
  async flush(): Promise<void> {
    if (this.pending) await this.append([]);
  }

  /**
   * Appends `events` after whatever was deferred, in one commit; returns the
   * envelopes of `events`. Appends wait their turn, so that steps running in
   * parallel (Promise.all over ctx.step) each expect the version the previous
   * append left, instead of all expecting the same one and tripping over each
   * other; appends made while one is being written go together in the next
   * (the starts of ten parallel steps are one or two commits, not ten). The
   * deferred facts are taken now, not when the append's turn comes, so facts
   * are written in the order they were given.
   */
  append(events: NewEvent[]): Promise<EventEnvelope[]> {
    const batch = this.#deferred.length > 0 ? [...this.#deferred, ...events] : events;
    if (batch.length === 0) return Promise.resolve([]);
    const from = (this.#gathering?.events.length ?? 0) + batch.length - events.length;
    this.#deferred = [];
    this.#queued += batch.length;
    if (this.#gathering) this.#gathering.events.push(...batch);
    else {
      const group: Gathering = { events: [...batch], written: Promise.resolve([]) };
      group.written = this.#queue.then(() => {
        if (this.#gathering === group) this.#gathering = undefined;
        return this.#write(group.events);
      });
      this.#gathering = group;
      this.#queue = group.written.catch(() => {});
    }
    return this.#gathering.written.then((written) => written.slice(from, from + events.length));
  }

  async #write(batch: NewEvent[]): Promise<EventEnvelope[]> {
    try {
      if (this.#broken) throw this.#broken.error;
      const result = await this.store.append(this.streamId, inTimeOrder(batch, this.events.at(-1)?.recordedAt), this.#guard());
      this.events.push(...result.events);
      const [first] = result.events;
      if (first && first.version === 1 && isRunEvent(first, RunEvents.RunStarted)) this.#started = first;
      return result.events;
    } catch (error) {
      this.#broken ??= { error };
      throw error;
    } finally {
      this.#queued -= batch.length;
    }
  }
}

/** The time as the store writes it into recordedAt (ISO-8601 UTC, from the same clock as the store's). */
export function wallTime(): string {
  return new Date().toISOString();
}

/**
 * A batch with every event's recordedAt set: a held fact keeps the time it happened, the rest get now; none
 * earlier than the one before it (the stream's last event, `floor`, then the batch in order), since a stream's
 * times only grow (facts held while an append queued ahead of them was written could otherwise go back).
 */
function inTimeOrder(batch: readonly NewEvent[], floor: string | undefined): NewEvent[] {
  const now = wallTime();
  let latest = floor ?? '';
  return batch.map((event) => {
    const at = event.recordedAt ?? now;
    // ISO-8601 UTC times of one format order as strings do.
    if (at > latest) latest = at;
    return latest === event.recordedAt ? event : { ...event, recordedAt: latest };
  });
}

/** Appends made while another is being written: they go together, next. */
interface Gathering {
  events: NewEvent[];
  written: Promise<EventEnvelope[]>;
}

function startedOf(runId: string, first: EventEnvelope | undefined): RunEventOf<'RunStarted'> {
  if (!first) throw new RunNotFoundError(runId);
  if (!isRunEvent(first, RunEvents.RunStarted)) throw new RunNotFoundError(runId);
  return first;
}
