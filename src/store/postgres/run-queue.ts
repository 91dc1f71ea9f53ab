import type pg from 'pg';
import { type ClaimedRun, type QueueEntry, type RunQueue, type RunRequest, Wakers } from '../run-queue.js';
import { PgListener } from './listener.js';

/*
 * The run queue on PostgreSQL (the contract is store/run-queue.ts): which runs
 * are runnable and which worker holds each one, in the log's schema.
 *
 * - A row per run. `generation` counts requests: a release only marks a run
 *   done when no request arrived since its claim, otherwise it goes straight
 *   back to 'queued', so a rollback asked for while a worker drives the run is
 *   never lost.
 * - Claims take rows with FOR UPDATE SKIP LOCKED, so concurrent claimers never
 *   wait on each other nor take the same row. A lease is an expiry time; a
 *   leased row whose lease has passed is claimable again: that is how a dead
 *   worker's runs come back. Every time is the database's now(), so the clocks
 *   of the workers' machines never matter.
 * - The lease is not the last guard: every append to the run's stream still
 *   expects the version its driver last saw.
 */

/** Channel shared by every schema; the payload names the schema. */
export const RUN_QUEUE_CHANNEL = 'rewind_run_queue';

interface Row {
  run_id: string;
  workflow: string;
  request: RunRequest;
  generation: number;
  attempts: number;
}

export class PostgresRunQueue implements RunQueue {
  readonly #pool: pg.Pool;
  readonly #s: string;
  readonly #name: string;
  readonly #wakers = new Wakers();
  readonly #listener: PgListener;
  #closed = false;

