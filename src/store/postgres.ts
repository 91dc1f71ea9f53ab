import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { EventEnvelope } from '../events/envelope.js';
import {
  ConcurrencyError,
  EventIdConflictError,
  LeaseLostError,
  RewindError,
  StoreConfigError,
  ValidationError,
} from '../events/errors.js';
import { resultOf } from './append-result.js';
import { Announcer } from './postgres/announcer.js';
import { AppendQueue, type CallOutcome } from './postgres/append-queue.js';
import { PgListener } from './postgres/listener.js';
import { PostgresRunIndex } from './postgres/run-index.js';
import { PostgresRunQueue } from './postgres/run-queue.js';
import { INLINE_LOCK, migrations, NOTIFY_CHANNEL, SQLSTATE, STREAM_LOCK } from './postgres/schema.js';
import { runIndexChange } from './run-index.js';
import type { RunQueue } from './run-queue.js';
import { isSystemStream, readsSystemStreams } from './system-streams.js';
import type {
  AppendResult,
  EventFilter,
  LeaseAttempt,
  ListStreamsOptions,
  PostgresAppendHook,
  PostgresProjectionHost,
  PreparedAppend,
  PreparedEvent,
  RawRow,
  ReadAllPage,
  ReadOptions,
  Snapshot,
  StorageBackend,
  StreamInfo,
  StreamLease,
} from './types.js';

export interface PostgresOptions {
  /** Connections in the pool (default 10); the listener has its own. */
  poolSize?: number;
  /** Schema holding Rewind's tables (default 'rewind'). */
  schema?: string;
  /** Give up connecting after this long (default 10 s). */
  connectTimeoutMs?: number;
}

/*
 * THE GLOBAL ORDER. Positions come from a sequence, but transactions commit in
 * any order, so a reader that trusts "highest committed position" can pass a
 * position whose transaction is still running and never come back for it.
 *
 * Every event row records its transaction id. A reader takes
 * xmin = pg_snapshot_xmin(pg_current_snapshot()): every transaction below it
 * has finished, so the set {events with tx_id < xmin} is final. That alone is
 * not enough: xids are handed out at a transaction's first write and positions
 * at its insert, so a transaction with a smaller xid could draw larger
 * positions than a later one, and returning its events would skip the other's.
 * append_calls() therefore takes the xid and draws all its positions inside
 * one short per-schema mutex, and takes no xid before it (stream locks are
 * advisory, so they need none). Hence xid order equals position order: every
 * event not yet visible under the xmin rule (in flight, or future) has a
 * position above every event that is. So readAll returns only tx_id < xmin,
 * and scannedTo = the highest position with tx_id < xmin: every position at or
 * below it is returned, filtered out, or will never exist (a rolled-back gap).
 *
 * Cost: any long-running writing transaction on the server holds xmin back and
 * delays delivery (never loses it) until it ends. Positions are bigint in SQL
 * and numbers here: exact up to 2^53, far beyond any real log.
 */

const DEFAULT_SCHEMA = 'rewind';
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const POLL_MS = 750;
/** At most one NOTIFY per this long, after the first (see postgres/announcer.ts). */
const NOTIFY_EVERY_MS = 10;
/** An id inserted concurrently into another stream surfaces as a unique violation: retry to report it properly. */
const APPEND_ATTEMPTS = 3;
/** Group commit (postgres/append-queue.ts): calls in one group, at most. */
const CALLS_PER_GROUP = 64;

interface EventRow {
  id: string;
  stream_id: string;
  version: number;
  position: string;
  type: string;
  schema_version: number;
  data: unknown;
  metadata: EventEnvelope['metadata'];
  recorded_at: string;
  hash: string;
}

/** The highest position readable under the xmin rule; xid order is position order, so the (tx_id, position) index finds it at once. */
const TOP_VISIBLE_POSITION = `SELECT (SELECT e.position FROM $s.events e
  WHERE e.tx_id < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY e.tx_id DESC, e.position DESC LIMIT 1) AS top`;

/** A row of append_calls(): an event written (r_call null), an event a repeated append finds stored, or a call's refusal (r_error). */
type AppendedRow = Pick<EventRow, 'id' | 'version' | 'position' | 'recorded_at' | 'hash'> & {
  r_call: number | null;
  r_ord: number | null;
  r_error: string | null;
  r_message: string | null;
  r_detail: string | null;
};

