import type BetterSqlite3 from 'better-sqlite3';
import { StoreConfigError } from '../events/errors.js';
import { storageBackendOf } from '../store/event-store.js';
import type { EventStore } from '../store/types.js';

/** Why a run became runnable. Only 'resume' changes how it is driven: it continues a run rolled back with after 'stop'. */
export type RunRequest = 'start' | 'resume' | 'rollback' | 'retry' | 'resolve' | 'signal';

export interface ClaimedRun {
  runId: string;
  workflow: string;
  request: RunRequest;
  /** Requests made for the run so far; a release compares it to tell whether one arrived during the lease. */
  generation: number;
  /** Claims since the run was last done: how often a worker took it without finishing it. */
  attempts: number;
}

export interface QueueEntry extends ClaimedRun {
  state: 'queued' | 'leased' | 'done';
  leaseOwner: string | null;
  /** Epoch ms. */
  leaseUntil: number | null;
  availableAt: number;
}

/**
 * Which runs are runnable and which worker holds each. A lease is an expiry
 * time: a worker that dies simply stops renewing, and its runs become
 * claimable once their leases pass. The lease keeps workers from driving a
 * run together; the expected version of every append stays the final guard.
 */
export interface RunQueue {
  /**
   * Makes the run runnable for any worker and wakes idle workers. A run someone
   * holds stays theirs until released. With `delayMs` it is insurance taken
   * before a request is appended, due only later: it never replaces the request
   * of a run that already has one pending.
   */
  enqueue(runId: string, workflow: string, request: RunRequest, options?: { delayMs?: number }): Promise<void>;
  /** Leases up to `limit` runnable runs to `owner`: queued and due, or leased with the lease passed. Only the given workflows, when given. */
  claim(owner: string, limit: number, leaseMs: number, workflows?: readonly string[]): Promise<ClaimedRun[]>;
  /** Extends the owner's leases; returns the ids it still holds. A missing id was taken over: stop driving it. */
  renew(owner: string, runIds: readonly string[], leaseMs: number): Promise<string[]>;
  /**
   * Lets go of a held run: done, or queued again after `delayMs`. A request that
   * arrived since the claim wins over both: the run is queued again at once.
   */
  release(owner: string, run: ClaimedRun, outcome: { done: boolean; delayMs?: number }): Promise<void>;
  list(): Promise<QueueEntry[]>;
  /** Calls the listener when runs may have become runnable. Best effort: pollers cover what it misses. */
  onWake(listener: () => void): () => void;
  close(): Promise<void>;
}

interface Shared {
  queue: Promise<RunQueue>;
  refs: number;
}

const shared = new WeakMap<EventStore, Shared>();

/**
 * The run queue kept beside the store's log: a table in the same PostgreSQL
 * schema or SQLite file, or in-process for a memory store. Handles on one store
 * share one queue (one LISTEN connection); closing a handle closes the queue
 * only when it was the last.
 */
export async function openRunQueue(store: EventStore): Promise<RunQueue> {
  let entry = shared.get(store);
  if (!entry) {
    const created: Shared = { queue: createQueue(store), refs: 0 };
    entry = created;
    shared.set(store, created);
    created.queue.catch(() => {
      if (shared.get(store) === created) shared.delete(store);
    });
  }
  const own = entry;
  const queue = await own.queue;
  own.refs++;
  let closed = false;
  return {
    enqueue: (...a) => queue.enqueue(...a),
    claim: (...a) => queue.claim(...a),
    renew: (...a) => queue.renew(...a),
    release: (...a) => queue.release(...a),
    list: () => queue.list(),
    onWake: (l) => queue.onWake(l),
    close: async () => {
      if (closed) return;
      closed = true;
      if (--own.refs > 0) return;
      if (shared.get(store) === own) shared.delete(store);
      await queue.close();
    },
  };
}

async function createQueue(store: EventStore): Promise<RunQueue> {
  const host = storageBackendOf(store)?.projectionHost;
  if (host?.kind === 'postgres') {
    const { PostgresRunQueue } = await import('../store/postgres/run-queue.js');
    const queue: RunQueue = await PostgresRunQueue.open(host.pool, host.schema);
    return queue;
  }
  if (host?.kind === 'sqlite' && host.database) return new SqliteRunQueue(host.database);
  if (host?.kind === 'memory') return new MemoryRunQueue();
  throw new StoreConfigError(
    `the ${store.backend} store has no run queue`,
    'workers need a memory, SQLite or PostgreSQL store opened with openStore()',
  );
}

/** The in-process queues' wake-up listeners. */
class Wakers {
  readonly #listeners = new Set<() => void>();

