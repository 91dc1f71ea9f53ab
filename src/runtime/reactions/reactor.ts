import { setTimeout as delay } from 'node:timers/promises';
import type { EventEnvelope } from '../../events/envelope.js';
import { ConcurrencyError, LeaseLostError, StoreClosedError } from '../../events/errors.js';
import { rollbackTarget } from '../../projections/effective-history.js';
import { appendSystem } from '../../store/event-store.js';
import type { EventFilter, EventStore, Fence, StorageBackend } from '../../store/types.js';
import { wakeUp } from '../../store/wake-up.js';
import { type SerializedError, serializeError } from '../errors.js';
import type { Ownership } from '../ownership.js';
import { backoffDelay } from '../policy.js';
import type { Runtime } from '../runtime.js';
import { type ActionOutcome, carryOut, isPermanent, startedFor } from './carry-out.js';
import { type ControlState, controlState, EMPTY_CONTROL, ReactionEvents } from './control.js';
import { actionsOf, consumerOf, controlStreamOf, keyOf, matches, type Reaction, type ReactionResult } from './definition.js';

/** What a reaction did, for logs and metrics (`onEvent`). */
export type ReactionEvent =
  | { type: 'acted'; reaction: string; position: number; eventId: string; outcomes: ActionOutcome[] }
  /** A rollback undid an event the reaction had reached: what `undone` asked for. */
  | { type: 'undone'; reaction: string; position: number; eventId: string; outcomes: ActionOutcome[] }
  /** A try of `act` failed; another follows after `retryInMs`. */
  | { type: 'retrying'; reaction: string; position: number; eventId: string; attempt: number; retryInMs: number; error: SerializedError }
  | { type: 'parked'; reaction: string; position: number; eventId: string; error: SerializedError }
  /** The store failed under the reaction (a lost connection): it tries again shortly. */
  | { type: 'error'; reaction: string; error: SerializedError };

/** Events read per page. */
const PAGE = 200;
/** How often a position is stored while nothing matches, and after how long a quiet log (each page that acted stores it at once). */
const SAVE_EVERY_MS = 250;
/** Pause after the store failed under the loop. */
const TROUBLE_MS = 500;

interface Failure {
  event: EventEnvelope;
  error: unknown;
  attempts: number;
}

/**
 * Runs one reaction in this process while it holds the reaction's lease (its
 * control stream's): reads the log from the stored position a page at a time,
 * acts on each matching event that still counts, stores the position after
 * the page, and parks on an event whose handling keeps failing. Another
 * process with the same reaction waits for the lease and takes over where the
 * stored position says; what was acted on after it is acted on again, and the
 * actions' keys make that a no-op.
 */
export class Reactor {
  readonly reaction: Reaction;
  /** The position handled so far while running here (read by `settled`). */
  position: number | undefined;
  readonly #runtime: Runtime;
  readonly #store: EventStore;
  readonly #backend: StorageBackend;
  readonly #own: Ownership;
  readonly #onEvent: (event: ReactionEvent) => void;
  readonly #stream: string;
  #control: EventEnvelope[] = [];
  #state: ControlState = EMPTY_CONTROL;
  #savedAt = 0;
  #saved = -1;
  /** Ends the current wait for the log to grow (the store's change counter moved). */
  #poke: (() => void) | undefined;

  constructor(runtime: Runtime, backend: StorageBackend, own: Ownership, reaction: Reaction, onEvent: (event: ReactionEvent) => void) {
    this.reaction = reaction;
    this.#runtime = runtime;
    this.#store = runtime.store;
    this.#backend = backend;
    this.#own = own;
    this.#onEvent = onEvent;
    this.#stream = controlStreamOf(reaction.name);
  }

