import type { EventEnvelope, NewEvent } from '../events/envelope.js';
import { StoreClosedError, StoreConfigError, ValidationError } from '../events/errors.js';
import type { InclusionProof } from '../events/proof.js';
import { EventRegistry } from '../events/registry.js';
import type { Digest } from '../events/tree-head.js';
import { digestLog } from './audit/digest.js';
import { proveEvent } from './audit/prove.js';
import { sealLog } from './audit/seal.js';
import { verifyLog } from './audit/verify.js';
import { checkLeaseArgs } from './leases.js';
import { prepareAppends } from './prepare.js';
import type {
  AppendOptions,
  AppendResult,
  DigestOptions,
  EventStore,
  LeaseAttempt,
  ListStreamsOptions,
  ProveOptions,
  ReadAllOptions,
  ReadOptions,
  Seal,
  SealOptions,
  Snapshot,
  StorageBackend,
  StreamAppend,
  StreamInfo,
  StreamLease,
  SubscribeOptions,
  VerifyOptions,
  VerifyReport,
} from './types.js';
import { wakeUp } from './wake-up.js';

export interface EventStoreOptions {
  registry?: EventRegistry;
  /** Largest event accepted, data and metadata as stored (default 1 MiB). */
  maxEventBytes?: number;
  /** Clock for recordedAt; tests may fix it. */
  now?: () => string;
}

const DEFAULT_LIMIT = 1000;

