import { setImmediate as nextTurn } from 'node:timers/promises';
import type { EventEnvelope } from '../events/envelope.js';
import { NotFoundError, ValidationError } from '../events/errors.js';
import { storageBackendOf } from '../store/event-store.js';
import type { EventStore, StorageBackend } from '../store/types.js';
import { wakeUp } from '../store/wake-up.js';
import { applierOf } from './apply.js';
import { type AnyProjection, checkDefinitions, type DocOf, filterOf, type ProjectionName } from './definition.js';
import { ProjectionHandlerError, ProjectionsUnsupportedError } from './errors.js';
import { checkQuery, type FindQuery, type FoundDoc } from './query.js';
import { readModelStoreFor } from './storage/open.js';
import type { ProjectionRecord, ReadModelStore, Target } from './storage/types.js';

export interface ProjectionsOptions {
  /** Events per transaction for consumers and rebuilds; default 1000. */
  batchSize?: number;
  /**
   * Told when a consumer, catch-up or rebuild of this object stops a projection on a handler error
   * (it is also in status()). An inline projection stopped inside an append, on another writer's
   * event, shows in status() only: the append's transaction may still roll back.
   */
  onError?: (error: ProjectionHandlerError) => void;
  /**
   * Only look: no registry rows created, no rebuild started, no inline
   * application. For status and queries from tools (the CLI) that must not
   * change the database.
   */
  readOnly?: boolean;
}

export interface ProjectionStatus {
  name: string;
  mode: 'inline' | 'async';
  /** The definition's version, and the one that built the model queries see. */
  version: number;
  activeVersion: number;
  /** ok: current; failed: stopped on an error; rebuilding: a fresh generation is being built; stale: built by another version, rebuild pending. */
  state: 'ok' | 'failed' | 'rebuilding' | 'stale';
  position: number;
  head: number;
  /** Positions between the projection and the head of the log. */
  lagEvents: number;
  /** recordedAt of the head event minus that of the last event the projection applied. */
  lagSeconds: number;
  lastEventAt: string | null;
  error: { message: string; position: number } | null;
  rebuild: { version: number; position: number } | null;
}

export interface RebuildProgress {
  /** Positions of the log covered so far, of `total`. */
  processed: number;
  total: number;
  /** Positions per second since the rebuild started. */
  rate: number;
}

export interface RebuildOptions {
  /** Called after each batch; a returned promise is awaited (queries made meanwhile still see the old model). */
  onProgress?: (progress: RebuildProgress) => void | Promise<void>;
}

type StepResult = 'progress' | 'idle' | 'stopped' | 'swapped';

const DEFAULT_BATCH = 1000;

/**
 * Opens the read side over a store: registers each projection (creating its
 * registry row, or starting a rebuild when its version changed) and applies
 * inline projections in every append from now on. Asynchronous projections
 * move when you call `catchUp()` (once, to the head) or `start()` (follow the
 * log until `stop()`).
 */
export async function openProjections<const P extends readonly AnyProjection[]>(
  store: EventStore,
  definitions: P,
  options: ProjectionsOptions = {},
): Promise<Projections<P[number]>> {
  checkDefinitions(definitions);
  const batchSize = options.batchSize ?? DEFAULT_BATCH;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000)
    throw new ValidationError('batchSize must be an integer from 1 to 100000');
  const backend = storageBackendOf(store);
  if (!backend?.projectionHost) throw new ProjectionsUnsupportedError(store.backend);
  const models = readModelStoreFor(backend as StorageBackend & { projectionHost: NonNullable<StorageBackend['projectionHost']> });
  const projections = new Projections<P[number]>(store, backend, models, definitions, batchSize, options.onError);
  if (!options.readOnly) await projections.register();
  return projections;
}

/** The read side over a store. `P` is the union of its definitions: `get` and `find` take their names and return their documents. */
export class Projections<P extends AnyProjection = AnyProjection> {
  readonly #backend: StorageBackend;
  readonly #models: ReadModelStore;
  readonly #defs: Map<string, AnyProjection>;
  readonly #batchSize: number;
  readonly #onError: ((error: ProjectionHandlerError) => void) | undefined;
  readonly #upcast: (event: EventEnvelope) => EventEnvelope;
  #uninstall: (() => void) | undefined;
  #running: AbortController | undefined;
  readonly #loops = new Map<string, Promise<void>>();
  readonly #stoppedBy = new Map<string, ProjectionHandlerError>();

  /** Use openProjections(). */
  constructor(
    store: EventStore,
    backend: StorageBackend,
    models: ReadModelStore,
    definitions: readonly AnyProjection[],
    batchSize: number,
    onError: ((error: ProjectionHandlerError) => void) | undefined,
  ) {
    this.#backend = backend;
    this.#models = models;
    this.#defs = new Map(definitions.map((d) => [d.name, d]));
    this.#batchSize = batchSize;
    this.#onError = onError;
    this.#upcast = (event) => store.registry.upcastEvent(event);
  }

