import type BetterSqlite3 from 'better-sqlite3';
import type pg from 'pg';
import type { EventEnvelope, EventMetadata, Json, NewEvent } from '../events/envelope.js';
import type { ExpectedVersion } from '../events/errors.js';
import type { InclusionProof } from '../events/proof.js';
import type { EventRegistry } from '../events/registry.js';
import type { Digest } from '../events/tree-head.js';
import type { DigestOptions, ProveOptions, Seal, SealOptions, VerifyOptions, VerifyReport } from './audit/report.js';
import type { RunIndexBackend } from './run-index.js';
import type { RunQueue } from './run-queue.js';

export type { DigestOptions, ExpectedVersion, ProveOptions, Seal, SealOptions, VerifyOptions, VerifyReport };

export interface AppendOptions {
  /** Defaults to 'any'. */
  expectedVersion?: ExpectedVersion;
  /** Written only while the stream's lease is still this owner's at this epoch; otherwise LeaseLostError, and nothing is written. */
  fence?: Fence;
}

/** Who may write a leased stream: checked in the append's own transaction (see StreamLease). */
export interface Fence {
  owner: string;
  epoch: number;
}

/**
 * An exclusive, expiring right to write one stream: a run's driver holds its
 * run's. Every acquire raises the epoch, so an append fenced by a holder that
 * lost the lease (paused past its expiry while another took it) is refused.
 */
export interface StreamLease {
  streamId: string;
  owner: string;
  epoch: number;
  /** Epoch ms at which it lapses unless renewed; 0 once released. */
  until: number;
}

/** What an acquire got: the lease, or who holds it. */
export type LeaseAttempt = { acquired: true; lease: StreamLease } | { acquired: false; holder: StreamLease };

/** Stream leases, as every backend keeps them beside the log (store/leases.ts has the rules). */
export interface StreamLeases {
  /** Takes the lease when it is free, lapsed, released, or its holder is known to be gone. Never waits. */
  acquireLease(streamId: string, owner: string, leaseMs: number): Promise<LeaseAttempt>;
  /** Extends the owner's leases; returns the stream ids it still holds (a missing one was taken over). */
  renewLeases(owner: string, streamIds: readonly string[], leaseMs: number): Promise<string[]>;
  /** Lets go of a lease still held at this epoch (a lease taken over since stays with its new holder). */
  releaseLease(streamId: string, owner: string, epoch: number): Promise<void>;
  /** The lease as stored, live or not; undefined for a stream never leased. */
  leaseOf(streamId: string): Promise<StreamLease | undefined>;
  /**
   * A number that changes whenever any process may have appended: cheap enough
   * to ask every few milliseconds (SQLite's data_version, a counter of
   * PostgreSQL notifications, the memory log's length).
   */
  changeCounter(): Promise<number>;
}

export interface AppendResult {
  streamId: string;
  /** The stream's version after the append: the version of its last event. */
  version: number;
  /** Global position of the last event appended. */
  position: number;
  events: EventEnvelope[];
}

export interface StreamAppend {
  streamId: string;
  events: NewEvent[];
  expectedVersion?: ExpectedVersion;
  fence?: Fence;
}

export interface ReadOptions {
  /** First stream version to return (inclusive). Forward default 1, backward default the last. */
  from?: number;
  /** Last stream version to return (inclusive). */
  to?: number;
  direction?: 'forward' | 'backward';
  limit?: number;
}

export interface EventFilter {
  /** Only streams whose id starts with this. */
  streamPrefix?: string;
  /** Only these event types. */
  types?: string[];
}

export interface ReadAllOptions {
  /** First global position to return (inclusive); default 0. Resume with `last.position + 1`. */
  from?: number;
  limit?: number;
  filter?: EventFilter;
}