  /** Until `signal` aborts: wait for the lease, run the reaction while it is held. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const lost = new AbortController();
      const held = AbortSignal.any([signal, lost.signal]);
      try {
        const taken = await this.#own.take(this.#stream, (error) => lost.abort(error));
        if ('holder' in taken) {
          // Another process runs it: look again when its lease could have lapsed (at once when its process is gone).
          await delay(Math.min(1_000, Math.ceil(this.#own.leaseMs / 3)), undefined, { signal }).catch(() => {});
          continue;
        }
        try {
          await this.#follow(taken.fence, held);
        } finally {
          this.position = undefined;
          await this.#own.release(this.#stream);
        }
      } catch (error) {
        // Closed under it (the runtime was not): nothing more to follow.
        if (signal.aborted || error instanceof StoreClosedError) return;
        if (!(error instanceof LeaseLostError))
          this.#onEvent({ type: 'error', reaction: this.reaction.name, error: serializeError(error) });
        await delay(TROUBLE_MS, undefined, { signal }).catch(() => {});
      }
    }
  }

  async #follow(fence: Fence, signal: AbortSignal): Promise<void> {
    await this.#readControl();
    if (this.#state.version === 0) await this.#begin(fence);
    const position = (await this.#store.checkpointOf(consumerOf(this.reaction.name))) ?? this.#state.from;
    this.#saved = position;
    this.position = position;
    // One watch for as long as the reaction runs here: each wait is woken through #poke.
    const unwatch = this.#own.watch(() => this.#poke?.());
    try {
      await this.#pages(position, fence, signal);
    } finally {
      unwatch();
      // What was read past without acting since the last save (the store may be closing: then it is read again next time).
      if (this.position !== undefined) await this.#save(this.position, true).catch(() => {});
    }
  }

  async #pages(from: number, fence: Fence, signal: AbortSignal): Promise<void> {
    let position = from;
    while (!signal.aborted) {
      // Listen before reading, so an append between the read and the wait still wakes us.
      const woken = this.#wake(signal);
      // Parked, it waits for an operator's skip or retry. Otherwise the control stream holds nothing new: while this
      // process holds the lease only its own fenced appends park it, and skips and retries are refused unless parked.
      if (this.#state.parked) {
        await this.#readControl();
        if (this.#state.parked) {
          await woken.promise;
          continue;
        }
      }
      const page = await this.#backend.readAll(position + 1, PAGE, this.#filter());
      const events = page.events.map((e) => this.#store.registry.upcastEvent(e));
      const full = events.length === PAGE;
      const to = full ? (events.at(-1) as EventEnvelope).position : Math.max(page.scannedTo, position);
      const failure = events.length > 0 ? await this.#page(events, signal) : undefined;
      if (signal.aborted) break;
      if (failure) {
        woken.cancel();
        await this.#park(failure, fence);
        position = Math.max(position, failure.event.position - 1);
        this.position = position;
        await this.#save(position, true);
        continue;
      }
      position = to;
      this.position = position;
      await this.#save(position, events.length > 0);
      if (full) woken.cancel();
      else await this.#idle(woken.promise, position);
    }
  }

  /** Caught up: waits for the log to grow, storing the position read past meanwhile should nothing come for a while. */
  async #idle(woken: Promise<void>, position: number): Promise<void> {
    if (position <= this.#saved) return woken;
    const quiet = await Promise.race([woken.then(() => false), delay(SAVE_EVERY_MS, true, { ref: false })]);
    if (!quiet) return;
    await this.#save(position, true);
    return woken;
  }

  /**
   * Resolves when the log may have grown: an append here or a NOTIFY (the
   * backend's wake-up), or the store's change counter moving (another
   * process's commit to the SQLite file, seen within 20 ms rather than at the
   * backend's poll).
   */
  #wake(signal: AbortSignal): { promise: Promise<void>; cancel: () => void } {
    const woken = wakeUp(this.#backend, signal);
    this.#poke = woken.cancel;
    return woken;
  }