  /** The definitions, in the order given. */
  get definitions(): AnyProjection[] {
    return [...this.#defs.values()];
  }

  /** @internal Registry rows, version checks, inline installation. */
  async register(): Promise<void> {
    for (const def of this.#defs.values()) {
      const record = await this.#models.ensure(def.name, def.version, def.mode ?? 'async');
      const building = record.rebuild?.version === def.version;
      if (record.version !== def.version && !building) await this.#models.startRebuild(def.name, def.version);
    }
    const inline = [...this.#defs.values()].filter((d) => d.mode === 'inline');
    if (inline.length > 0) {
      this.#uninstall = this.#models.installInline(
        inline.map((def) => ({ name: def.name, version: def.version, applier: applierOf(def, this.#upcast) })),
      );
    }
  }

  async get<N extends ProjectionName<P>>(projection: N, key: string): Promise<DocOf<P, N> | undefined> {
    this.#def(projection);
    if (typeof key !== 'string' || key.length === 0) throw new ValidationError('a document key must be a non-empty string');
    return (await this.#models.get(projection, key)) as DocOf<P, N> | undefined;
  }

  async find<N extends ProjectionName<P>>(projection: N, query: FindQuery = {}): Promise<FoundDoc<DocOf<P, N>>[]> {
    this.#def(projection);
    return (await this.#models.find(projection, checkQuery(query))) as FoundDoc<DocOf<P, N>>[];
  }

  /** Applies every projection (not stopped) up to the head of the log once, finishing pending rebuilds. */
  async catchUp(names: readonly string[] = [...this.#defs.keys()]): Promise<void> {
    for (const name of names) {
      const def = this.#def(name);
      for (;;) {
        const step = await this.#step(def);
        if (step === 'idle' || step === 'stopped') break;
        await nextTurn();
      }
    }
  }

  /** Follows the log in the background, one consumer per projection, until stop(). */
  start(): void {
    if (this.#running) return;
    this.#running = new AbortController();
    for (const def of this.#defs.values()) this.#follow(def);
  }

  async stop(): Promise<void> {
    this.#running?.abort();
    this.#running = undefined;
    await Promise.allSettled([...this.#loops.values()]);
  }

  /** Clears a stopped projection's error: it continues from the event it stopped at (with the code now loaded). */
  async resume(projection: string): Promise<void> {
    this.#def(projection);
    await this.#models.resume(projection);
    if (this.#running && !this.#loops.has(projection)) this.#follow(this.#def(projection));
  }

  /**
   * Rebuilds from position 0 into a fresh generation, swapped in atomically
   * once caught up; queries see the old model until then. Throws the
   * ProjectionHandlerError when the projection stops during the rebuild.
   */
  async rebuild(projection: string, options: RebuildOptions = {}): Promise<void> {
    const def = this.#def(projection);
    // Opened read-only, the projection may have no registry row yet.
    await this.#models.ensure(def.name, def.version, def.mode ?? 'async');
    const started = await this.#models.startRebuild(def.name, def.version);
    const generation = started.rebuild?.generation;
    const t0 = performance.now();
    for (;;) {
      const step = await this.#step(def);
      const record = (await this.#models.record(def.name)) as ProjectionRecord;
      if (record.error !== null) {
        throw this.#stoppedBy.get(def.name) ?? new ValidationError(`projection "${def.name}" stopped: ${record.error}`);
      }
      const done = record.rebuild?.generation !== generation;
      const head = await this.#backend.headPosition();
      const processed = done ? Math.max(head, record.position) : (record.rebuild?.position ?? 0);
      const seconds = (performance.now() - t0) / 1000;
      await options.onProgress?.({ processed, total: Math.max(head, processed), rate: seconds > 0 ? processed / seconds : 0 });
      if (done || step === 'swapped') return;
      if (step === 'stopped') throw new ValidationError(`the rebuild of "${def.name}" was taken over by another version of the projection`);
      await nextTurn();
    }
  }

  async status(): Promise<ProjectionStatus[]> {
    const head = await this.#backend.headPosition();
    const headAt = head > 0 ? (await this.#backend.readAll(head, 1, undefined)).events[0]?.recordedAt : undefined;
    let firstAt: string | undefined;
    const out: ProjectionStatus[] = [];
    for (const def of this.#defs.values()) {
      const r = await this.#models.record(def.name);
      const position = r?.position ?? 0;
      const lagEvents = Math.max(0, head - position);
      let since = r?.lastEventAt ?? undefined;
      if (lagEvents > 0 && since === undefined) {
        firstAt ??= (await this.#backend.readAll(0, 1, undefined)).events[0]?.recordedAt;
        since = firstAt;
      }
      const lagSeconds = lagEvents > 0 && headAt && since ? Math.max(0, (Date.parse(headAt) - Date.parse(since)) / 1000) : 0;
      out.push({
        name: def.name,
        mode: def.mode ?? 'async',
        version: def.version,
        activeVersion: r?.version ?? def.version,
        state: r?.error ? 'failed' : r?.rebuild ? 'rebuilding' : r && r.version !== def.version ? 'stale' : 'ok',
        position,
        head,
        lagEvents,
        lagSeconds,
        lastEventAt: r?.lastEventAt ?? null,
        error: r?.error ? { message: r.error, position: r.errorPosition ?? position + 1 } : null,
        rebuild: r?.rebuild ? { version: r.rebuild.version, position: r.rebuild.position } : null,
      });
    }
    return out;
  }

  /** Stops the consumers and inline application; the store stays open. */
  async close(): Promise<void> {
    await this.stop();
    this.#uninstall?.();
    this.#uninstall = undefined;
  }

  #def(name: string): AnyProjection {
    if (typeof name !== 'string') throw new ValidationError('a projection name must be a string');
    const def = this.#defs.get(name);
    if (!def) {
      throw new NotFoundError(`projection "${name}"`, `known projections: ${[...this.#defs.keys()].join(', ') || 'none'}`);
    }
    return def;
  }

  #follow(def: AnyProjection): void {
    const signal = (this.#running as AbortController).signal;
    const loop = (async () => {
      while (!signal.aborted) {
        const wake = wakeUp(this.#backend, signal);
        let step: StepResult;
        try {
          step = await this.#step(def);
        } catch {
          wake.cancel();
          if (signal.aborted) return;
          // A transient failure (database busy, connection lost): try again after a pause.
          await sleep(500, signal);
          continue;
        }
        if (step === 'stopped') {
          wake.cancel();
          return;
        }
        if (step === 'idle') await wake.promise;
        else {
          wake.cancel();
          await nextTurn();
        }
      }
    })().finally(() => this.#loops.delete(def.name));
    this.#loops.set(def.name, loop);
  }

  /** One page for one projection: the rebuild generation when one is being built, else the live one. */
  async #step(def: AnyProjection): Promise<StepResult> {
    const record = await this.#models.record(def.name);
    if (!record || record.error !== null) return 'stopped';
    if (record.rebuild) {
      // Another version's process is building it: leave it to that code.
      if (record.rebuild.version !== def.version) return 'stopped';
      return this.#page(def, 'rebuild', record.rebuild.generation, record.rebuild.position);
    }
    if (record.version !== def.version) return 'stopped';
    return this.#page(def, 'active', record.generation, record.position);
  }

  /**
   * One page. A page that is not full reached the head of the log as it was
   * read: an active generation is then caught up ('idle'), and a rebuild
   * finishes there, its tail (this page, and whatever was appended since)
   * applied with appends held off, so it never chases a log that keeps
   * growing.
   */
  async #page(def: AnyProjection, target: Target, generation: number, from: number): Promise<StepResult> {
    const page = await this.#backend.readAll(from + 1, this.#batchSize, filterOf(def));
    const full = page.events.length === this.#batchSize;
    // Every event of the projection's filter up to here is in the page.
    const to = full ? (page.events.at(-1) as EventEnvelope).position : Math.max(page.scannedTo, from);
    try {
      if (!full && target === 'rebuild') {
        const swapped = await this.#models.finishRebuild(def.name, generation, from, applierOf(def, this.#upcast));
        return swapped === 'ok' ? 'swapped' : 'progress';
      }
      if (to === from) return 'idle';
      const events = page.events;
      const result = await this.#models.commit({
        name: def.name,
        target,
        generation,
        from,
        to,
        lastEventAt: events.at(-1)?.recordedAt ?? null,
        events,
        applier: applierOf(def, this.#upcast),
      });
      // 'moved': another consumer got there first; the next step reads from where it is now.
      return full || result === 'moved' ? 'progress' : 'idle';
    } catch (error) {
      if (!(error instanceof ProjectionHandlerError)) throw error;
      await this.#stopAt(def, target, generation, from, to, page.events, error);
      return 'stopped';
    }
  }

  /**
   * Keeps what came before the failing event, then records the error there:
   * resume starts at that event. The page covers the log up to `covered`; a
   * rebuild's tail may have failed past it, on an event appended since.
   */
  async #stopAt(
    def: AnyProjection,
    target: Target,
    generation: number,
    from: number,
    covered: number,
    events: EventEnvelope[],
    error: ProjectionHandlerError,
  ): Promise<void> {
    let at = from;
    const before = events.filter((e) => e.position < error.position);
    if (before.length > 0 && error.position > from) {
      const to = Math.min(error.position - 1, covered);
      const ok = await this.#models.commit({
        name: def.name,
        target,
        generation,
        from,
        to,
        lastEventAt: (before.at(-1) as EventEnvelope).recordedAt,
        events: before,
        applier: applierOf(def, this.#upcast),
      });
      if (ok !== 'ok') return;
      at = to;
    }
    await this.#models.fail(def.name, at, target, error.message, error.position);
    this.#stoppedBy.set(def.name, error);
    this.#onError?.(error);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