export interface SubscribeOptions {
  /** First global position to deliver (inclusive). Ignored when `consumer` has a stored checkpoint. */
  from?: number;
  filter?: EventFilter;
  /** Ends the iteration (without an error) when aborted. */
  signal?: AbortSignal;
  /**
   * A named consumer: delivery starts after its stored checkpoint. Storing the
   * checkpoint stays with the caller (`store.checkpoint(name, event.position)`),
   * after it has handled the event, so a crash means redelivery, never a skip.
   */
  consumer?: string;
  /** Events fetched per read while catching up; default 500. */
  batchSize?: number;
}

export interface StreamInfo {
  streamId: string;
  version: number;
  /** Hash of the last event: the chain's head. */
  head: string;
  /** Position of the last event. */
  position: number;
}

export interface ListStreamsOptions {
  prefix?: string;
  /** Stream ids greater than this, for paging. */
  after?: string;
  limit?: number;
}

export interface Snapshot<S = unknown> {
  streamId: string;
  version: number;
  state: S;
  reducerVersion: string;
  createdAt: string;
}

/** The log. Every backend (memory, SQLite, PostgreSQL) behaves the same; `rewind/testing` proves it. */
export interface EventStore extends StreamLeases {
  readonly backend: string;
  readonly registry: EventRegistry;

  append(streamId: string, events: NewEvent[], options?: AppendOptions): Promise<AppendResult>;
  /** Several streams in one atomic commit: all are written or none. */
  appendMany(appends: StreamAppend[]): Promise<AppendResult[]>;

  read(streamId: string, options?: ReadOptions): Promise<EventEnvelope[]>;
  readAll(options?: ReadAllOptions): Promise<EventEnvelope[]>;
  /** The stream's version; 0 when it does not exist. */
  streamVersion(streamId: string): Promise<number>;
  listStreams(options?: ListStreamsOptions): Promise<StreamInfo[]>;
  /** The highest global position a reader can see (0 for an empty store). */
  headPosition(): Promise<number>;

  /** Catch up from a position, then follow live appends: no gap, no repeat, in position order. */
  subscribe(options?: SubscribeOptions): AsyncIterable<EventEnvelope>;
  /** Stores a named consumer's last handled position. */
  checkpoint(consumer: string, position: number): Promise<void>;
  /** A named consumer's last handled position, or undefined. */
  checkpointOf(consumer: string): Promise<number | undefined>;

  /** `replaceOlder` drops this reducer version's older snapshots of the stream in the same write: one snapshot per stream, as a cache. */
  saveSnapshot<S extends Json | unknown>(
    streamId: string,
    version: number,
    state: S,
    reducerVersion: string,
    options?: { replaceOlder?: boolean },
  ): Promise<void>;
  /** The newest snapshot made by this reducer version (at or before `atOrBefore`). Other reducer versions are never returned. */
  loadSnapshot<S = unknown>(streamId: string, reducerVersion: string, options?: { atOrBefore?: number }): Promise<Snapshot<S> | undefined>;

  /**
   * Checks the log: every stream's hash chain, every row decodable, versions
   * and positions where they must be, the seals in the log (signatures with
   * `publicKeys`) and, given a `digest`, that the log still holds exactly the
   * prefix it signed. Never throws over damaged data: every problem is in the report.
   */
  verify(options?: VerifyOptions): Promise<VerifyReport>;
  /**
   * A signed statement of the log up to a position (default the head): the
   * Merkle root over its events in position order, the tree's peaks and every
   * stream's head. Keep it outside the database; `verify({ digest })` holds
   * the log to it. Refuses (LogCorruptError) a log that does not verify.
   */
  digest(options: DigestOptions): Promise<Digest>;
  /**
   * Writes a seal into the log (stream '$rewind-seals'): a signed tree head
   * over everything appended before it, continuing the previous seal's tree,
   * with the heads of the streams changed since. Undefined when nothing new
   * was appended since the last seal (or another process sealed first).
   */
  seal(options: SealOptions): Promise<Seal | undefined>;
  /** A proof that the event is in the log, checkable with the public key and the proof alone (`checkProof`). */
  prove(eventId: string, options?: ProveOptions): Promise<InclusionProof>;