let lastMs = Number.NaN;
let lastIso = '';
/** The time as recordedAt, formatted once per millisecond: a burst of appends shares it. */
function isoNow(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

const backends = new WeakMap<EventStore, StorageBackend>();
const systemWriters = new WeakMap<EventStore, (append: StreamAppend) => Promise<AppendResult>>();

/**
 * Appends to one of Rewind's own streams ('$…'), which applications cannot
 * write: for the layers that keep their records in the log (reactions' control
 * streams). Expected version and fence hold as for any append.
 */
export function appendSystem(store: EventStore, append: StreamAppend): Promise<AppendResult> {
  const write = systemWriters.get(store);
  if (!write) throw new ValidationError(`this store (${store.backend}) was not opened by openStore and cannot keep Rewind's own records`);
  return write(append);
}

/**
 * The backend under a Store. For the layers that keep their own data beside
 * the log (projections), so the public EventStore stays what applications need.
 */
export function storageBackendOf(store: EventStore): StorageBackend | undefined {
  return backends.get(store);
}
const MAX_LIMIT = 100_000;

/**
 * The one EventStore implementation. Everything that must behave the same on
 * every backend lives here (input checks, hashing, upcasting, subscriptions,
 * verification); the backend only stores and fetches.
 */
export class Store implements EventStore {
  readonly registry: EventRegistry;
  readonly #backend: StorageBackend;
  readonly #now: () => string;
  readonly #maxEventBytes: number | undefined;
  #closed = false;
  readonly #closing = new AbortController();

  constructor(backend: StorageBackend, options: EventStoreOptions = {}) {
    this.#backend = backend;
    backends.set(this, backend);
    systemWriters.set(this, (append) => this.#appendSystem(append));
    this.registry = options.registry ?? new EventRegistry();
    this.#now = options.now ?? isoNow;
    if (options.maxEventBytes !== undefined && !(Number.isInteger(options.maxEventBytes) && options.maxEventBytes > 0)) {
      throw new StoreConfigError(`maxEventBytes must be a positive integer, got ${options.maxEventBytes}`);
    }
    this.#maxEventBytes = options.maxEventBytes;
  }

  get backend(): string {
    return this.#backend.name;
  }

  async append(streamId: string, events: NewEvent[], options: AppendOptions = {}): Promise<AppendResult> {
    const [result] = await this.appendMany([{ streamId, events, expectedVersion: options.expectedVersion, fence: options.fence }]);
    return result as AppendResult;
  }

  async appendMany(appends: StreamAppend[]): Promise<AppendResult[]> {
    this.#open();
    const prepared = prepareAppends(appends, { registry: this.registry, now: this.#now, maxEventBytes: this.#maxEventBytes });
    const results = await this.#backend.append(prepared);
    return results.map((r) => ({ ...r, events: r.events.map((e) => this.registry.upcastEvent(e)) }));
  }

  // --- Stream leases (leases.ts): who may write a stream, with a fencing epoch ---

  async acquireLease(streamId: string, owner: string, leaseMs: number): Promise<LeaseAttempt> {
    this.#open();
    checkLeaseArgs('acquire a lease', { streamId, owner, leaseMs });
    return this.#backend.acquireLease(streamId, owner, leaseMs);
  }

  async renewLeases(owner: string, streamIds: readonly string[], leaseMs: number): Promise<string[]> {
    this.#open();
    checkLeaseArgs('renew leases', { streamIds, owner, leaseMs });
    return streamIds.length === 0 ? [] : this.#backend.renewLeases(owner, streamIds, leaseMs);
  }

  async releaseLease(streamId: string, owner: string, epoch: number): Promise<void> {
    this.#open();
    checkLeaseArgs('release a lease', { streamId, owner, epoch });
    return this.#backend.releaseLease(streamId, owner, epoch);
  }

  async leaseOf(streamId: string): Promise<StreamLease | undefined> {
    this.#open();
    checkLeaseArgs('read a lease', { streamId });
    return this.#backend.leaseOf(streamId);
  }

  async changeCounter(): Promise<number> {
    this.#open();
    return this.#backend.changeCounter();
  }

  async read(streamId: string, options: ReadOptions = {}): Promise<EventEnvelope[]> {
    return (await this.readRaw(streamId, options)).map((e) => this.registry.upcastEvent(e));
  }

  /** Events exactly as stored, before upcasting: what the hash chain covers. */
  async readRaw(streamId: string, options: ReadOptions = {}): Promise<EventEnvelope[]> {
    this.#open();
    checkStreamId(streamId);
    const issues: string[] = [];
    if (options.from !== undefined && !isNonNegativeInt(options.from)) issues.push('from must be a non-negative integer version');
    if (options.to !== undefined && !isNonNegativeInt(options.to)) issues.push('to must be a non-negative integer version');
    if (options.limit !== undefined && !isLimit(options.limit)) issues.push(`limit must be an integer from 1 to ${MAX_LIMIT}`);
    const direction = options.direction ?? 'forward';
    if (direction !== 'forward' && direction !== 'backward') issues.push("direction must be 'forward' or 'backward'");
    if (issues.length) throw new ValidationError(`cannot read stream "${streamId}"`, issues);
    return this.#backend.read(streamId, { ...options, direction });
  }

  async readAll(options: ReadAllOptions = {}): Promise<EventEnvelope[]> {
    this.#open();
    const { from, limit } = checkReadAll(options);
    const page = await this.#backend.readAll(from, limit, options.filter);
    return page.events.map((e) => this.registry.upcastEvent(e));
  }

  async streamVersion(streamId: string): Promise<number> {
    this.#open();
    checkStreamId(streamId);
    return this.#backend.streamVersion(streamId);
  }

  async listStreams(options: ListStreamsOptions = {}): Promise<StreamInfo[]> {
    this.#open();
    if (options.limit !== undefined && !isLimit(options.limit)) {
      throw new ValidationError(`limit must be an integer from 1 to ${MAX_LIMIT}`);
    }
    return this.#backend.listStreams({ ...options, limit: options.limit ?? DEFAULT_LIMIT });
  }

  async headPosition(): Promise<number> {
    this.#open();
    return this.#backend.headPosition();
  }

  subscribe(options: SubscribeOptions = {}): AsyncIterable<EventEnvelope> {
    this.#open();
    const { from } = checkReadAll({ from: options.from });
    const batchSize = options.batchSize ?? 500;
    if (!isLimit(batchSize)) throw new ValidationError(`batchSize must be an integer from 1 to ${MAX_LIMIT}`);
    if (options.consumer !== undefined) checkConsumer(options.consumer);
    return this.#follow(from, batchSize, options);
  }

  async *#follow(from: number, batchSize: number, options: SubscribeOptions): AsyncGenerator<EventEnvelope> {
    const signal = anySignal(options.signal, this.#closing.signal);
    let next = from;
    if (options.consumer !== undefined) {
      const stored = await this.#backend.loadCheckpoint(options.consumer);
      if (stored !== undefined) next = stored + 1;
    }
    while (!signal.aborted) {
      // Listen before reading, so an append that lands between the read and
      // the wait still wakes us.
      const woken = wakeUp(this.#backend, signal);
      let page: Awaited<ReturnType<StorageBackend['readAll']>>;
      try {
        page = await this.#backend.readAll(next, batchSize, options.filter);
      } catch (error) {
        woken.cancel();
        if (signal.aborted) return;
        throw error;
      }
      for (const event of page.events) {
        if (signal.aborted) break;
        yield this.registry.upcastEvent(event);
        next = event.position + 1;
      }
      if (page.events.length === batchSize) {
        woken.cancel();
        continue;
      }
      next = Math.max(next, page.scannedTo + 1);
      await woken.promise;
    }
  }

  async checkpoint(consumer: string, position: number): Promise<void> {
    this.#open();
    checkConsumer(consumer);
    if (!isNonNegativeInt(position)) throw new ValidationError('a checkpoint position must be a non-negative integer');
    await this.#backend.saveCheckpoint(consumer, position);
  }

  async checkpointOf(consumer: string): Promise<number | undefined> {
    this.#open();
    checkConsumer(consumer);
    return this.#backend.loadCheckpoint(consumer);
  }

  async saveSnapshot<S>(
    streamId: string,
    version: number,
    state: S,
    reducerVersion: string,
    options: { replaceOlder?: boolean } = {},
  ): Promise<void> {
    this.#open();
    checkStreamId(streamId);
    checkReducerVersion(reducerVersion);
    if (!Number.isInteger(version) || version < 1) throw new ValidationError('a snapshot version must be a positive integer');
    const current = await this.#backend.streamVersion(streamId);
    if (version > current) {
      throw new ValidationError(`stream "${streamId}" is at version ${current}; cannot snapshot version ${version}`);
    }
    let json: string;
    try {
      json = JSON.stringify(state);
    } catch (error) {
      throw new ValidationError(`the snapshot state cannot be serialised: ${(error as Error).message}`);
    }
    if (json === undefined) throw new ValidationError('the snapshot state must be a JSON value');
    await this.#backend.saveSnapshot(
      { streamId, version, state: json, reducerVersion, createdAt: this.#now() },
      options.replaceOlder === true,
    );
  }

  async loadSnapshot<S>(streamId: string, reducerVersion: string, options: { atOrBefore?: number } = {}): Promise<Snapshot<S> | undefined> {
    this.#open();
    checkStreamId(streamId);
    checkReducerVersion(reducerVersion);
    const found = await this.#backend.loadSnapshot(streamId, reducerVersion, options.atOrBefore);
    if (!found || found.reducerVersion !== reducerVersion) return undefined;
    return { ...found, state: JSON.parse(found.state) as S };
  }

  async verify(options: VerifyOptions = {}): Promise<VerifyReport> {
    this.#open();
    if (options.streamId !== undefined) checkStreamId(options.streamId);
    return verifyLog(this.#backend, options);
  }

  async digest(options: DigestOptions): Promise<Digest> {
    this.#open();
    return digestLog(this.#backend, options, this.#now);
  }

  async seal(options: SealOptions): Promise<Seal | undefined> {
    this.#open();
    return sealLog(this.#backend, options?.signingKey, (append) => this.#appendSystem(append), this.#now);
  }

  async prove(eventId: string, options: ProveOptions = {}): Promise<InclusionProof> {
    this.#open();
    return proveEvent(this.#backend, eventId, options, this.#now);
  }

  /** The store's own records ('$…' streams): the only way past the rule that applications cannot write there. */
  async #appendSystem(append: StreamAppend): Promise<AppendResult> {
    const prepared = prepareAppends([append], { registry: this.registry, now: this.#now, system: true });
    const [result] = await this.#backend.append(prepared);
    return result as AppendResult;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort();
    await this.#backend.close();
  }

  #open(): void {
    if (this.#closed) throw new StoreClosedError();
  }
}

function anySignal(a: AbortSignal | undefined, b: AbortSignal): AbortSignal {
  return a ? AbortSignal.any([a, b]) : b;
}

function checkReadAll(options: ReadAllOptions): { from: number; limit: number } {
  const from = options.from ?? 0;
  const limit = options.limit ?? DEFAULT_LIMIT;
  const issues: string[] = [];
  if (!isNonNegativeInt(from)) issues.push('from must be a non-negative integer position');
  if (!isLimit(limit)) issues.push(`limit must be an integer from 1 to ${MAX_LIMIT}`);
  const filter = options.filter;
  if (filter !== undefined) {
    if (filter === null || typeof filter !== 'object') issues.push('filter must be an object');
    else {
      if (filter.streamPrefix !== undefined && typeof filter.streamPrefix !== 'string') issues.push('filter.streamPrefix must be a string');
      if (filter.types !== undefined && !(Array.isArray(filter.types) && filter.types.every((t) => typeof t === 'string'))) {
        issues.push('filter.types must be an array of strings');
      }
    }
  }
  if (issues.length) throw new ValidationError('cannot read the log', issues);
  return { from, limit };
}

function checkStreamId(streamId: unknown): void {
  if (typeof streamId !== 'string' || streamId.length === 0) throw new ValidationError('streamId must be a non-empty string');
}

function checkConsumer(name: unknown): void {
  if (typeof name !== 'string' || name.length === 0) throw new ValidationError('a consumer name must be a non-empty string');
}

function checkReducerVersion(v: unknown): void {
  if (typeof v !== 'string' || v.length === 0) {
    throw new ValidationError(
      'reducerVersion must be a non-empty string',
      [],
      'bump it whenever the reducer changes, so stale snapshots are ignored',
    );
  }
}

function isNonNegativeInt(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function isLimit(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= MAX_LIMIT;
}