  add(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  clear(): void {
    this.#listeners.clear();
  }

  wake(): void {
    // Not synchronously: the caller is usually inside a claim loop of its own.
    queueMicrotask(() => {
      for (const l of this.#listeners) l();
    });
  }
}

/** Memory: one process, one map. */
export class MemoryRunQueue implements RunQueue {
  readonly #rows = new Map<string, QueueEntry>();
  readonly #wakers = new Wakers();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  async enqueue(runId: string, workflow: string, request: RunRequest, options: { delayMs?: number } = {}): Promise<void> {
    const at = this.#now() + Math.max(0, options.delayMs ?? 0);
    const row = this.#rows.get(runId);
    if (!row) {
      this.#rows.set(runId, {
        runId,
        workflow,
        request,
        generation: 1,
        attempts: 0,
        state: 'queued',
        leaseOwner: null,
        leaseUntil: null,
        availableAt: at,
      });
    } else {
      // A run's workflow never changes: the first enqueue named it.
      Object.assign(row, {
        request: row.state === 'done' || !options.delayMs ? request : row.request,
        generation: row.generation + 1,
        attempts: row.state === 'done' ? 0 : row.attempts,
        availableAt: row.state === 'queued' ? Math.min(row.availableAt, at) : at,
        state: row.state === 'leased' ? 'leased' : 'queued',
      });
    }
    if (!options.delayMs) this.#wakers.wake();
  }

  async claim(owner: string, limit: number, leaseMs: number, workflows?: readonly string[]): Promise<ClaimedRun[]> {
    const now = this.#now();
    const due = [...this.#rows.values()]
      .filter((r) => isClaimable(r, now) && (!workflows || workflows.includes(r.workflow)))
      .sort((a, b) => a.availableAt - b.availableAt)
      .slice(0, Math.max(0, limit));
    for (const r of due) Object.assign(r, { state: 'leased', leaseOwner: owner, leaseUntil: now + leaseMs, attempts: r.attempts + 1 });
    return due.map(claimedOf);
  }

  async renew(owner: string, runIds: readonly string[], leaseMs: number): Promise<string[]> {
    const held: string[] = [];
    for (const id of runIds) {
      const r = this.#rows.get(id);
      if (r?.state === 'leased' && r.leaseOwner === owner) {
        r.leaseUntil = this.#now() + leaseMs;
        held.push(id);
      }
    }
    return held;
  }

  async release(owner: string, run: ClaimedRun, outcome: { done: boolean; delayMs?: number }): Promise<void> {
    const r = this.#rows.get(run.runId);
    if (r?.state !== 'leased' || r.leaseOwner !== owner) return;
    const same = r.generation === run.generation;
    const state = outcome.done && same ? 'done' : 'queued';
    const delay = same ? Math.max(0, outcome.delayMs ?? 0) : 0;
    Object.assign(r, {
      state,
      availableAt: this.#now() + delay,
      attempts: state === 'done' ? 0 : r.attempts,
      leaseOwner: null,
      leaseUntil: null,
    });
    if (state === 'queued' && delay === 0) this.#wakers.wake();
  }

  async list(): Promise<QueueEntry[]> {
    return [...this.#rows.values()].map((r) => ({ ...r })).sort((a, b) => (a.runId < b.runId ? -1 : 1));
  }

  onWake(listener: () => void): () => void {
    return this.#wakers.add(listener);
  }

  async close(): Promise<void> {
    this.#wakers.clear();
  }
}

interface SqliteRow {
  run_id: string;
  workflow: string;
  request: RunRequest;
  generation: number;
  attempts: number;
  state: QueueEntry['state'];
  lease_owner: string | null;
  lease_until: number | null;
  available_at: number;
}

/**
 * SQLite: a table in the log's file. Processes on one machine share it; SQLite's
 * write lock serialises claims, so a plain UPDATE … WHERE the lease has passed is
 * enough. Times are this machine's clock, which every process on it shares.
 * Wake-ups reach only this process: workers elsewhere poll.
 *
 * @internal Made by openRunQueue(store); its constructor takes the driver's handle, whose types are not a dependency of the package.
 */
export class SqliteRunQueue implements RunQueue {
  readonly #db: BetterSqlite3.Database;
  readonly #wakers = new Wakers();
  readonly #sql;

  constructor(db: BetterSqlite3.Database) {
    this.#db = db;
    db.exec(`
      CREATE TABLE IF NOT EXISTS run_queue (
        run_id TEXT PRIMARY KEY,
        workflow TEXT NOT NULL,
        request TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'leased', 'done')),
        generation INTEGER NOT NULL DEFAULT 1,
        lease_owner TEXT,
        lease_until INTEGER,
        available_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0
      ) STRICT;
      CREATE INDEX IF NOT EXISTS run_queue_due ON run_queue (available_at) WHERE state != 'done';
    `);
    this.#sql = {
      enqueue: db.prepare<[{ runId: string; workflow: string; request: string; at: number; delayed: number }]>(
        `INSERT INTO run_queue AS q (run_id, workflow, request, state, available_at) VALUES (@runId, @workflow, @request, 'queued', @at)
         ON CONFLICT (run_id) DO UPDATE SET
           request = CASE WHEN q.state = 'done' OR @delayed = 0 THEN excluded.request ELSE q.request END,
           generation = q.generation + 1,
           state = CASE WHEN q.state = 'leased' THEN 'leased' ELSE 'queued' END,
           available_at = CASE WHEN q.state = 'queued' THEN min(q.available_at, excluded.available_at) ELSE excluded.available_at END,
           attempts = CASE WHEN q.state = 'done' THEN 0 ELSE q.attempts END`,
      ),
      due: db.prepare<[{ now: number; limit: number }], SqliteRow>(
        `SELECT * FROM run_queue
         WHERE (state = 'queued' AND available_at <= @now) OR (state = 'leased' AND lease_until < @now)
         ORDER BY available_at LIMIT @limit`,
      ),
      lease: db.prepare<[{ owner: string; until: number; runId: string }]>(
        `UPDATE run_queue SET state = 'leased', lease_owner = @owner, lease_until = @until, attempts = attempts + 1 WHERE run_id = @runId`,
      ),
      renew: db.prepare<[{ until: number; owner: string; runId: string }]>(
        `UPDATE run_queue SET lease_until = @until WHERE run_id = @runId AND lease_owner = @owner AND state = 'leased'`,
      ),
      release: db.prepare<[{ runId: string; owner: string; done: number; generation: number; now: number; delay: number }]>(
        `UPDATE run_queue SET
           state = CASE WHEN @done AND generation = @generation THEN 'done' ELSE 'queued' END,
           available_at = @now + CASE WHEN generation = @generation THEN @delay ELSE 0 END,
           attempts = CASE WHEN @done AND generation = @generation THEN 0 ELSE attempts END,
           lease_owner = NULL, lease_until = NULL
         WHERE run_id = @runId AND lease_owner = @owner AND state = 'leased'
         RETURNING state, available_at`,
      ),
      list: db.prepare<[], SqliteRow>('SELECT * FROM run_queue ORDER BY run_id'),
    };
  }

  async enqueue(runId: string, workflow: string, request: RunRequest, options: { delayMs?: number } = {}): Promise<void> {
    const delay = Math.max(0, options.delayMs ?? 0);
    this.#sql.enqueue.run({ runId, workflow, request, at: Date.now() + delay, delayed: delay > 0 ? 1 : 0 });
    if (!options.delayMs) this.#wakers.wake();
  }

  async claim(owner: string, limit: number, leaseMs: number, workflows?: readonly string[]): Promise<ClaimedRun[]> {
    if (limit <= 0) return [];
    // IMMEDIATE: the write lock is taken before the read, so two processes never pick the same rows.
    return this.#db
      .transaction(() => {
        const now = Date.now();
        const picked: ClaimedRun[] = [];
        // Read more than the limit when filtering by workflow, so runs of other workflows do not hide ours.
        for (const row of this.#sql.due.all({ now, limit: workflows ? limit * 10 : limit })) {
          if (picked.length >= limit) break;
          if (workflows && !workflows.includes(row.workflow)) continue;
          this.#sql.lease.run({ owner, until: now + leaseMs, runId: row.run_id });
          picked.push(claimedOf({ ...fromSqlite(row), attempts: row.attempts + 1 }));
        }
        return picked;
      })
      .immediate();
  }

  async renew(owner: string, runIds: readonly string[], leaseMs: number): Promise<string[]> {
    const until = Date.now() + leaseMs;
    return this.#db.transaction(() => runIds.filter((id) => this.#sql.renew.run({ until, owner, runId: id }).changes === 1)).immediate();
  }

  async release(owner: string, run: ClaimedRun, outcome: { done: boolean; delayMs?: number }): Promise<void> {
    const now = Date.now();
    const row = this.#sql.release.get({
      runId: run.runId,
      owner,
      done: outcome.done ? 1 : 0,
      generation: run.generation,
      now,
      delay: Math.max(0, outcome.delayMs ?? 0),
    }) as { state: string; available_at: number } | undefined;
    if (row?.state === 'queued' && row.available_at <= now) this.#wakers.wake();
  }

  async list(): Promise<QueueEntry[]> {
    return this.#sql.list.all().map(fromSqlite);
  }

  onWake(listener: () => void): () => void {
    return this.#wakers.add(listener);
  }

  async close(): Promise<void> {
    this.#wakers.clear();
  }
}

function isClaimable(r: QueueEntry, now: number): boolean {
  return (r.state === 'queued' && r.availableAt <= now) || (r.state === 'leased' && (r.leaseUntil ?? 0) < now);
}

function claimedOf(r: ClaimedRun): ClaimedRun {
  return { runId: r.runId, workflow: r.workflow, request: r.request, generation: r.generation, attempts: r.attempts };
}

function fromSqlite(r: SqliteRow): QueueEntry {
  return {
    runId: r.run_id,
    workflow: r.workflow,
    request: r.request,
    generation: r.generation,
    attempts: r.attempts,
    state: r.state,
    leaseOwner: r.lease_owner,
    leaseUntil: r.lease_until,
    availableAt: r.available_at,
  };
}