  close(): Promise<void>;
}

// ---------------------------------------------------------------------------
// What a backend implements. The shared EventStore (store/event-store.ts)
// validates input, hashes content, upcasts on read, verifies and runs
// subscriptions, so a backend only stores and fetches.
// ---------------------------------------------------------------------------

/** An event validated and digested, waiting for the backend to give it a version, position and link. */
export interface PreparedEvent {
  id: string;
  /** The caller chose the id (an idempotency key). A generated one is new, so no lookup can find it stored. */
  idGiven: boolean;
  type: string;
  schemaVersion: number;
  data: unknown;
  metadata: EventMetadata;
  recordedAt: string;
  /** Canonical JSON of `data` and `metadata`, ready to store as text. */
  dataJson: string;
  metadataJson: string;
  /** contentDigest() of the event, hex. */
  digest: string;
}

export interface PreparedAppend {
  streamId: string;
  expectedVersion: ExpectedVersion;
  events: PreparedEvent[];
  fence?: Fence;
}

export interface ReadAllPage {
  events: EventEnvelope[];
  /**
   * Every event at or below this position that matches the filter is in
   * `events` (unless the page is full): the reader may continue after it.
   * In PostgreSQL this stays below the oldest in-flight transaction.
   */
  scannedTo: number;
}

/**
 * A row exactly as stored, before any decoding: what verification reads, so
 * that one damaged row is reported rather than thrown. `data` and `metadata`
 * are the stored JSON text; the types are what the row should hold, which
 * verification checks rather than trusts.
 */
export interface RawRow {
  position: number;
  id: unknown;
  streamId: unknown;
  version: unknown;
  type: unknown;
  schemaVersion: unknown;
  data: unknown;
  metadata: unknown;
  recordedAt: unknown;
  hash: unknown;
  /** The content digest kept for recognising retried appends. */
  digest: unknown;
}

export interface StorageBackend extends StreamLeases {
  readonly name: string;
  /** How often a live subscription re-reads without a wake-up; Infinity when wake-ups are complete. */
  readonly pollIntervalMs: number;
  /** Positions are 1, 2, 3… with no gap, so a missing one means a deleted event (memory, SQLite; not PostgreSQL, where a rolled-back append leaves one). */
  readonly densePositions: boolean;

  /**
   * Atomically, for each append in order: when every event id is already in
   * that stream with the same digest, the original result (nothing written,
   * expected version not checked); when some ids are stored and not others, or
   * with another digest or stream, EventIdConflictError; otherwise check the
   * expected version (ConcurrencyError with the actual version) and, for a
   * fenced append, the stream's lease (LeaseLostError, see leases.ts), and
   * write, linking each event with chainLink(). All or nothing.
   */
  append(appends: PreparedAppend[]): Promise<AppendResult[]>;
  /** Stored events (not upcast), by version. */
  read(streamId: string, options: Required<Pick<ReadOptions, 'direction'>> & ReadOptions): Promise<EventEnvelope[]>;
  /** Leaves out system streams ('$…', see system-streams.ts) unless the filter's prefix names them. */
  readAll(from: number, limit: number, filter: EventFilter | undefined): Promise<ReadAllPage>;
  /** Rows with from ≤ position ≤ to (system streams included) in position order, undecoded. Every position ≤ headPosition() is final. */
  scanLog(from: number, to: number, limit: number): Promise<RawRow[]>;
  /** One stream's rows from a version on, in version order, undecoded. */
  scanStream(streamId: string, fromVersion: number, limit: number): Promise<RawRow[]>;
  /** Streams recorded as begun that hold no event: only deleting rows makes one. */
  emptyStreams(): Promise<string[]>;
  streamVersion(streamId: string): Promise<number>;
  listStreams(options: ListStreamsOptions): Promise<StreamInfo[]>;
  headPosition(): Promise<number>;

