import type pg from 'pg';
import { prefixRange } from '../prefix-range.js';
import {
  type IndexedRun,
  RUN_STREAM_PREFIX,
  type RunCount,
  type RunIndexBackend,
  type RunIndexQuery,
  type RunIndexRow,
  type RunIndexState,
  type RunStreamEnds,
} from '../run-index.js';

// The runs index in the log's schema (store/run-index.ts). The rows change
// in the appending transaction: append_indexed() is append_calls() followed
// by the run changes of the calls it did not refuse (each append of a run's
// events carries its change, worked out by the client). A group with no
// change calls append_calls() itself and pays nothing. Processes of an older
// build call append_calls() and index nothing; a log they wrote alone is
// indexed once by the rebuild.

/** Migration 10: the tables, the state (built unless the schema already holds runs) and append_indexed(). */
export function runIndexMigration(s: string): string {
  return `
CREATE TABLE ${s}.runs (
  run_id text COLLATE "C" PRIMARY KEY,
  workflow text COLLATE "C" NOT NULL,
  workflow_version text NOT NULL,
  status text COLLATE "C" NOT NULL,
  waiting_for text,
  started_at text COLLATE "C" NOT NULL,
  changed_at text NOT NULL,
  -- The stream version the status was read at: a write older than the row's is dropped.
  version integer NOT NULL
);
-- One index per filter (none, status, workflow) and order (id, start) of a page: a seek, then the page's rows.
-- Both filters at once take either index and test the other; each index more costs every run's two row writes.
CREATE INDEX runs_by_status ON ${s}.runs (status, run_id);
CREATE INDEX runs_by_workflow ON ${s}.runs (workflow, run_id);
CREATE INDEX runs_by_start ON ${s}.runs (started_at, run_id);
CREATE INDEX runs_by_status_start ON ${s}.runs (status, started_at, run_id);
CREATE INDEX runs_by_workflow_start ON ${s}.runs (workflow, started_at, run_id);

CREATE TABLE ${s}.run_index_state (
  id integer PRIMARY KEY CHECK (id = 1),
  built boolean NOT NULL
);
INSERT INTO ${s}.run_index_state (id, built)
  SELECT 1, NOT EXISTS (SELECT 1 FROM ${s}.streams WHERE stream_id LIKE '${RUN_STREAM_PREFIX}%');

CREATE FUNCTION ${s}.append_indexed(batch jsonb, announce boolean DEFAULT false)
RETURNS TABLE (r_call integer, r_ord integer, r_id text, r_version integer, r_position bigint, r_recorded_at text, r_hash text,
  r_error text, r_message text, r_detail text)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $fn$
DECLARE
  r record;
  refused integer[] := '{}';
  ch record;
  v integer;
BEGIN
  FOR r IN SELECT * FROM ${s}.append_calls(batch, announce) LOOP
    IF r.r_error IS NOT NULL THEN
      refused := refused || r.r_call;
    END IF;
    r_call := r.r_call; r_ord := r.r_ord; r_id := r.r_id; r_version := r.r_version; r_position := r.r_position;
    r_recorded_at := r.r_recorded_at; r_hash := r.r_hash; r_error := r.r_error; r_message := r.r_message; r_detail := r.r_detail;
    RETURN NEXT;
  END LOOP;
  FOR ch IN
    SELECT a -> 'run' AS run, substr(a ->> 'streamId', ${RUN_STREAM_PREFIX.length + 1}) AS run_id, a -> 'events' -> -1 ->> 'id' AS last_id
    FROM jsonb_array_elements(batch) WITH ORDINALITY c(appends, o), jsonb_array_elements(c.appends) a
    WHERE a ? 'run' AND NOT ((c.o - 1)::integer = ANY (refused))
  LOOP
    -- The version the append's last event got (or has, for an append repeated whole): seen by this transaction.
    SELECT e.version INTO v FROM ${s}.events e WHERE e.id = ch.last_id;
    CONTINUE WHEN v IS NULL;
    IF ch.run ? 'start' THEN
      INSERT INTO ${s}.runs AS x (run_id, workflow, workflow_version, status, waiting_for, started_at, changed_at, version)
      VALUES (ch.run_id, ch.run -> 'start' ->> 'workflow', ch.run -> 'start' ->> 'workflowVersion', ch.run ->> 'status',
        ch.run ->> 'waitingFor', ch.run -> 'start' ->> 'startedAt', ch.run ->> 'at', v)
      ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, waiting_for = excluded.waiting_for,
        changed_at = excluded.changed_at, version = excluded.version
      WHERE excluded.version > x.version;
    ELSE
      UPDATE ${s}.runs x SET status = ch.run ->> 'status', waiting_for = ch.run ->> 'waitingFor', changed_at = ch.run ->> 'at', version = v
      WHERE x.run_id = ch.run_id AND x.version < v
        AND (x.status, x.waiting_for) IS DISTINCT FROM (ch.run ->> 'status', ch.run ->> 'waitingFor');
    END IF;
  END LOOP;
END
$fn$;
`;
}

