import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { EventEnvelope } from '../events/envelope.js';
import { ConcurrencyError, StoreClosedError, StoreConfigError, StoreReadOnlyError } from '../events/errors.js';
import { chainLink, GENESIS_HASH } from '../events/hash.js';
import { resultOf } from './append-result.js';
import { findStoredBatch } from './idempotency.js';
import { checkFence, leaseFree } from './leases.js';
import { prefixRange } from './prefix-range.js';
import { expectedVersionHolds } from './prepare.js';
import { runIndexChange } from './run-index.js';
import type { RunQueue } from './run-queue.js';
import { holderGone, LEASES_TABLE, type LeaseStatements, leaseStatements } from './sqlite/leases.js';
import { RUN_INDEX_TABLES, SqliteRunIndex } from './sqlite/run-index.js';
import { SqliteRunQueue } from './sqlite/run-queue.js';
import { missingSidecars, removeCreatedSidecars } from './sqlite/sidecars.js';
import { isSystemStream, readsSystemStreams } from './system-streams.js';
import type {
  AppendResult,
  AppendTransactionHook,
  EventFilter,
  LeaseAttempt,
  ListStreamsOptions,
  PreparedAppend,
  RawRow,
  ReadAllPage,
  ReadOptions,
  Snapshot,
  StorageBackend,
  StreamInfo,
  StreamLease,
  SyncProjectionHost,
} from './types.js';

export interface SqliteOptions {
  durability?: 'full' | 'normal';
  /** Open an existing file read-only: nothing is created, migrated or written (appends are refused). */
  readOnly?: boolean;
}

