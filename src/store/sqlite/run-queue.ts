import type Database from 'better-sqlite3';
import { type ClaimedRun, claimedOf, type QueueEntry, type RunQueue, type RunRequest, Wakers } from '../run-queue.js';

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
 * Made by SqliteBackend.openRunQueue() on the log's own connection.
 */
export class SqliteRunQueue implements RunQueue {
  readonly #db: Database.Database;
  readonly #wakers = new Wakers();
  readonly #sql;

  constructor(db: Database.Database) {
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