  saveCheckpoint(consumer: string, position: number): Promise<void>;
  loadCheckpoint(consumer: string): Promise<number | undefined>;
  saveSnapshot(snapshot: Snapshot<string>, replaceOlder: boolean): Promise<void>;
  /** `state` is the stored JSON text. */
  loadSnapshot(streamId: string, reducerVersion: string, atOrBefore: number | undefined): Promise<Snapshot<string> | undefined>;

  /** Calls the listener (soon) after events may have been appended, by this process or, where the backend can tell, another. */
  onAppend(listener: () => void): () => void;
  /**
   * The run queue kept beside the log, in the same database (see run-queue.ts):
   * what the runtime's workers claim runs from. A new handle each call; the
   * runtime shares one per store (runtime/run-queue.ts).
   */
  openRunQueue(): Promise<RunQueue>;
  close(): Promise<void>;

  /** Optional: lets the projections layer keep read models in the log's database and transactions. */
  readonly projectionHost?: ProjectionHost;
  /** Optional: the runs index (run-index.ts), kept in the appends' transactions. Without it runs are listed from their streams. */
  readonly runIndex?: RunIndexBackend;
}

/**
 * Runs inside an append's transaction once its new events are written (as stored, not upcast;
 * idempotent retries that write nothing, and events of system streams, do not reach it). Throwing aborts the whole append.
 * A backend without transactions (memory) calls the function it returns when a later hook
 * refuses the append, to take this hook's writes back with the append's events.
 */
export type AppendTransactionHook = (written: EventEnvelope[]) => (() => void) | undefined;

/** Memory and SQLite: everything happens synchronously inside the append, so the host offers synchronous reads. */
export interface SyncProjectionHost {
  readonly kind: 'memory' | 'sqlite';
  /** @internal SQLite: the log's own connection, for read-model tables in the same file and transactions. */
  readonly database?: BetterSqlite3.Database;
  readAllSync(from: number, limit: number, filter?: EventFilter): ReadAllPage;
  /** The stream's stored events, versions 1..toVersion. */
  readStreamSync(streamId: string, toVersion: number): EventEnvelope[];
  addAppendHook(hook: AppendTransactionHook): () => void;
}

/** PostgreSQL: read models live in the log's schema; the projections layer runs its own transactions on the pool. */
export interface PostgresProjectionHost {
  readonly kind: 'postgres';
  /** @internal The driver's pool (its types are not a dependency of the package). */
  readonly pool: pg.Pool;
  /** The schema name, already quoted for SQL. */
  readonly schema: string;
  /** Arguments of the advisory lock appends take turns on while an inline projection is registered. */
  readonly inlineLock: string;
  /** With a hook installed, appends run in a client-side transaction and call it before COMMIT. */
  addAppendHook(hook: PostgresAppendHook): () => void;
}

/** The appending transaction, as a hook sees it: its own events are visible here before the commit. */
export interface PostgresAppendTransaction {
  /** @internal The driver's client, inside the transaction. */
  client: pg.PoolClient;
  /**
   * Every event after this position, system streams left out (appends take turns while inline projections
   * exist, so none is in flight): those this transaction wrote, and the others (committed by appends without the hook).
   */
  eventsAfter(position: number): Promise<{ written: EventEnvelope[]; others: EventEnvelope[] }>;
  /**
   * The events of the calls' results, system streams left out, in position order: what this
   * transaction wrote and, for an append repeated whole, the events stored before. No read.
   */
  readonly results: EventEnvelope[];
  readStream(streamId: string, toVersion: number): Promise<EventEnvelope[]>;
}

export type PostgresAppendHook = (tx: PostgresAppendTransaction) => Promise<void>;

export type ProjectionHost = SyncProjectionHost | PostgresProjectionHost;