  private constructor(pool: pg.Pool, quotedSchema: string) {
    this.#pool = pool;
    this.#s = quotedSchema;
    this.#name = quotedSchema.replace(/^"|"$/g, '');
    this.#listener = new PgListener({
      connectionString: pool.options.connectionString,
      applicationName: `rewind queue ${this.#name}`,
      channel: RUN_QUEUE_CHANNEL,
      payload: this.#name,
      // After a reconnect too: requests may have arrived while nobody listened.
      onNotify: () => this.#wakers.wake(),
    });
  }

  /** `quotedSchema` is the schema the log lives in, quoted (as PostgresProjectionHost gives it). */
  static async open(pool: pg.Pool, quotedSchema: string): Promise<PostgresRunQueue> {
    const queue = new PostgresRunQueue(pool, quotedSchema);
    await queue.#migrate();
    // Workers also poll, so they can run before the LISTEN connection is up.
    await queue.#listener.start().catch(() => queue.#listener.retryInBackground());
    return queue;
  }

  async #migrate(): Promise<void> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      // The lock the log's own migrations take: processes opening a fresh schema at once never race on DDL.
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', ['rewind.migrate', this.#name]);
      await client.query(`
        CREATE TABLE IF NOT EXISTS ${this.#s}.run_queue (
          run_id text COLLATE "C" PRIMARY KEY,
          workflow text NOT NULL,
          request text NOT NULL,
          state text NOT NULL CHECK (state IN ('queued', 'leased', 'done')),
          generation integer NOT NULL DEFAULT 1,
          lease_owner text,
          lease_until timestamptz,
          available_at timestamptz NOT NULL,
          attempts integer NOT NULL DEFAULT 0,
          updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX IF NOT EXISTS run_queue_due ON ${this.#s}.run_queue (available_at) WHERE state = 'queued';
        CREATE INDEX IF NOT EXISTS run_queue_leases ON ${this.#s}.run_queue (lease_until) WHERE state = 'leased';
      `);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  async enqueue(runId: string, workflow: string, request: RunRequest, options: { delayMs?: number } = {}): Promise<void> {
    const delay = Math.max(0, options.delayMs ?? 0);
    // A run a worker holds stays leased: its release sees the new generation and queues it again.
    await this.#pool.query(
      `WITH up AS (
         INSERT INTO ${this.#s}.run_queue AS q (run_id, workflow, request, state, available_at)
         VALUES ($1, $2, $3, 'queued', now() + $4::float8 * interval '1 millisecond')
         ON CONFLICT (run_id) DO UPDATE SET
           -- A delayed enqueue is insurance (see RunQueue.enqueue), never a new request for a run that has one pending.
           request = CASE WHEN q.state = 'done' OR $4::float8 = 0 THEN EXCLUDED.request ELSE q.request END,
           generation = q.generation + 1,
           state = CASE WHEN q.state = 'leased' THEN 'leased' ELSE 'queued' END,
           available_at = CASE WHEN q.state = 'queued' THEN least(q.available_at, EXCLUDED.available_at) ELSE EXCLUDED.available_at END,
           attempts = CASE WHEN q.state = 'done' THEN 0 ELSE q.attempts END,
           updated_at = now()
         RETURNING 1)
       SELECT pg_notify($5, $6) FROM up WHERE $4::float8 = 0`,
      [runId, workflow, request, delay, RUN_QUEUE_CHANNEL, this.#name],
    );
  }

  async claim(owner: string, limit: number, leaseMs: number, workflows?: readonly string[]): Promise<ClaimedRun[]> {
    if (limit <= 0) return [];
    const { rows } = await this.#pool.query<Row>(
      `WITH picked AS (
         SELECT run_id FROM ${this.#s}.run_queue
         WHERE ((state = 'queued' AND available_at <= now()) OR (state = 'leased' AND lease_until < now()))
           AND ($3::text[] IS NULL OR workflow = ANY ($3))
         ORDER BY available_at
         LIMIT $2::int
         FOR UPDATE SKIP LOCKED)
       UPDATE ${this.#s}.run_queue q
       SET state = 'leased', lease_owner = $1, lease_until = now() + $4::float8 * interval '1 millisecond',
           attempts = q.attempts + 1, updated_at = now()
       FROM picked WHERE q.run_id = picked.run_id
       RETURNING q.run_id, q.workflow, q.request, q.generation, q.attempts`,
      [owner, limit, workflows ? [...workflows] : null, leaseMs],
    );
    return rows.map(fromRow);
  }

  async renew(owner: string, runIds: readonly string[], leaseMs: number): Promise<string[]> {
    if (runIds.length === 0) return [];
    const { rows } = await this.#pool.query<{ run_id: string }>(
      `UPDATE ${this.#s}.run_queue SET lease_until = now() + $3::float8 * interval '1 millisecond', updated_at = now()
       WHERE lease_owner = $1 AND state = 'leased' AND run_id = ANY ($2)
       RETURNING run_id`,
      [owner, [...runIds], leaseMs],
    );
    return rows.map((r) => r.run_id);
  }

  async release(owner: string, run: ClaimedRun, outcome: { done: boolean; delayMs?: number }): Promise<void> {
    const delay = Math.max(0, outcome.delayMs ?? 0);
    // Only the holder releases; a worker whose lease was taken over releases nothing.
    await this.#pool.query(
      `WITH r AS (
         UPDATE ${this.#s}.run_queue SET
           state = CASE WHEN $3::boolean AND generation = $4::int THEN 'done' ELSE 'queued' END,
           available_at = now() + CASE WHEN generation = $4::int THEN $5::float8 ELSE 0 END * interval '1 millisecond',
           attempts = CASE WHEN $3::boolean AND generation = $4::int THEN 0 ELSE attempts END,
           lease_owner = NULL, lease_until = NULL, updated_at = now()
         WHERE run_id = $1 AND lease_owner = $2 AND state = 'leased'
         RETURNING state, available_at <= now() AS due)
       SELECT pg_notify($6, $7) FROM r WHERE state = 'queued' AND due`,
      [run.runId, owner, outcome.done, run.generation, delay, RUN_QUEUE_CHANNEL, this.#name],
    );
  }

  async list(): Promise<QueueEntry[]> {
    const { rows } = await this.#pool.query<
      Row & { state: QueueEntry['state']; lease_owner: string | null; lease_until: Date | null; available_at: Date }
    >(
      `SELECT run_id, workflow, request, generation, attempts, state, lease_owner, lease_until, available_at FROM ${this.#s}.run_queue ORDER BY run_id`,
    );
    return rows.map((r) => ({
      ...fromRow(r),
      state: r.state,
      leaseOwner: r.lease_owner,
      leaseUntil: r.lease_until ? r.lease_until.getTime() : null,
      availableAt: r.available_at.getTime(),
    }));
  }

  /** Called after another process (or this one) made runs runnable; a poll must cover a dropped connection and delayed runs. */
  onWake(listener: () => void): () => void {
    return this.#wakers.add(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#wakers.clear();
    await this.#listener.close();
  }
}

function fromRow(r: Row): ClaimedRun {
  return { runId: r.run_id, workflow: r.workflow, request: r.request, generation: r.generation, attempts: r.attempts };
}