// 2: the streams table names the streams and nothing else; a stream's head is its newest event.
const SCHEMA_VERSION = 2;
// 'RWND' in the file header: marks the file as Rewind's, so another application's database is never written into.
const APPLICATION_ID = 0x52574e44;
const BUSY_TIMEOUT_MS = 5000;
// Other processes on the same file cannot wake our subscribers, so they re-read this often.
const POLL_INTERVAL_MS = 200;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS events (
    -- The rowid is one more than the highest, and nothing ever deletes events, so no position is
    -- handed out twice. Files made by earlier builds say AUTOINCREMENT, which promises that too,
    -- at the cost of one more page (sqlite_sequence) written by every commit.
    position       INTEGER PRIMARY KEY,
    id             TEXT    NOT NULL UNIQUE,
    stream_id      TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    type           TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    data           TEXT    NOT NULL,
    metadata       TEXT    NOT NULL,
    recorded_at    TEXT    NOT NULL,
    hash           TEXT    NOT NULL,
    digest         TEXT    NOT NULL,
    UNIQUE (stream_id, version)
  ) STRICT;
  -- Written once, when a stream begins: its head (version, hash, position) is read from its newest
  -- event through the (stream_id, version) index, so an append to an existing stream writes one
  -- b-tree page fewer than it would keeping a copy of the head here.
  CREATE TABLE IF NOT EXISTS streams (
    stream_id TEXT PRIMARY KEY
  ) STRICT, WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS checkpoints (
    consumer TEXT    PRIMARY KEY,
    position INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS snapshots (
    stream_id       TEXT    NOT NULL,
    reducer_version TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    state           TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    PRIMARY KEY (stream_id, reducer_version, version)
  ) STRICT, WITHOUT ROWID;
`;

const EVENT_COLUMNS = `id, stream_id AS streamId, version, position, type, schema_version AS schemaVersion,
  data, metadata, recorded_at AS recordedAt, hash, digest`;

/** What verification scans return, in raw (array) mode: every column as stored. */
const SCAN_COLUMNS = 'position, id, stream_id, version, type, schema_version, data, metadata, recorded_at, hash, digest';
type ScanRow = [number, unknown, unknown, unknown, unknown, unknown, unknown, unknown, unknown, unknown, unknown];

/** What the read statements return, in raw (array) mode: READ_COLUMNS in order. */
const READ_COLUMNS = 'id, stream_id, version, position, type, schema_version, data, metadata, recorded_at, hash';
type ReadRow = [string, string, number, number, string, number, string, string, string, string];

interface EventRow {
  id: string;
  streamId: string;
  version: number;
  position: number;
  type: string;
  schemaVersion: number;
  data: string;
  metadata: string;
  recordedAt: string;
  hash: string;
  digest: string;
}

interface PendingAppend {
  appends: PreparedAppend[];
  resolve: (results: AppendResult[]) => void;
  reject: (error: unknown) => void;
}

interface PageQuery {
  from: number;
  low: string | null;
  high: string | null;
  types: string | null;
  /** 1 when the filter names system streams ('$…'); otherwise they are left out. */
  system: number;
  limit: number;
}

interface StreamsQuery {
  low: string;
  high: string | null;
  after: string;
  limit: number;
}

type Outcome = { ok: true; results: AppendResult[] } | { ok: false; error: unknown };

/** The embedded backend: one SQLite file, shared safely by several processes. */
export { prefixRange };

export class SqliteBackend implements StorageBackend {
  readonly name = 'sqlite';
  readonly pollIntervalMs: number;
  // The rowid is one more than the highest, and a rolled-back insert gives its number back: no gap, ever.
  readonly densePositions = true;
  readonly #db: Database.Database;
  readonly #events = new EventEmitter().setMaxListeners(0);
  readonly #sql;
  readonly #readPage: (query: PageQuery) => ReadAllPage;
  readonly #saveSnapshot: Database.Transaction<
    (streamId: string, reducerVersion: string, version: number, state: string, createdAt: string, replaceOlder: boolean) => void
  >;
  #queue: PendingAppend[] = [];
  #closed = false;
  /** Transactions this connection committed (changeCounter). */
  #commits = 0;
  #leaseSql: LeaseStatements | undefined;
  /** Run once the connection has closed (a read-only open removes the files it created beside the database). */
  readonly #afterClose: (() => void) | undefined;
  readonly #appendHooks = new Set<AppendTransactionHook>();
  readonly projectionHost: SyncProjectionHost;
  readonly runIndex: SqliteRunIndex;

  static open(path: string, options: SqliteOptions = {}): SqliteBackend {
    const inMemory = path === ':memory:';
    if (options.readOnly) return SqliteBackend.#openReadOnly(path);
    if (!inMemory) prepareLocation(path);
    let db: Database.Database | undefined;
    try {
      db = new Database(path);
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      // Checked before WAL mode, which would leave -wal/-shm files beside a file that is not ours.
      checkOwnership(db, path);
      // WAL lets readers (other processes included) run while one writer commits.
      db.pragma('journal_mode = WAL');
      // In WAL mode, FULL fsyncs the log on every commit, so an acknowledged append survives power loss.
      // NORMAL fsyncs only at checkpoints: several times faster, still survives a process crash and
      // never corrupts the file, but a power cut can lose the last commits.
      db.pragma(`synchronous = ${options.durability === 'normal' ? 'NORMAL' : 'FULL'}`);
      migrate(db);
      db.exec(LEASES_TABLE);
      // Once per file (a file this process may not write still opens, and refuses its first append).
      // IMMEDIATE: the state row is decided from the streams as another process may be writing them.
      const opened = db;
      if (!opened.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'run_index_state'").get())
        opened.transaction(() => opened.exec(RUN_INDEX_TABLES)).immediate();
      return new SqliteBackend(db, inMemory);
    } catch (error) {
      db?.close();
      if (error instanceof StoreConfigError) throw error;
      throw openError(path, error);
    }
  }

  /**
   * An archived copy, a file of another user: read, verify, travel in time, write nothing. WAL
   * mode still needs the -shm file beside the database, which SQLite creates when the directory
   * is writable (or finds there); a file alone in a read-only directory cannot be read in place.
   * What it created is removed again on close (sqlite/sidecars.ts): the directory is left as found.
   */
  static #openReadOnly(path: string): SqliteBackend {
    if (path === ':memory:') throw new StoreConfigError('a private in-memory SQLite database cannot be opened read-only');
    if (!existsSync(path)) throw new StoreConfigError(`${path} does not exist`, 'name an existing file: a read-only open creates none');
    const created = missingSidecars(path);
    const tidy = () => removeCreatedSidecars(path, created);
    let db: Database.Database | undefined;
    try {
      db = new Database(path, { readonly: true, fileMustExist: true });
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      checkOwnership(db, path);
      const found = db.pragma('user_version', { simple: true }) as number;
      if (found !== SCHEMA_VERSION) {
        throw new StoreConfigError(
          found === 0
            ? `${path} holds no Rewind log`
            : `${path} has Rewind schema version ${found}, which this version reads only after migrating it (to ${SCHEMA_VERSION})`,
          found === 0 ? 'name a file Rewind has written' : 'open a writable copy once (any command that is not read-only migrates it)',
        );
      }
      return new SqliteBackend(db, false, tidy);
    } catch (error) {
      db?.close();
      tidy();
      if (error instanceof StoreConfigError) throw error;
      if ((error as { code?: string }).code === 'SQLITE_READONLY_DIRECTORY') {
        throw new StoreConfigError(
          `cannot read the SQLite store ${path} in place: its directory is read-only and SQLite needs to create ${basename(path)}-shm beside it`,
          'copy the file into a writable directory and read the copy',
          { cause: error },
        );
      }
      throw openError(path, error);
    }
  }

  private constructor(db: Database.Database, inMemory: boolean, afterClose?: () => void) {
    this.#db = db;
    this.#afterClose = afterClose;
    this.runIndex = new SqliteRunIndex(db);
    // A private in-memory database has no other writers: the in-process emitter sees every append.
    this.pollIntervalMs = inMemory ? Number.POSITIVE_INFINITY : POLL_INTERVAL_MS;
    this.#sql = {
      // IMMEDIATE takes the write lock up front: a deferred transaction that reads and then writes
      // can fail with SQLITE_BUSY_SNAPSHOT when another process commits in between, and busy_timeout cannot help.
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
      savepoint: db.prepare('SAVEPOINT append_call'),
      release: db.prepare('RELEASE append_call'),
      rollbackTo: db.prepare('ROLLBACK TO append_call'),
      eventById: db.prepare<[string], EventRow>(`SELECT ${EVENT_COLUMNS} FROM events WHERE id = ?`),
      stream: db.prepare<[string], { version: number; head: string }>(
        'SELECT version, hash AS head FROM events WHERE stream_id = ? ORDER BY version DESC LIMIT 1',
      ),
      insertEvent: db.prepare(
        `INSERT INTO events (id, stream_id, version, type, schema_version, data, metadata, recorded_at, hash, digest)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertStream: db.prepare('INSERT INTO streams (stream_id) VALUES (?)'),
      // Reads fetch rows as arrays (raw mode) and without the digest: no keyed row object per event.
      readForward: db
        .prepare<[string, number, number, number], ReadRow>(
          `SELECT ${READ_COLUMNS} FROM events WHERE stream_id = ? AND version >= ? AND version <= ? ORDER BY version LIMIT ?`,
        )
        .raw(true),
      readBackward: db
        .prepare<[string, number, number, number], ReadRow>(
          `SELECT ${READ_COLUMNS} FROM events WHERE stream_id = ? AND version <= ? AND version >= ? ORDER BY version DESC LIMIT ?`,
        )
        .raw(true),
      readAll: db
        .prepare<[PageQuery], ReadRow>(
          `SELECT ${READ_COLUMNS} FROM events
         WHERE position >= @from
           AND (@low IS NULL OR stream_id >= @low) AND (@high IS NULL OR stream_id < @high)
           AND (@types IS NULL OR type IN (SELECT value FROM json_each(@types)))
           AND (@system = 1 OR substr(stream_id, 1, 1) <> '$')
         ORDER BY position LIMIT @limit`,
        )
        .raw(true),
      scanLog: db
        .prepare<[number, number, number], ScanRow>(
          `SELECT ${SCAN_COLUMNS} FROM events WHERE position >= ? AND position <= ? ORDER BY position LIMIT ?`,
        )
        .raw(true),
      scanStream: db
        .prepare<[string, number, number], ScanRow>(
          `SELECT ${SCAN_COLUMNS} FROM events WHERE stream_id = ? AND version >= ? ORDER BY version LIMIT ?`,
        )
        .raw(true),
      emptyStreams: db
        .prepare<[], string>('SELECT stream_id FROM streams s WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.stream_id = s.stream_id)')
        .pluck(),
      head: db.prepare<[], number>('SELECT coalesce(max(position), 0) FROM events').pluck(),
      streamVersion: db.prepare<[string], number>('SELECT coalesce(max(version), 0) FROM events WHERE stream_id = ?').pluck(),
      // Bounds, not `@x IS NULL OR …`, so SQLite seeks in the primary key and stops at the end of the prefix.
      listStreams: db.prepare<[StreamsQuery], StreamInfo>(listStreamsSql('')),
      listStreamsBelow: db.prepare<[StreamsQuery], StreamInfo>(listStreamsSql('AND s.stream_id < @high')),
      saveCheckpoint: db.prepare(
        'INSERT INTO checkpoints (consumer, position) VALUES (?, ?) ON CONFLICT (consumer) DO UPDATE SET position = excluded.position',
      ),
      loadCheckpoint: db.prepare<[string], number>('SELECT position FROM checkpoints WHERE consumer = ?').pluck(),
      saveSnapshot: db.prepare(
        'INSERT OR REPLACE INTO snapshots (stream_id, reducer_version, version, state, created_at) VALUES (?, ?, ?, ?, ?)',
      ),
      dropOlderSnapshots: db.prepare('DELETE FROM snapshots WHERE stream_id = ? AND reducer_version = ? AND version < ?'),
      loadSnapshot: db.prepare<[string, string, number], Snapshot<string>>(
        `SELECT stream_id AS streamId, reducer_version AS reducerVersion, version, state, created_at AS createdAt
         FROM snapshots WHERE stream_id = ? AND reducer_version = ? AND version <= ? ORDER BY version DESC LIMIT 1`,
      ),
    };
    this.#saveSnapshot = db.transaction(
      (streamId: string, reducerVersion: string, version: number, state: string, createdAt: string, replaceOlder: boolean) => {
        if (replaceOlder) this.#sql.dropOlderSnapshots.run(streamId, reducerVersion, version);
        this.#sql.saveSnapshot.run(streamId, reducerVersion, version, state, createdAt);
      },
    );
    // One read transaction: the page and its scannedTo come from the same snapshot.
    this.#readPage = db.transaction((query: PageQuery) => ({
      events: (this.#sql.readAll.all(query) as unknown as ReadRow[]).map(fromReadRow),
      scannedTo: this.#sql.head.get() as number,
    }));
    this.projectionHost = {
      kind: 'sqlite',
      database: db,
      readAllSync: (from, limit, filter) => this.#readAllSync(from, limit, filter),
      readStreamSync: (streamId, toVersion) =>
        (this.#sql.readForward.all(streamId, 1, toVersion, -1) as unknown as ReadRow[]).map(fromReadRow),
      addAppendHook: (hook) => {
        this.#appendHooks.add(hook);
        return () => this.#appendHooks.delete(hook);
      },
    };
  }

  /**
   * Group commit: calls made in the same turn of the event loop share one transaction (one fsync).
   * Each call runs in its own savepoint, so one call's refusal never fails another, and every
   * promise settles only after the COMMIT.
   */
  append(appends: PreparedAppend[]): Promise<AppendResult[]> {
    if (this.#closed) return Promise.reject(new StoreClosedError());
    if (this.#db.readonly) return Promise.reject(new StoreReadOnlyError('append'));
    return new Promise((resolve, reject) => {
      this.#queue.push({ appends, resolve, reject });
      // setImmediate rather than a microtask: it also gathers callers that resume from their own awaits this turn.
      if (this.#queue.length === 1) setImmediate(() => this.#flush());
    });
  }

  #flush(): void {
    const group = this.#queue;
    this.#queue = [];
    if (group.length === 0) return;
    const outcomes: Outcome[] = [];
    try {
      // A call alone in its transaction needs no savepoint: its refusal rolls the transaction back.
      const alone = group.length === 1;
      this.#sql.begin.run();
      try {
        for (const call of group) outcomes.push(this.#applyCall(call.appends, !alone));
        if (alone && !(outcomes[0] as Outcome).ok) this.#sql.rollback.run();
        else this.#sql.commit.run();
      } catch (error) {
        if (this.#db.inTransaction) this.#sql.rollback.run();
        throw error;
      }
    } catch (error) {
      const refused = readOnlyFailure(error, 'append');
      for (const call of group) call.reject(refused ?? error);
      return;
    }
    group.forEach((call, i) => {
      const outcome = outcomes[i] as Outcome;
      if (outcome.ok) call.resolve(outcome.results);
      else call.reject(readOnlyFailure(outcome.error, 'append') ?? outcome.error);
    });
    this.#commits++;
    queueMicrotask(() => this.#events.emit('append'));
  }

  #applyCall(appends: PreparedAppend[], savepoint: boolean): Outcome {
    if (savepoint) this.#sql.savepoint.run();
    try {
      const written: EventEnvelope[] = [];
      const results = appends.map((append) => this.#write(append, written));
      // Inside the call's savepoint (or transaction): a hook that throws takes the call's events back with it.
      const visible = this.#appendHooks.size > 0 ? written.filter((e) => !isSystemStream(e.streamId)) : [];
      if (visible.length > 0) for (const hook of this.#appendHooks) hook(visible);
      if (savepoint) this.#sql.release.run();
      return { ok: true, results };
    } catch (error) {
      // Some SQLite errors (disk full, I/O) roll back the whole transaction: then the whole group fails.
      if (!this.#db.inTransaction) throw error;
      if (savepoint) {
        this.#sql.rollbackTo.run();
        this.#sql.release.run();
      }
      return { ok: false, error };
    }
  }

  /** Adds the events it writes (not those of an idempotent retry) to `written`. */
  #write(append: PreparedAppend, fresh: EventEnvelope[]): AppendResult {
    const stored = findStoredBatch(append, (id) => this.#sql.eventById.get(id));
    if (stored) return resultOf(stored.map(toEnvelope));
    const { streamId, events } = append;
    if (append.fence) checkFence(streamId, append.fence, this.#leases.get.get(streamId));
    const stream = this.#sql.stream.get(streamId);
    const actual = stream?.version ?? 0;
    if (!expectedVersionHolds(append.expectedVersion, actual)) {
      throw new ConcurrencyError(streamId, append.expectedVersion, actual);
    }
    let version = actual;
    let previous = stream?.head ?? GENESIS_HASH;
    const written = events.map((event): EventEnvelope => {
      version++;
      const hash = chainLink(previous, version, event.recordedAt, event.digest);
      previous = hash;
      const { lastInsertRowid } = this.#sql.insertEvent.run(
        event.id,
        streamId,
        version,
        event.type,
        event.schemaVersion,
        event.dataJson,
        event.metadataJson,
        event.recordedAt,
        hash,
        event.digest,
      );
      // data and metadata were parsed afresh from their JSON by prepareAppends: nobody else holds them.
      const { id, type, schemaVersion, data, metadata, recordedAt } = event;
      return { id, streamId, version, position: Number(lastInsertRowid), type, schemaVersion, data, metadata, recordedAt, hash };
    });
    if (actual === 0) this.#sql.insertStream.run(streamId);
    const change = runIndexChange(streamId, events);
    if (change) this.runIndex.writeSync(streamId, change, version);
    fresh.push(...written);
    return resultOf(written);
  }

  async read(streamId: string, options: ReadOptions & { direction: 'forward' | 'backward' }): Promise<EventEnvelope[]> {
    this.#open();
    const limit = options.limit ?? -1;
    const rows =
      options.direction === 'forward'
        ? this.#sql.readForward.all(streamId, options.from ?? 1, options.to ?? Number.MAX_SAFE_INTEGER, limit)
        : this.#sql.readBackward.all(streamId, options.from ?? Number.MAX_SAFE_INTEGER, options.to ?? 1, limit);
    return (rows as unknown as ReadRow[]).map(fromReadRow);
  }

  async readAll(from: number, limit: number, filter: EventFilter | undefined): Promise<ReadAllPage> {
    this.#open();
    return this.#readAllSync(from, limit, filter);
  }

  #readAllSync(from: number, limit: number, filter: EventFilter | undefined): ReadAllPage {
    const [low, high] = prefixRange(filter?.streamPrefix);
    // One statement for every filter: the type list travels as a JSON array.
    const types = filter?.types ? JSON.stringify(filter.types) : null;
    return this.#readPage({ from, low, high, types, system: readsSystemStreams(filter) ? 1 : 0, limit });
  }

  async scanLog(from: number, to: number, limit: number): Promise<RawRow[]> {
    this.#open();
    return (this.#sql.scanLog.all(from, to, limit) as unknown as ScanRow[]).map(fromScanRow);
  }

  async scanStream(streamId: string, fromVersion: number, limit: number): Promise<RawRow[]> {
    this.#open();
    return (this.#sql.scanStream.all(streamId, fromVersion, limit) as unknown as ScanRow[]).map(fromScanRow);
  }

  async emptyStreams(): Promise<string[]> {
    this.#open();
    return this.#sql.emptyStreams.all() as string[];
  }

  async streamVersion(streamId: string): Promise<number> {
    this.#open();
    return this.#sql.streamVersion.get(streamId) as number;
  }

  async listStreams(options: ListStreamsOptions): Promise<StreamInfo[]> {
    this.#open();
    const [low, high] = prefixRange(options.prefix);
    // Stream ids are never empty, so '' bounds nothing.
    const query = { low: low ?? '', high, after: options.after ?? '', limit: options.limit ?? -1 };
    return (high === null ? this.#sql.listStreams : this.#sql.listStreamsBelow).all(query);
  }

  async headPosition(): Promise<number> {
    this.#open();
    return this.#sql.head.get() as number;
  }

  async saveCheckpoint(consumer: string, position: number): Promise<void> {
    this.#writable('save a consumer checkpoint');
    try {
      this.#sql.saveCheckpoint.run(consumer, position);
    } catch (error) {
      throw readOnlyFailure(error, 'save a consumer checkpoint') ?? error;
    }
  }

  async loadCheckpoint(consumer: string): Promise<number | undefined> {
    this.#open();
    return this.#sql.loadCheckpoint.get(consumer);
  }

  async saveSnapshot(snapshot: Snapshot<string>, replaceOlder: boolean): Promise<void> {
    this.#writable('save a snapshot');
    const { streamId, reducerVersion, version, state, createdAt } = snapshot;
    // IMMEDIATE, like appends: a deferred transaction that reads then writes can fail with SQLITE_BUSY_SNAPSHOT.
    try {
      this.#saveSnapshot.immediate(streamId, reducerVersion, version, state, createdAt, replaceOlder);
    } catch (error) {
      throw readOnlyFailure(error, 'save a snapshot') ?? error;
    }
  }

  async loadSnapshot(streamId: string, reducerVersion: string, atOrBefore: number | undefined): Promise<Snapshot<string> | undefined> {
    this.#open();
    return this.#sql.loadSnapshot.get(streamId, reducerVersion, atOrBefore ?? Number.MAX_SAFE_INTEGER);
  }

  async acquireLease(streamId: string, owner: string, leaseMs: number): Promise<LeaseAttempt> {
    this.#writable('acquire a lease');
    const leases = this.#leases;
    return this.#db
      .transaction((): LeaseAttempt => {
        const current = leases.get.get(streamId);
        const now = Date.now();
        if (current && !leaseFree(current, owner, now) && !holderGone(leases.pid.get(streamId)))
          return { acquired: false, holder: current };
        const lease: StreamLease = { streamId, owner, epoch: (current?.epoch ?? 0) + 1, until: now + leaseMs };
        leases.put.run({ ...lease, pid: process.pid });
        return { acquired: true, lease };
      })
      .immediate();
  }

  async renewLeases(owner: string, streamIds: readonly string[], leaseMs: number): Promise<string[]> {
    this.#writable('renew leases');
    const until = Date.now() + leaseMs;
    const leases = this.#leases;
    return this.#db.transaction(() => streamIds.filter((id) => leases.renew.run(until, id, owner).changes > 0)).immediate();
  }

  async releaseLease(streamId: string, owner: string, epoch: number): Promise<void> {
    this.#writable('release a lease');
    this.#leases.release.run(streamId, owner, epoch);
  }

  async leaseOf(streamId: string): Promise<StreamLease | undefined> {
    this.#open();
    return this.#leases.get.get(streamId);
  }

  async changeCounter(): Promise<number> {
    this.#open();
    // data_version moves when another connection commits; this connection's own commits are counted here.
    return (this.#db.pragma('data_version', { simple: true }) as number) + this.#commits;
  }

  /** The lease statements, prepared on first use: a file opened read-only may predate the table. */
  get #leases(): LeaseStatements {
    this.#leaseSql ??= leaseStatements(this.#db);
    return this.#leaseSql;
  }

  onAppend(listener: () => void): () => void {
    this.#events.on('append', listener);
    return () => this.#events.off('append', listener);
  }

  /** A table in this file, on this connection (see sqlite/run-queue.ts). */
  async openRunQueue(): Promise<RunQueue> {
    this.#writable('open the run queue');
    return new SqliteRunQueue(this.#db);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Appends already accepted still commit; the flush scheduled for them then finds an empty queue.
    this.#flush();
    this.#events.removeAllListeners();
    this.#db.close();
    this.#afterClose?.();
  }

  #open(): void {
    if (this.#closed) throw new StoreClosedError();
  }

  #writable(what: string): void {
    this.#open();
    if (this.#db.readonly) throw new StoreReadOnlyError(what);
  }
}

function checkOwnership(db: Database.Database, path: string): void {
  // One read transaction: another process creating the schema between the two reads would
  // otherwise show its tables without its application id, and look like a stranger's file.
  const { applicationId, tables } = db.transaction(() => ({
    applicationId: db.pragma('application_id', { simple: true }) as number,
    tables: db.prepare("SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'").pluck().get() as number,
  }))();
  if (applicationId !== APPLICATION_ID && (applicationId !== 0 || tables > 0)) {
    throw new StoreConfigError(`${path} is a SQLite database of another application`, 'give Rewind a file of its own');
  }
  const found = db.pragma('user_version', { simple: true }) as number;
  if (found > SCHEMA_VERSION) {
    throw new StoreConfigError(
      `${path} has Rewind schema version ${found}; this version of Rewind understands up to ${SCHEMA_VERSION}`,
      'upgrade Rewind to open this file',
    );
  }
}

function migrate(db: Database.Database): void {
  // IMMEDIATE: two processes opening a new file at once create the schema one after the other.
  db.transaction(() => {
    if ((db.pragma('user_version', { simple: true }) as number) >= SCHEMA_VERSION) return;
    // Version 1 kept each stream's head in the streams table, updated by every append; the events hold it already.
    const columns = db.prepare("SELECT name FROM pragma_table_info('streams')").pluck().all() as string[];
    for (const column of ['version', 'head', 'position'])
      if (columns.includes(column)) db.exec(`ALTER TABLE streams DROP COLUMN ${column}`);
    db.exec(SCHEMA);
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

/** Refuses a directory before SQLite sees it, and creates the parent directory of a new file. */
function prepareLocation(path: string): void {
  let isDirectory = false;
  try {
    isDirectory = statSync(path).isDirectory();
  } catch {
    // Not there yet: SQLite creates it.
  }
  if (isDirectory) {
    throw new StoreConfigError(`${path} is a directory, not a SQLite file`, `name a file inside it, e.g. 'sqlite:${path}/rewind.db'`);
  }
  try {
    mkdirSync(dirname(path), { recursive: true });
  } catch (error) {
    throw new StoreConfigError(
      `cannot create the directory for ${path}: ${(error as Error).message}`,
      'check the path and its permissions',
    );
  }
}

/** SQLite opens a file it may not write read-only without a word; the first write then fails with SQLITE_READONLY. */
function readOnlyFailure(error: unknown, what: string): StoreReadOnlyError | undefined {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_READONLY')) return undefined;
  return new StoreReadOnlyError(
    what,
    'this process may not write the SQLite file (or its directory)',
    'make the file and its directory writable, or work on a writable copy',
    { cause: error },
  );
}

function openError(path: string, error: unknown): StoreConfigError {
  const code = (error as { code?: string }).code;
  const message = `cannot open the SQLite store ${path}: ${(error as Error).message}`;
  if (code === 'SQLITE_NOTADB') {
    return new StoreConfigError(message, 'the file exists but is not a SQLite database; point at a new or Rewind-made file');
  }
  if (code === 'SQLITE_CANTOPEN' || code === 'SQLITE_READONLY' || code === 'SQLITE_PERM') {
    return new StoreConfigError(message, 'check that the file and its directory are writable');
  }
  if (code === 'SQLITE_FULL') return new StoreConfigError(message, 'the disk is full');
  if (code === 'SQLITE_BUSY') return new StoreConfigError(message, `another process held the file locked for over ${BUSY_TIMEOUT_MS} ms`);
  if (code === 'SQLITE_CORRUPT') return new StoreConfigError(message, 'the file is damaged; restore it from a backup');
  return new StoreConfigError(message);
}

function listStreamsSql(upperBound: string): string {
  // Each stream's head is its newest event: one seek in the (stream_id, version) index per stream listed.
  return `SELECT s.stream_id AS streamId, e.version, e.hash AS head, e.position FROM streams s
    JOIN events e ON e.position = (SELECT position FROM events WHERE stream_id = s.stream_id ORDER BY version DESC LIMIT 1)
    WHERE s.stream_id >= @low AND s.stream_id > @after ${upperBound} ORDER BY s.stream_id LIMIT @limit`;
}

function fromScanRow(row: ScanRow): RawRow {
  const [position, id, streamId, version, type, schemaVersion, data, metadata, recordedAt, hash, digest] = row;
  return { position, id, streamId, version, type, schemaVersion, data, metadata, recordedAt, hash, digest };
}

function fromReadRow(row: ReadRow): EventEnvelope {
  return {
    id: row[0],
    streamId: row[1],
    version: row[2],
    position: row[3],
    type: row[4],
    schemaVersion: row[5],
    data: JSON.parse(row[6]),
    metadata: JSON.parse(row[7]),
    recordedAt: row[8],
    hash: row[9],
  };
}

function toEnvelope(row: EventRow): EventEnvelope {
  return {
    id: row.id,
    streamId: row.streamId,
    version: row.version,
    position: row.position,
    type: row.type,
    schemaVersion: row.schemaVersion,
    data: JSON.parse(row.data),
    metadata: JSON.parse(row.metadata),
    recordedAt: row.recordedAt,
    hash: row.hash,
  };
}