const ROW = `run_id AS "runId", workflow, workflow_version AS "workflowVersion", status, waiting_for AS "waitingFor", started_at AS "startedAt",
  changed_at AS "changedAt", version`;

const ORDERS = {
  id: { after: (p: number) => `run_id > $${p}`, by: 'run_id' },
  newest: { after: (p: number) => `(started_at, run_id) < ($${p}, $${p + 1})`, by: 'started_at DESC, run_id DESC' },
  oldest: { after: (p: number) => `(started_at, run_id) > ($${p}, $${p + 1})`, by: 'started_at, run_id' },
} as const;

export class PostgresRunIndex implements RunIndexBackend {
  readonly #pool: pg.Pool;
  readonly #s: string;
  /** The advisory lock key an append takes on a stream (schema.ts), as SQL over `sid`. */
  readonly #streamLock: string;

  constructor(pool: pg.Pool, s: string, streamLock: string) {
    this.#pool = pool;
    this.#s = s;
    this.#streamLock = streamLock;
  }

  async state(): Promise<RunIndexState> {
    const { rows } = await this.#pool.query<{ built: boolean }>(`SELECT built FROM ${this.#s}.run_index_state WHERE id = 1`);
    return rows[0]?.built ? 'built' : 'pending';
  }

  async page(query: RunIndexQuery): Promise<IndexedRun[]> {
    const order = ORDERS[query.order];
    const where: string[] = [];
    const values: unknown[] = [];
    const param = (value: unknown) => {
      values.push(value);
      return values.length;
    };
    if (query.status !== undefined) where.push(`status = $${param(query.status)}`);
    if (query.workflow !== undefined) where.push(`workflow = $${param(query.workflow)}`);
    const [low, high] = prefixRange(query.idPrefix);
    if (low !== null) where.push(`run_id >= $${param(low)}`);
    if (high !== null) where.push(`run_id < $${param(high)}`);
    if (query.after) {
      if (query.order === 'id') where.push(order.after(param(query.after.runId)));
      else {
        const p = param(query.after.startedAt ?? '');
        param(query.after.runId);
        where.push(order.after(p));
      }
    }
    const limit = param(query.limit);
    // The page first, from its index; then each run's head, one probe of the events' (stream_id, version) index.
    const { rows } = await this.#pool.query<IndexedRun>(
      `SELECT r.*, e.version AS "headVersion", e.recorded_at AS "updatedAt" FROM (
         SELECT ${ROW} FROM ${this.#s}.runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ${order.by} LIMIT $${limit}
       ) r
       CROSS JOIN LATERAL (SELECT version, recorded_at FROM ${this.#s}.events
         WHERE stream_id = '${RUN_STREAM_PREFIX}' || r."runId" ORDER BY version DESC LIMIT 1) e
       ORDER BY ${order.by.replaceAll('started_at', 'r."startedAt"').replaceAll('run_id', 'r."runId"')}`,
      values,
    );
    return rows;
  }

  async counts(): Promise<RunCount[]> {
    const { rows } = await this.#pool.query<RunCount>(
      `SELECT workflow, status, count(*)::integer AS runs FROM ${this.#s}.runs GROUP BY workflow, status ORDER BY workflow, status`,
    );
    return rows;
  }

  async runStreams(): Promise<number> {
    const { rows } = await this.#pool.query<{ n: number }>(
      `SELECT count(*)::integer AS n FROM ${this.#s}.streams WHERE stream_id LIKE '${RUN_STREAM_PREFIX}%'`,
    );
    return rows[0]?.n ?? 0;
  }

  async rebuildStep(
    after: string | undefined,
    limit: number,
    summarise: (ends: RunStreamEnds) => RunIndexRow | undefined,
  ): Promise<string | undefined> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      const { rows: streams } = await client.query<{ stream_id: string }>(
        `SELECT stream_id FROM ${this.#s}.streams WHERE stream_id > $1 AND stream_id LIKE '${RUN_STREAM_PREFIX}%' ORDER BY stream_id LIMIT $2`,
        [after ?? RUN_STREAM_PREFIX, limit],
      );
      const ids = streams.map((row) => row.stream_id);
      if (ids.length === 0) {
        await client.query('COMMIT');
        return undefined;
      }
      // The streams' append locks, in the order appends take them: an append to one of them waits, or committed before the read.
      await client.query(
        `SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT ${this.#streamLock} AS k FROM unnest($1::text[]) sid ORDER BY 1) l`,
        [ids],
      );
      const { rows: ends } = await client.query<EndsRow>(
        `SELECT sid, f.type AS first_type, f.data::text AS first_data, f.recorded_at AS first_at,
           l.type AS last_type, l.data::text AS last_data, l.recorded_at AS last_at, l.version
         FROM unnest($1::text[]) sid
         CROSS JOIN LATERAL (SELECT type, data, recorded_at FROM ${this.#s}.events WHERE stream_id = sid ORDER BY version LIMIT 1) f
         CROSS JOIN LATERAL (SELECT type, data, recorded_at, version FROM ${this.#s}.events WHERE stream_id = sid ORDER BY version DESC LIMIT 1) l`,
        [ids],
      );
      const rows: RunIndexRow[] = [];
      for (const end of ends) {
        const row = summarise({
          streamId: end.sid,
          first: { type: end.first_type, data: parsed(end.first_data), recordedAt: end.first_at },
          last: { type: end.last_type, data: parsed(end.last_data), recordedAt: end.last_at },
          version: end.version,
        });
        if (row) rows.push({ ...row, runId: end.sid.slice(RUN_STREAM_PREFIX.length) });
      }
      if (rows.length > 0)
        await client.query(
          `INSERT INTO ${this.#s}.runs AS x (run_id, workflow, workflow_version, status, waiting_for, started_at, changed_at, version)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $8::text[], $5::text[], $6::text[], $7::integer[])
           ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, waiting_for = excluded.waiting_for,
             changed_at = excluded.changed_at, version = excluded.version
           WHERE excluded.version > x.version`,
          [
            rows.map((r) => r.runId),
            rows.map((r) => r.workflow),
            rows.map((r) => r.workflowVersion),
            rows.map((r) => r.status),
            rows.map((r) => r.startedAt),
            rows.map((r) => r.changedAt),
            rows.map((r) => r.version),
            rows.map((r) => r.waitingFor),
          ],
        );
      await client.query('COMMIT');
      return ids.at(-1);
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  async markBuilt(): Promise<void> {
    await this.#pool.query(`UPDATE ${this.#s}.run_index_state SET built = true WHERE id = 1`);
  }
}

interface EndsRow {
  sid: string;
  first_type: string;
  first_data: string;
  first_at: string;
  last_type: string;
  last_data: string;
  last_at: string;
  version: number;
}

/** json text as stored; what does not parse (never written by Rewind) leaves the run out of the index. */
function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