  /** The first process to run the reaction says where it starts. */
  async #begin(fence: Fence): Promise<void> {
    const from = this.reaction.from === 'now' ? await this.#store.headPosition() : 0;
    try {
      await appendSystem(this.#store, {
        streamId: this.#stream,
        events: [{ type: ReactionEvents.ReactionStarted, data: { name: this.reaction.name, from } }],
        expectedVersion: 'no_stream',
        fence,
      });
    } catch (error) {
      if (!(error instanceof ConcurrencyError)) throw error;
    }
    await this.#readControl();
  }

  async #readControl(): Promise<void> {
    const news = await this.#store.read(this.#stream, { from: this.#state.version + 1 });
    if (news.length === 0) return;
    this.#control = [...this.#control, ...news];
    this.#state = controlState(this.#control);
  }

  #filter(): EventFilter {
    const { types, streamPrefix } = this.reaction.on;
    const withMarkers = types && this.reaction.undone !== 'keep' ? [...new Set([...types, ReactionMarker])] : types;
    return { ...(withMarkers ? { types: withMarkers } : {}), ...(streamPrefix ? { streamPrefix } : {}) };
  }

  /**
   * Acts on a page: the events of one stream in order, streams side by side
   * (up to the reaction's concurrency). After a failure at position p, events
   * before p are still handled (the stored position will be p - 1) and those
   * after it wait, to be acted on once the reaction moves past p.
   */
  async #page(events: EventEnvelope[], signal: AbortSignal): Promise<Failure | undefined> {
    const due = events.filter((e) => !this.#state.skipped.has(e.position));
    const undone = await this.#undoneOf(due.filter((e) => rollbackTarget(e) === undefined));
    const byStream = new Map<string, EventEnvelope[]>();
    for (const event of due) {
      const marker = rollbackTarget(event) !== undefined;
      if (marker ? this.reaction.undone === 'keep' : undone.has(event.id)) continue;
      const queue = byStream.get(event.streamId);
      if (queue) queue.push(event);
      else byStream.set(event.streamId, [event]);
    }
    const queues = [...byStream.values()];
    let failure: Failure | undefined;
    const lane = async () => {
      for (let queue = queues.shift(); queue; queue = queues.shift()) {
        for (const event of queue) {
          if (signal.aborted || (failure && event.position > failure.event.position)) break;
          const failed = await this.#handle(event, signal);
          if (failed && (!failure || failed.event.position < failure.event.position)) failure = failed;
          if (failed) break;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.reaction.concurrency, queues.length) }, lane));
    return failure;
  }

  /** The ids of the page's events a rollback of their stream has undone since (they are not acted on). */
  async #undoneOf(events: EventEnvelope[]): Promise<Set<string>> {
    const firstOf = new Map<string, number>();
    for (const e of events) if (!firstOf.has(e.streamId)) firstOf.set(e.streamId, e.version);
    const undone = new Set<string>();
    for (const [streamId, version] of firstOf) {
      const later = await this.#store.read(streamId, { from: version + 1 });
      const markers = later.flatMap((m) => {
        const target = rollbackTarget(m);
        return target === undefined ? [] : [{ version: m.version, target }];
      });
      if (markers.length === 0) continue;
      for (const e of events) {
        if (e.streamId === streamId && markers.some((m) => m.version > e.version && m.target < e.version)) undone.add(e.id);
      }
    }
    return undone;
  }

  /** One event (or marker) with retries; the failure when it parks the reaction. */
  async #handle(event: EventEnvelope, signal: AbortSignal): Promise<Failure | undefined> {
    const { name, retry } = this.reaction;
    for (let attempt = 1; ; attempt++) {
      try {
        const marker = rollbackTarget(event) !== undefined;
        const outcomes = marker ? await this.#undo(event) : await this.#act(event);
        if (outcomes)
          this.#onEvent({ type: marker ? 'undone' : 'acted', reaction: name, position: event.position, eventId: event.id, outcomes });
        return undefined;
      } catch (error) {
        if (signal.aborted) return undefined;
        if (isPermanent(error) || attempt >= retry.attempts) return { event, error, attempts: attempt };
        const retryInMs = backoffDelay(retry, attempt, Math.random());
        this.#onEvent({
          type: 'retrying',
          reaction: name,
          position: event.position,
          eventId: event.id,
          attempt,
          retryInMs,
          error: serializeError(error),
        });
        await delay(retryInMs, undefined, { signal }).catch(() => {});
      }
    }
  }

  /** An event: what `act` answers, carried out under the event's keys. Undefined when the event is not the reaction's. */
  async #act(event: EventEnvelope): Promise<ActionOutcome[] | undefined> {
    if (!matches(this.reaction, event)) return undefined;
    return this.#carryOut(event, await this.reaction.act(event), '');
  }

  /** A RolledBack marker: for each matching event it undid that the reaction had reached, what `undone` asks. */
  async #undo(marker: EventEnvelope): Promise<ActionOutcome[] | undefined> {
    const target = rollbackTarget(marker) as number;
    if (marker.version - 1 <= target) return undefined;
    const undone = (await this.#store.read(marker.streamId, { from: target + 1, to: marker.version - 1 })).filter(
      (e) => e.position > this.#state.from && rollbackTarget(e) === undefined && matches(this.reaction, e),
    );
    const outcomes: ActionOutcome[] = [];
    const how = this.reaction.undone;
    for (const event of undone) {
      const started = await startedFor(this.#runtime, this.reaction.name, event.id);
      const answer: ReactionResult =
        typeof how === 'function'
          ? await how(event, started)
          : how === 'cancel'
            ? started.map((id) => ({ cancel: id, reason: `event ${event.id} was rolled back` }))
            : how === 'rollback'
              ? started.map((id) => ({ rollback: id, reason: `event ${event.id} was rolled back` }))
              : undefined;
      outcomes.push(...(await this.#carryOut(event, answer, 'undone:')));
    }
    return outcomes.length > 0 ? outcomes : undefined;
  }

  async #carryOut(event: EventEnvelope, answer: ReactionResult, what: string): Promise<ActionOutcome[]> {
    const { name } = this.reaction;
    const actions = actionsOf(name, answer);
    const outcomes: ActionOutcome[] = [];
    for (const [i, action] of actions.entries()) outcomes.push(await carryOut(this.#runtime, name, keyOf(name, event.id, i, what), action));
    return outcomes;
  }

  /** Records where the reaction stopped and why (fenced: a process that lost the reaction writes nothing). */
  async #park(failure: Failure, fence: Fence): Promise<void> {
    const { event } = failure;
    const error = serializeError(failure.error);
    await appendSystem(this.#store, {
      streamId: this.#stream,
      events: [
        {
          type: ReactionEvents.ReactionParked,
          data: {
            position: event.position,
            eventId: event.id,
            streamId: event.streamId,
            type: event.type,
            error: { ...error },
            attempts: failure.attempts,
          },
        },
      ],
      expectedVersion: this.#state.version,
      fence,
    });
    await this.#readControl();
    this.#onEvent({ type: 'parked', reaction: this.reaction.name, position: event.position, eventId: event.id, error });
  }

  /** Stores the position: at once after acting, else at most every SAVE_EVERY_MS. */
  async #save(position: number, now: boolean): Promise<void> {
    if (position <= this.#saved) return;
    if (!now && Date.now() - this.#savedAt < SAVE_EVERY_MS) return;
    await this.#store.checkpoint(consumerOf(this.reaction.name), position);
    this.#saved = position;
    this.#savedAt = Date.now();
  }
}

const ReactionMarker = 'RolledBack';