const EVENT_COLUMNS = 'id, stream_id, version, position, type, schema_version, data, metadata, recorded_at, hash';

/** Verification reads the stored text of data and metadata (json keeps it byte for byte), not values pg has parsed. */
const SCAN_COLUMNS =
  'position, id, stream_id, version, type, schema_version, data::text AS data, metadata::text AS metadata, recorded_at, hash, digest';
type ScanRow = Omit<EventRow, 'data' | 'metadata'> & { data: string; metadata: string; digest: string };

function fromScanRow(row: ScanRow): RawRow {
  return {
    position: Number(row.position),
    id: row.id,
    streamId: row.stream_id,
    version: row.version,
    type: row.type,
    schemaVersion: row.schema_version,
    data: row.data,
    metadata: row.metadata,
    recordedAt: row.recorded_at,
    hash: row.hash,
    digest: row.digest,
  };
}

/** PostgreSQL: several processes may share one schema; subscribers wake on LISTEN/NOTIFY. */
export class PostgresBackend implements StorageBackend {
  readonly name = 'postgres';
  /** NOTIFY covers appends; the poll covers a dropped listener and xmin held back by a non-append transaction. */
  readonly pollIntervalMs = POLL_MS;
  /** An identity column: a rolled-back append leaves its positions unused. */
  readonly densePositions = false;
  readonly #pool: pg.Pool;
  readonly #schema: string;
  readonly #s: string;
  readonly #events = new EventEmitter().setMaxListeners(0);
  readonly #listener: PgListener;
  #closed = false;
  /** Wake-ups so far: this process's appends and other processes' notifications (changeCounter). */
  #changes = 0;
  readonly projectionHost: PostgresProjectionHost;
  readonly runIndex: PostgresRunIndex;
  readonly #appendHooks = new Set<PostgresAppendHook>();
  readonly #queue = new AppendQueue<PreparedAppend[], AppendResult[]>((calls) => this.#appendGroup(calls), CALLS_PER_GROUP);
  readonly #announcer = new Announcer({
    sendAlone: () => this.#notifyAlone(),
    busy: () => !this.#queue.idle,
    everyMs: NOTIFY_EVERY_MS,
  });

  private constructor(url: string, pool: pg.Pool, schema: string, connectTimeoutMs: number) {
    this.#listener = new PgListener({
      connectionString: url,
      applicationName: `rewind listener ${schema}`,
      channel: NOTIFY_CHANNEL,
      payload: schema,
      connectTimeoutMs,
      // After a reconnect too: appends may have landed while nobody listened.
      onNotify: () => this.#wake(),
    });
    this.#pool = pool;
    this.#schema = schema;
    this.#s = `"${schema}"`;
    this.runIndex = new PostgresRunIndex(pool, this.#s, STREAM_LOCK('sid', `'${schema}'`));
    this.projectionHost = {
      kind: 'postgres',
      pool,
      schema: this.#s,
      inlineLock: INLINE_LOCK(`'${schema}'`),
      addAppendHook: (hook) => {
        this.#appendHooks.add(hook);
        return () => this.#appendHooks.delete(hook);
      },
    };
  }

  static async connect(url: string, options: PostgresOptions = {}): Promise<PostgresBackend> {
    const schema = options.schema ?? DEFAULT_SCHEMA;
    if (typeof schema !== 'string' || !IDENTIFIER.test(schema)) {
      throw new StoreConfigError(
        `"${String(schema)}" is not a usable schema name`,
        'use letters, digits and _, at most 63, not starting with a digit',
      );
    }
    const poolSize = options.poolSize ?? 10;
    if (!Number.isInteger(poolSize) || poolSize < 1) throw new StoreConfigError('poolSize must be a positive integer');
    const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    // Without a timeout an unreachable host (a dropped SYN) hangs until the OS gives up, minutes later.
    const pool = new pg.Pool({
      connectionString: url,
      max: poolSize,
      application_name: 'rewind',
      connectionTimeoutMillis: connectTimeoutMs,
    });
    // An idle client losing its connection must not crash the process; the pool replaces it.
    pool.on('error', () => {});
    const backend = new PostgresBackend(url, pool, schema, connectTimeoutMs);
    try {
      await backend.#migrate();
      await backend.#listener.start();
    } catch (error) {
      await backend.close();
      if (!(error instanceof pg.DatabaseError) && !(error instanceof RewindError)) {
        // A network error (ECONNREFUSED, ENOTFOUND, a connect timeout…): say where, never the password.
        throw new StoreConfigError(
          `cannot reach PostgreSQL at ${where(url)}: ${(error as Error).message}`,
          'check the URL and that the server is running',
        );
      }
      throw error;
    }
    return backend;
  }

  async #migrate(): Promise<void> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      // Several processes may open a fresh schema at once: one migrates, the others wait and find it done.
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', ['rewind.migrate', this.#schema]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${this.#s}`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${this.#s}.migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
      );
      const { rows } = await client.query<{ v: number }>(`SELECT coalesce(max(version), 0) AS v FROM ${this.#s}.migrations`);
      const done = rows[0]?.v ?? 0;
      const all = migrations(this.#s, this.#schema);
      if (done > all.length)
        throw new StoreConfigError(
          `schema "${this.#schema}" was migrated by a newer Rewind (migration ${done}; this build knows ${all.length})`,
          'upgrade this process to the Rewind version that wrote the schema, or use another schema',
        );
      for (let v = done + 1; v <= all.length; v++) {
        await client.query(all[v - 1] as string);
        await client.query(`INSERT INTO ${this.#s}.migrations (version) VALUES ($1)`, [v]);
      }
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  /** A NOTIFY of its own, for appends no later append announced (see postgres/announcer.ts). */
  #notifyAlone(): void {
    // One statement, so a failure cannot leave the connection in an aborted transaction. On the
    // LISTEN connection when it is up: appends keep every pooled connection. It skips the WAL flush:
    // it announces events that are already durable, and a lost one is covered by the subscribers' poll.
    const sql = `SELECT set_config('synchronous_commit', 'off', true), pg_notify('${NOTIFY_CHANNEL}', '${this.#schema}')`;
    (this.#listener.query(sql) ?? this.#pool.query(sql)).catch(() => {});
  }

  #wake(): void {
    this.#changes++;
    this.#events.emit('append');
  }

  async acquireLease(streamId: string, owner: string, leaseMs: number): Promise<LeaseAttempt> {
    const { rows } = await this.#pool.query<{ acquired: boolean; owner: string; epoch: string; until_ms: number }>({
      name: `rewind.acquire_lease.${this.#schema}`,
      text: `SELECT acquired, owner, epoch, until_ms FROM ${this.#s}.acquire_lease($1, $2, $3, $4)`,
      values: [streamId, owner, leaseMs, this.#listener.sessionPid() ?? null],
    });
    const row = rows[0] as (typeof rows)[number];
    const lease: StreamLease = { streamId, owner: row.owner, epoch: Number(row.epoch), until: Math.round(row.until_ms) };
    return row.acquired ? { acquired: true, lease } : { acquired: false, holder: lease };
  }

  async renewLeases(owner: string, streamIds: readonly string[], leaseMs: number): Promise<string[]> {
    const pid = this.#listener.sessionPid() ?? null;
    const { rows } = await this.#pool.query<{ stream_id: string }>(
      `UPDATE ${this.#s}.stream_leases SET until = clock_timestamp() + $3 * interval '1 millisecond', session_pid = $4,
         session_start = (SELECT a.backend_start FROM pg_stat_activity a WHERE a.pid = $4)
       WHERE owner = $1 AND stream_id = ANY($2) AND until <> 'epoch'::timestamptz RETURNING stream_id`,
      [owner, streamIds, leaseMs, pid],
    );
    return rows.map((r) => r.stream_id);
  }

  async releaseLease(streamId: string, owner: string, epoch: number): Promise<void> {
    await this.#pool.query(
      `UPDATE ${this.#s}.stream_leases SET until = 'epoch'::timestamptz WHERE stream_id = $1 AND owner = $2 AND epoch = $3`,
      [streamId, owner, epoch],
    );
  }

  async leaseOf(streamId: string): Promise<StreamLease | undefined> {
    const { rows } = await this.#pool.query<{ owner: string; epoch: string; until_ms: number }>(
      `SELECT owner, epoch, extract(epoch FROM until)::double precision * 1000 AS until_ms FROM ${this.#s}.stream_leases WHERE stream_id = $1`,
      [streamId],
    );
    const row = rows[0];
    return row && { streamId, owner: row.owner, epoch: Number(row.epoch), until: Math.round(row.until_ms) };
  }

  /** Appends this process made and notifications of others' (each wakes the subscribers too). */
  async changeCounter(): Promise<number> {
    return this.#changes;
  }

  append(appends: PreparedAppend[]): Promise<AppendResult[]> {
    return this.#queue.submit(appends, groupKeys(appends));
  }

  /**
   * One group of the queue: every call in one append_calls(), one commit. A
   * call the function refuses fails alone. An error that fails the statement
   * (a unique violation of an id written at the same time by another stream's
   * call, text PostgreSQL cannot store) rolls back the group: then its calls
   * run again one by one, so each gets its own outcome. Any other error (the
   * connection lost, say) fails every call of the group, as it would one.
   */
  async #appendGroup(calls: PreparedAppend[][]): Promise<CallOutcome<AppendResult[]>[]> {
    if (this.#appendHooks.size > 0) return this.#appendGroupWithHooks(calls);
    if (calls.length === 1) return [await this.#appendAlone(calls[0] as PreparedAppend[])];
    let rows: AppendedRow[];
    const announce = this.#announcer.carry();
    try {
      rows = await this.#appendRows(this.#pool, calls, announce);
    } catch (error) {
      this.#announcer.settled(announce, false);
      if (!failedStatement(error)) throw appendError(error);
      // One by one, in the order they came: as if they had never been grouped.
      const outcomes: CallOutcome<AppendResult[]>[] = [];
      for (const call of calls) outcomes.push(await this.#appendAlone(call));
      return outcomes;
    }
    this.#committed(announce);
    return outcomesOf(calls, rows);
  }

  async #appendAlone(call: PreparedAppend[]): Promise<CallOutcome<AppendResult[]>> {
    try {
      return await retryingIdRaces(async () => {
        const announce = this.#announcer.carry();
        try {
          const rows = await this.#appendRows(this.#pool, [call], announce);
          this.#committed(announce);
          return outcomesOf([call], rows)[0] as CallOutcome<AppendResult[]>;
        } catch (error) {
          this.#announcer.settled(announce, false);
          throw error;
        }
      });
    } catch (error) {
      return { ok: false, error };
    }
  }

  /** After an append's commit: wakes this process's subscribers at once, and others' through NOTIFY, in it or soon after. */
  #committed(announced: boolean): void {
    queueMicrotask(() => this.#wake());
    this.#announcer.settled(announced, true);
  }

  /** Only what the store assigned comes back: the content is the caller's, and parsing it again would cost as much as the append. */
  async #appendRows(db: pg.Pool | pg.PoolClient, calls: PreparedAppend[][], announce: boolean): Promise<AppendedRow[]> {
    const { json, indexed } = batchJson(calls);
    // append_indexed() when an append changes the runs index; the plain function otherwise.
    const fn = indexed ? 'append_indexed' : 'append_calls';
    const { rows } = await db.query<AppendedRow>({
      // Prepared once per connection: the statement is parsed and planned once, not per append.
      name: `rewind.${fn}.${this.#schema}`,
      text: `SELECT r_call, r_ord, r_id AS id, r_version AS version, r_position AS position, r_recorded_at AS recorded_at, r_hash AS hash,
        r_error, r_message, r_detail FROM ${this.#s}.${fn}($1::jsonb, $2)`,
      values: [json, announce],
    });
    return rows;
  }

  /**
   * A group with inline projections: the calls' rows and the projections'
   * writes in one client-side transaction (one commit for the group, the
   * projections applied once to all its events). A hook that throws on an
   * event (its error names the event) takes that event's call out of the
   * group, which is tried again without it; the call then runs alone, where
   * the error is its own. Any other failure runs the calls one by one, each in
   * a transaction of its own, as if they had never been grouped.
   */
  async #appendGroupWithHooks(calls: PreparedAppend[][]): Promise<CallOutcome<AppendResult[]>[]> {
    const outcomes: CallOutcome<AppendResult[]>[] = [];
    let grouped = calls.map((call, at) => ({ call, at }));
    const alone: typeof grouped = [];
    while (grouped.length > 1) {
      try {
        const got = await this.#inHookTransaction(grouped.map((g) => g.call));
        grouped.forEach((g, k) => {
          outcomes[g.at] = got[k] as CallOutcome<AppendResult[]>;
        });
        grouped = [];
      } catch (error) {
        const eventId = (error as { eventId?: unknown } | null)?.eventId;
        const culprit = grouped.findIndex((g) => g.call.some((a) => a.events.some((e) => e.id === eventId)));
        if (culprit === -1) break;
        alone.push(...grouped.splice(culprit, 1));
      }
    }
    for (const { call, at } of [...grouped, ...alone]) {
      try {
        const [outcome] = await retryingIdRaces(() => this.#inHookTransaction([call]));
        outcomes[at] = outcome as CallOutcome<AppendResult[]>;
      } catch (error) {
        outcomes[at] = { ok: false, error };
      }
    }
    return outcomes;
  }

  /** Inline projections: the appends and their writes share one client-side transaction; a hook that throws rolls all of it back. */
  async #inHookTransaction(calls: PreparedAppend[][]): Promise<CallOutcome<AppendResult[]>[]> {
    const client = await this.#pool.connect();
    const announce = this.#announcer.carry();
    try {
      await client.query('BEGIN');
      const outcomes = outcomesOf(calls, await this.#appendRows(client, calls, announce));
      const results = outcomes
        .flatMap((o) => (o.ok ? o.value.flatMap((r) => r.events) : []))
        .filter((e) => !isSystemStream(e.streamId))
        .sort((a, b) => a.position - b.position);
      const tx = {
        client,
        results,
        eventsAfter: async (position: number) => {
          const { rows: after } = await client.query<EventRow & { own: boolean | null }>(
            `SELECT ${EVENT_COLUMNS}, tx_id = pg_current_xact_id_if_assigned() AS own FROM ${this.#s}.events
             WHERE position > $1 AND left(stream_id, 1) <> '$' ORDER BY position`,
            [position],
          );
          return {
            written: after.filter((row) => row.own === true).map(toEnvelope),
            others: after.filter((row) => row.own !== true).map(toEnvelope),
          };
        },
        readStream: async (streamId: string, toVersion: number) => {
          const { rows: stream } = await client.query<EventRow>(
            `SELECT ${EVENT_COLUMNS} FROM ${this.#s}.events WHERE stream_id = $1 AND version <= $2 ORDER BY version`,
            [streamId, clampVersion(toVersion)],
          );
          return stream.map(toEnvelope);
        },
      };
      // A call refused by append_calls wrote nothing: the hooks see the events of the others.
      if (outcomes.some((o) => o.ok)) for (const hook of this.#appendHooks) await hook(tx);
      await client.query('COMMIT');
      this.#committed(announce);
      return outcomes;
    } catch (error) {
      this.#announcer.settled(announce, false);
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  async read(streamId: string, options: ReadOptions & { direction: 'forward' | 'backward' }): Promise<EventEnvelope[]> {
    const forward = options.direction === 'forward';
    const { rows } = await this.#pool.query<EventRow>(
      forward
        ? `SELECT ${EVENT_COLUMNS} FROM ${this.#s}.events
           WHERE stream_id = $1 AND version >= coalesce($2::int, 1) AND version <= coalesce($3::int, 2147483647)
           ORDER BY version LIMIT $4`
        : `SELECT ${EVENT_COLUMNS} FROM ${this.#s}.events
           WHERE stream_id = $1 AND version <= coalesce($2::int, 2147483647) AND version >= coalesce($3::int, 1)
           ORDER BY version DESC LIMIT $4`,
      [streamId, clampVersion(options.from), clampVersion(options.to), options.limit ?? null],
    );
    return rows.map(toEnvelope);
  }

  async readAll(from: number, limit: number, filter: EventFilter | undefined): Promise<ReadAllPage> {
    // One statement: both parts read the same snapshot, hence the same xmin (see the comment at the top).
    const { rows } = await this.#pool.query<EventRow & { top: string | null }>(
      `SELECT t.top, p.*
       FROM (${TOP_VISIBLE_POSITION.replace('$s', this.#s)}) t
       LEFT JOIN LATERAL (
         SELECT ${prefixed('e', EVENT_COLUMNS)} FROM ${this.#s}.events e
         WHERE e.tx_id < pg_snapshot_xmin(pg_current_snapshot()) AND e.position >= $1
           AND ($2::text IS NULL OR starts_with(e.stream_id, $2))
           AND ($3::text[] IS NULL OR e.type = ANY ($3))
           AND ($5 OR left(e.stream_id, 1) <> '$')
         ORDER BY e.position LIMIT $4
       ) p ON true
       ORDER BY p.position`,
      [from, filter?.streamPrefix ?? null, filter?.types ?? null, limit, readsSystemStreams(filter)],
    );
    const top = rows[0]?.top == null ? 0 : Number(rows[0].top);
    const events = rows.filter((r) => r.id !== null).map(toEnvelope);
    const scannedTo = events.length === limit ? (events.at(-1) as EventEnvelope).position : Math.max(top, from - 1);
    return { events, scannedTo };
  }

  async scanLog(from: number, to: number, limit: number): Promise<RawRow[]> {
    const { rows } = await this.#pool.query<ScanRow>(
      `SELECT ${SCAN_COLUMNS} FROM ${this.#s}.events WHERE position >= $1 AND position <= $2 ORDER BY position LIMIT $3`,
      [from, to, limit],
    );
    return rows.map(fromScanRow);
  }

  async scanStream(streamId: string, fromVersion: number, limit: number): Promise<RawRow[]> {
    const { rows } = await this.#pool.query<ScanRow>(
      `SELECT ${SCAN_COLUMNS} FROM ${this.#s}.events WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT $3`,
      [streamId, clampVersion(fromVersion), limit],
    );
    return rows.map(fromScanRow);
  }

  async emptyStreams(): Promise<string[]> {
    const { rows } = await this.#pool.query<{ stream_id: string }>(
      `SELECT st.stream_id FROM ${this.#s}.streams st WHERE NOT EXISTS (SELECT 1 FROM ${this.#s}.events e WHERE e.stream_id = st.stream_id)`,
    );
    return rows.map((r) => r.stream_id);
  }

  async streamVersion(streamId: string): Promise<number> {
    const { rows } = await this.#pool.query<{ version: number | null }>(
      `SELECT max(version) AS version FROM ${this.#s}.events WHERE stream_id = $1`,
      [streamId],
    );
    return rows[0]?.version ?? 0;
  }

  async listStreams(options: ListStreamsOptions): Promise<StreamInfo[]> {
    const { rows } = await this.#pool.query<{ stream_id: string; version: number; head: string; position: string }>(
      // A stream's head is its newest event: one probe of the (stream_id, version) index per stream.
      `SELECT st.stream_id, e.version, e.hash AS head, e.position FROM ${this.#s}.streams st
       CROSS JOIN LATERAL (
         SELECT e.version, e.hash, e.position FROM ${this.#s}.events e WHERE e.stream_id = st.stream_id ORDER BY e.version DESC LIMIT 1
       ) e
       WHERE ($1::text IS NULL OR starts_with(st.stream_id, $1)) AND ($2::text IS NULL OR st.stream_id > $2)
       ORDER BY st.stream_id LIMIT $3`,
      [options.prefix ?? null, options.after ?? null, options.limit ?? null],
    );
    return rows.map((r) => ({ streamId: r.stream_id, version: r.version, head: r.head, position: Number(r.position) }));
  }

  async headPosition(): Promise<number> {
    const { rows } = await this.#pool.query<{ top: string | null }>(TOP_VISIBLE_POSITION.replace('$s', this.#s));
    return rows[0]?.top == null ? 0 : Number(rows[0].top);
  }

  async saveCheckpoint(consumer: string, position: number): Promise<void> {
    await this.#pool.query(
      `INSERT INTO ${this.#s}.checkpoints (consumer, position) VALUES ($1, $2)
       ON CONFLICT (consumer) DO UPDATE SET position = EXCLUDED.position`,
      [consumer, position],
    );
  }

  async loadCheckpoint(consumer: string): Promise<number | undefined> {
    const { rows } = await this.#pool.query<{ position: string }>(`SELECT position FROM ${this.#s}.checkpoints WHERE consumer = $1`, [
      consumer,
    ]);
    return rows[0] ? Number(rows[0].position) : undefined;
  }

  async saveSnapshot(snapshot: Snapshot<string>, replaceOlder: boolean): Promise<void> {
    // One statement, so the older snapshots go in the same transaction as the new one arrives.
    await this.#pool.query(
      `WITH older AS (
         DELETE FROM ${this.#s}.snapshots WHERE $6 AND reducer_version = $1 AND stream_id = $2 AND version < $3
       )
       INSERT INTO ${this.#s}.snapshots (reducer_version, stream_id, version, state, created_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (reducer_version, stream_id, version) DO UPDATE SET state = EXCLUDED.state, created_at = EXCLUDED.created_at`,
      [snapshot.reducerVersion, snapshot.streamId, snapshot.version, snapshot.state, snapshot.createdAt, replaceOlder],
    );
  }

  async loadSnapshot(streamId: string, reducerVersion: string, atOrBefore: number | undefined): Promise<Snapshot<string> | undefined> {
    const { rows } = await this.#pool.query<{ version: number; state: string; created_at: string }>(
      `SELECT version, state, created_at FROM ${this.#s}.snapshots
       WHERE reducer_version = $1 AND stream_id = $2 AND ($3::int IS NULL OR version <= $3)
       ORDER BY version DESC LIMIT 1`,
      [reducerVersion, streamId, atOrBefore === undefined ? null : clampVersion(atOrBefore)],
    );
    const row = rows[0];
    return row && { streamId, version: row.version, state: row.state, reducerVersion, createdAt: row.created_at };
  }

  onAppend(listener: () => void): () => void {
    this.#events.on('append', listener);
    return () => this.#events.off('append', listener);
  }

  /** A table in this schema, on this pool, with a LISTEN connection of its own (see postgres/run-queue.ts). */
  openRunQueue(): Promise<RunQueue> {
    return PostgresRunQueue.open(this.#pool, this.#s);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#announcer.close();
    this.#events.removeAllListeners();
    await Promise.all([this.#listener.close(), this.#pool.end().catch(() => {})]);
  }
}

function toEnvelope(row: EventRow): EventEnvelope {
  return {
    id: row.id,
    streamId: row.stream_id,
    version: row.version,
    position: Number(row.position),
    type: row.type,
    schemaVersion: row.schema_version,
    data: row.data,
    metadata: row.metadata,
    recordedAt: row.recorded_at,
    hash: row.hash,
  };
}

/** Versions are integer columns; anything larger selects the same rows as the largest. */
function clampVersion(v: number | undefined): number | null {
  return v === undefined ? null : Math.min(v, 2147483647);
}

function prefixed(alias: string, columns: string): string {
  return columns
    .split(', ')
    .map((c) => `${alias}.${c}`)
    .join(', ');
}

function where(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    return 'the given URL';
  }
}

function idConflictFromUniqueViolation(error: unknown): EventIdConflictError {
  const id = /\(id\)=\((.*)\)/.exec((error as pg.DatabaseError).detail ?? '')?.[1] ?? '';
  return new EventIdConflictError(id, 'another writer stored it at the same time');
}

/**
 * What a call shares with no other call of its group: its streams, and the
 * ids its caller chose. So no call's checks depend on another's writes, and
 * each gets the outcome it would get alone, after the calls that came before.
 */
function groupKeys(appends: PreparedAppend[]): string[] {
  const keys: string[] = [];
  for (const a of appends) {
    keys.push(`s:${a.streamId}`);
    for (const e of a.events) if (e.idGiven) keys.push(`i:${e.id}`);
  }
  return keys;
}

/**
 * The calls of a group as append_calls() takes them: the data and metadata as
 * their canonical text; an append of a run's events carries what it changes
 * in the runs index (`indexed`: some append does).
 */
function batchJson(calls: PreparedAppend[][]): { json: string; indexed: boolean } {
  let indexed = false;
  const json = JSON.stringify(
    calls.map((appends) =>
      appends.map((a) => {
        const run = runIndexChange(a.streamId, a.events);
        if (run) indexed = true;
        return {
          streamId: a.streamId,
          expectedVersion: a.expectedVersion,
          ...(a.fence ? { fence: a.fence } : {}),
          idsGiven: a.events.some((e) => e.idGiven),
          events: a.events.map((e) => ({
            id: e.id,
            type: e.type,
            schemaVersion: e.schemaVersion,
            data: e.dataJson,
            metadata: e.metadataJson,
            recordedAt: e.recordedAt,
            digest: e.digest,
          })),
          ...(run ? { run } : {}),
        };
      }),
    ),
  );
  return { json, indexed };
}

/**
 * Each call's outcome from append_calls()' rows: its refusal, or its events.
 * The content is what was sent (for a repeated append, what is stored has the
 * same digest); the store adds the rest.
 */
function outcomesOf(calls: PreparedAppend[][], rows: AppendedRow[]): CallOutcome<AppendResult[]>[] {
  const grouped = calls.map((call) => call.map((): EventEnvelope[] => []));
  const appendOf = (c: number, ord: number) => (calls[c] as PreparedAppend[])[ord] as PreparedAppend;
  const refused = new Map<number, AppendedRow>();
  for (const row of rows) if (row.r_error !== null) refused.set(row.r_call as number, row);
  // The ids of the calls not refused are unique in the group (groupKeys): rows name their events by id.
  const sent = new Map<string, { call: number; ord: number; event: PreparedEvent }>();
  calls.forEach((call, c) => {
    if (refused.has(c)) return;
    call.forEach((a, ord) => {
      for (const event of a.events) sent.set(event.id, { call: c, ord, event });
    });
  });
  for (const row of rows) {
    if (row.r_error !== null || (row.r_call !== null && refused.has(row.r_call))) continue;
    const at = sent.get(row.id) as { call: number; ord: number; event: PreparedEvent };
    const { id, type, schemaVersion, data, metadata } = at.event;
    const { version, recorded_at: recordedAt, hash } = row;
    const streamId = appendOf(at.call, at.ord).streamId;
    const position = Number(row.position);
    (grouped[at.call] as EventEnvelope[][])[at.ord]?.push({
      id,
      streamId,
      version,
      position,
      type,
      schemaVersion,
      data,
      metadata,
      recordedAt,
      hash,
    });
  }
  return calls.map((call, c) => {
    const no = refused.get(c);
    if (no) return { ok: false, error: refusalOf(no, call) };
    const results = (grouped[c] as EventEnvelope[][]).map((events) => resultOf(events.sort((x, y) => x.version - y.version)));
    return { ok: true, value: results };
  });
}

/** The error a call refused by append_calls() gets, from its SQLSTATE, r_message and r_detail (see SQLSTATE in postgres/schema.ts). */
function refusalOf(row: AppendedRow, call: PreparedAppend[]): RewindError {
  if (row.r_error === SQLSTATE.concurrency) {
    const streamId = row.r_detail ?? '';
    const expected = call.find((a) => a.streamId === streamId)?.expectedVersion ?? 'any';
    return new ConcurrencyError(streamId, expected, Number(row.r_message));
  }
  if (row.r_error === SQLSTATE.leaseLost) {
    const streamId = row.r_detail ?? '';
    return new LeaseLostError(streamId, call.find((a) => a.streamId === streamId)?.fence?.owner ?? '', Number(row.r_message));
  }
  return new EventIdConflictError(row.r_message ?? '', row.r_detail ?? '');
}

/**
 * Runs an append, again when it met an id another stream's append stored at
 * the same moment (up to APPEND_ATTEMPTS, then an EventIdConflictError);
 * other failures are thrown as appendError maps them.
 */
async function retryingIdRaces<T>(append: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await append();
    } catch (error) {
      const mapped = appendError(error);
      if (mapped === 'retry' && attempt < APPEND_ATTEMPTS) continue;
      throw mapped === 'retry' ? idConflictFromUniqueViolation(error) : mapped;
    }
  }
}

/** What a failed append statement means to the caller; 'retry' for an id another stream's append stored at the same moment. */
function appendError(error: unknown): unknown {
  const e = error as pg.DatabaseError;
  switch (e?.code) {
    case SQLSTATE.misuse:
      return new StoreConfigError(e.message, 'Rewind appends need READ COMMITTED, each in a transaction of its own');
    case '23505':
      return e.constraint?.endsWith('_id_key') ? 'retry' : error;
    // Text PostgreSQL cannot store (a NUL character, say) is bad input, not a failure.
    case '22021':
    case '22P05':
      return new ValidationError('nothing was appended', [e.message]);
    default:
      return error;
  }
}

/** An error of the statement itself (bad data, an integrity violation): its transaction rolled back, nothing else is wrong. */
function failedStatement(error: unknown): boolean {
  const code = error instanceof pg.DatabaseError ? error.code : undefined;
  return code !== undefined && (code.startsWith('22') || code.startsWith('23'));
}
