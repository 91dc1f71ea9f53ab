import { GENESIS_HASH } from '../../events/hash.js';
import { runIndexMigration } from './run-index.js';

/** SQLSTATEs of append_calls()' refusals and misuse errors (append_events raises them); class RW is ours. */
export const SQLSTATE = {
  /** MESSAGE: the event id, DETAIL: why. */
  eventIdConflict: 'RW001',
  /** MESSAGE: the stream's actual version, DETAIL: the stream id. */
  concurrency: 'RW002',
  /** The function was called somewhere it cannot keep the global order. */
  misuse: 'RW003',
  /** A fenced append whose writer no longer holds the stream's lease. MESSAGE: the fence's epoch, DETAIL: the stream id. */
  leaseLost: 'RW004',
} as const;

/** A migration whose work a later one replaced; it keeps its number, so schemas that ran it stay in step. */
const SUPERSEDED = "SELECT 'superseded by a later migration'";

/** Channel shared by every schema; the payload names the schema. */
export const NOTIFY_CHANNEL = 'rewind_append';

/**
 * Migrations in order; each runs once per schema, inside the migration
 * transaction. `s` is the quoted schema name, `name` the raw one.
 */
export function migrations(s: string, name: string): string[] {
  const lit = `'${name}'`; // the name is a validated identifier: no quote can occur
  return [
    `
CREATE TABLE ${s}.streams (
  stream_id text COLLATE "C" PRIMARY KEY,
  version integer NOT NULL,
  head text NOT NULL,
  position bigint NOT NULL
);

CREATE TABLE ${s}.events (
  position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id text COLLATE "C" NOT NULL UNIQUE,
  stream_id text COLLATE "C" NOT NULL,
  version integer NOT NULL,
  type text NOT NULL,
  schema_version integer NOT NULL,
  -- json (not jsonb) keeps the canonical text byte for byte.
  data json NOT NULL,
  metadata json NOT NULL,
  -- Text, not timestamptz: the hash covers these exact characters.
  recorded_at text NOT NULL,
  digest text NOT NULL,
  hash text NOT NULL,
  tx_id xid8 NOT NULL,
  UNIQUE (stream_id, version)
);
-- Finds the highest position visible under the xmin rule without a scan.
CREATE INDEX events_tx_position ON ${s}.events (tx_id, position);

CREATE TABLE ${s}.checkpoints (
  consumer text PRIMARY KEY,
  position bigint NOT NULL
);

CREATE TABLE ${s}.snapshots (
  reducer_version text NOT NULL,
  stream_id text COLLATE "C" NOT NULL,
  version integer NOT NULL,
  state text NOT NULL,
  created_at text NOT NULL,
  PRIMARY KEY (reducer_version, stream_id, version)
);
`,
    // Read models (src/projections): the registry, and documents per projection generation.
    `
CREATE TABLE ${s}.projections (
  name text COLLATE "C" PRIMARY KEY,
  -- Applied inside appending transactions: appends take turns while any such projection is registered.
  inline boolean NOT NULL DEFAULT false,
  version integer NOT NULL,
  generation integer NOT NULL,
  position bigint NOT NULL,
  last_event_at text,
  error text,
  error_position bigint,
  rebuild_generation integer,
  rebuild_version integer,
  rebuild_position bigint,
  rebuild_last_event_at text,
  updated_at text NOT NULL
);

CREATE TABLE ${s}.projection_docs (
  projection text COLLATE "C" NOT NULL,
  generation integer NOT NULL,
  key text COLLATE "C" NOT NULL,
  stream_id text COLLATE "C" NOT NULL,
  doc jsonb NOT NULL,
  PRIMARY KEY (projection, generation, key)
);
-- A rollback deletes one stream's documents.
CREATE INDEX projection_docs_by_stream ON ${s}.projection_docs (projection, generation, stream_id);
`,
    // Migrations 3-6 redefined append_events, which migration 7 drops; pending migrations run in one
    // transaction (postgres.ts), so none of those definitions is ever called. What they brought stands
    // in append_calls (migration 8): appends take turns while an inline projection exists (3); NOTIFY
    // serialises notifying commits (4: hence at most one append per 10 ms carries one, postgres/announcer.ts);
    // the idempotency probe only for ids the caller chose (5); no read-backs of the events table, which
    // the planner could scan (6).
    SUPERSEDED,
    SUPERSEDED,
    SUPERSEDED,
    SUPERSEDED,
    // As SQLite's schema 2: a stream's head is its newest event, found through the (stream_id, version)
    // index, so an append no longer rewrites a streams row; streams only names the streams. The function
    // returned only what the store assigned; its result type changed, hence DROP and CREATE. Migration 8
    // redefines it (in the same transaction when both are pending), so only schemas migrated by the
    // builds before it ran that definition (git history keeps it) and this one creates nothing.
    `ALTER TABLE ${s}.streams DROP COLUMN version, DROP COLUMN head, DROP COLUMN position;
DROP FUNCTION IF EXISTS ${s}.append_events(jsonb);`,
    // Group commit: append_calls() takes the calls of several callers at once and answers each
    // apart (a refused call writes nothing and fails no other). append_events stays, as a wrapper
    // with the same result and errors, for processes of the previous build still running against
    // this schema.
    `${appendCallsFunction(s, lit)}
${appendEventsWrapper(s)}`,
    // Stream leases (store/leases.ts): the table, the acquire, and append_calls checking a call's fence.
    `${LEASES_TABLE(s)}
${acquireLeaseFunction(s, lit)}
${appendCallsFunction(s, lit, { fenced: true })}`,
    // The runs index (postgres/run-index.ts): its tables and append_indexed().
    runIndexMigration(s),
    // A rollback's delete of one stream's documents keeps its index, led by the stream: an index led by
    // (projection, generation) alone let the planner pick it for lookups by key on a table it had no
    // statistics for yet, and filter every document of the projection (inline appends read by key).
    `DROP INDEX ${s}.projection_docs_by_stream;
CREATE INDEX projection_docs_by_stream ON ${s}.projection_docs (stream_id, projection, generation);`,
  ];
}

/**
 * A stream's lease. `until` is the database's clock; 'epoch' (1970) marks a
 * released lease. `session_pid` and `session_start` name the holder's LISTEN
 * session: once it has ended (its process died) the lease is free at once.
 */
const LEASES_TABLE = (s: string) => `
CREATE TABLE ${s}.stream_leases (
  stream_id text COLLATE "C" PRIMARY KEY,
  owner text NOT NULL,
  epoch bigint NOT NULL,
  until timestamptz NOT NULL,
  session_pid integer,
  session_start timestamptz
);`;

/** The lock an append holds on its stream until commit: an acquire takes it too, so no append is in flight past the epoch it checked. */
export const STREAM_LOCK = (stream: string, lit: string) => `hashtextextended(${stream}, hashtext(${lit}))`;

/**
 * acquire_lease(): the rules of store/leases.ts in one round trip. The
 * holder's session is looked up in pg_stat_activity: gone (or another process
 * under the same pid), the lease is free whatever its expiry.
 */
function acquireLeaseFunction(s: string, lit: string): string {
  return `
CREATE FUNCTION ${s}.acquire_lease(p_stream text, p_owner text, p_ms integer, p_pid integer)
RETURNS TABLE (acquired boolean, owner text, epoch bigint, until_ms double precision)
LANGUAGE plpgsql AS $fn$
DECLARE
  cur record;
  alive boolean;
BEGIN
  PERFORM pg_advisory_xact_lock(${STREAM_LOCK('p_stream', lit)});
  SELECT * INTO cur FROM ${s}.stream_leases l WHERE l.stream_id = p_stream;
  IF FOUND AND cur.owner <> p_owner AND cur.until > clock_timestamp() THEN
    alive := cur.session_pid IS NULL OR EXISTS (
      SELECT 1 FROM pg_stat_activity a
      WHERE a.pid = cur.session_pid AND (a.backend_start IS NULL OR cur.session_start IS NULL OR a.backend_start = cur.session_start));
    IF alive THEN
      RETURN QUERY SELECT false, cur.owner, cur.epoch, extract(epoch FROM cur.until)::double precision * 1000;
      RETURN;
    END IF;
  END IF;
  RETURN QUERY
    INSERT INTO ${s}.stream_leases AS l (stream_id, owner, epoch, until, session_pid, session_start)
    VALUES (p_stream, p_owner, 1, clock_timestamp() + p_ms * interval '1 millisecond', p_pid,
      (SELECT a.backend_start FROM pg_stat_activity a WHERE a.pid = p_pid))
    ON CONFLICT (stream_id) DO UPDATE SET owner = excluded.owner, epoch = l.epoch + 1, until = excluded.until,
      session_pid = excluded.session_pid, session_start = excluded.session_start
    RETURNING true, l.owner, l.epoch, extract(epoch FROM l.until)::double precision * 1000;
END
$fn$;
`;
}

/** One event by id, as a subquery the planner cannot pull up into a join (OFFSET 0): an index probe per id, never a scan. */
const BY_ID = (s: string, columns: string) => `SELECT ${columns} FROM ${s}.events e WHERE e.id = x.ev ->> 'id' OFFSET 0`;

/** The advisory lock appends take while an inline projection exists; a rebuild's final swap takes it too. */
export const INLINE_LOCK = (lit: string) => `hashtext('rewind.inline'), hashtext(${lit})`;

/*
 * An inline projection is applied inside the appending transaction and reads
 * every event after its position from there. That is only right if no append
 * ordered before it is still in flight, which the xmin rule cannot promise. So
 * while any inline projection is registered, every append (from any process,
 * whether it applies projections or not) takes this transaction lock before
 * drawing positions and holds it to commit: appends take turns. Without inline
 * projections nothing changes. Taken first, before the stream locks, and it
 * takes no xid.
 */
const INLINE_TURNS = (s: string, lit: string) => `  IF EXISTS (SELECT 1 FROM ${s}.projections WHERE inline) THEN
    PERFORM pg_advisory_xact_lock(${INLINE_LOCK(lit)});
  END IF;

`;

/**
 * append_events(), as the builds before group commit call it: one call of
 * append_calls(); a refusal raised with the SQLSTATE, MESSAGE and DETAIL it
 * had; each row names its append by its index (r_ord).
 */
function appendEventsWrapper(s: string): string {
  return `
CREATE OR REPLACE FUNCTION ${s}.append_events(batch jsonb)
RETURNS TABLE (r_ord integer, r_id text, r_version integer, r_position bigint, r_recorded_at text, r_hash text)
LANGUAGE plpgsql AS $fn$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT * FROM ${s}.append_calls(jsonb_build_array(batch)) LOOP
    IF r.r_error IS NOT NULL THEN
      RAISE EXCEPTION USING ERRCODE = r.r_error, MESSAGE = r.r_message, DETAIL = r.r_detail;
    END IF;
    r_ord := coalesce(r.r_ord, (
      SELECT (x.o - 1)::integer FROM jsonb_array_elements(batch) WITH ORDINALITY x(a, o)
      WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(x.a -> 'events') ev WHERE ev ->> 'id' = r.r_id)));
    r_id := r.r_id;
    r_version := r.r_version;
    r_position := r.r_position;
    r_recorded_at := r.r_recorded_at;
    r_hash := r.r_hash;
    RETURN NEXT;
  END LOOP;
END
$fn$;
`;
}

/**
 * The append function (migration 8): the calls of several callers in one
 * transaction and one round trip (group commit, postgres/append-queue.ts; see
 * postgres.ts for why the mutex exists). In order: misuse checks, turns,
 * stream locks, then per call idempotency, version checks and the chain, then
 * the mutex around one insert of every call that holds. `batch` is an array
 * of calls, each an array of stream appends; no stream appears in
 * two calls of a batch (the client's queue sees to it). A call is refused
 * whole, and writes nothing, when one of its appends fails its expected
 * version or reuses an id wrongly: that call gets one row with its SQLSTATE,
 * message and detail (r_error, r_message, r_detail; see SQLSTATE) and the
 * other calls go on. Every other error fails the whole batch.
 *
 * Rows: for each call refused, its error; for an append repeated whole (every
 * id stored, same content), its stored events with r_call and r_ord; for the
 * events written, id, version, position, recordedAt and hash (r_call and
 * r_ord null: the ids name them). Rows of a refused call's repeated appends
 * may come too; the refusal is what counts. With `announce`, the transaction
 * also notifies other processes' listeners.
 *
 * Per event, the loop only links the chain; the insert reads the events from
 * the JSON as a set.
 */
function appendCallsFunction(s: string, lit: string, o: { fenced?: boolean } = {}): string {
  // Migration 9 adds the fence check; migration 8's text stays as it ran.
  const fenceCheck = o.fenced
    ? `      -- A fenced call goes through only while its writer holds the stream's lease (store/leases.ts).
      IF a ? 'fence' AND NOT EXISTS (
        SELECT 1 FROM ${s}.stream_leases l
        WHERE l.stream_id = sid AND l.owner = a -> 'fence' ->> 'owner' AND l.epoch = (a -> 'fence' ->> 'epoch')::bigint
          AND l.until <> 'epoch'::timestamptz) THEN
        err := '${SQLSTATE.leaseLost}';
        err_message := a -> 'fence' ->> 'epoch';
        err_detail := sid;
        EXIT;
      END IF;

`
    : '';
  return `
CREATE ${o.fenced ? 'OR REPLACE ' : ''}FUNCTION ${s}.append_calls(batch jsonb, announce boolean DEFAULT false)
RETURNS TABLE (r_call integer, r_ord integer, r_id text, r_version integer, r_position bigint, r_recorded_at text, r_hash text,
  r_error text, r_message text, r_detail text)
-- Its statements' plans are made once per connection: left to choose, the planner made a custom plan of the insert on every call.
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $fn$
DECLARE
  calls integer := jsonb_array_length(batch);
  c jsonb;
  ci integer;
  a jsonb;
  ai integer;
  sid text;
  r record;
  evs jsonb;
  lock_key bigint;
  found_count integer;
  total integer;
  first_id text;
  unordered_id text;
  prev_version integer;
  actual integer;
  head bytea;
  expected jsonb;
  holds boolean;
  err text;
  err_message text;
  err_detail text;
  -- What the call being checked would write; added to the batch's when the whole call holds.
  c_sid text[];
  c_base integer[];
  c_evs jsonb[];
  c_first integer[];
  c_hash text[];
  c_new text[];
  -- What the batch writes: per append its stream, version before it, events and first hash's index; per event its hash.
  g_sid text[] := '{}';
  g_base integer[] := '{}';
  g_evs jsonb[] := '{}';
  g_first integer[] := '{}';
  g_hash text[] := '{}';
  g_new text[] := '{}';
BEGIN
  -- The xid must be taken under the mutex below, or xid order and position order can disagree.
  IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
    RAISE EXCEPTION 'append_calls must be the first write of its transaction, and called once'
      USING ERRCODE = '${SQLSTATE.misuse}';
  END IF;
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'append_calls needs READ COMMITTED, not %', current_setting('transaction_isolation')
      USING ERRCODE = '${SQLSTATE.misuse}';
  END IF;

${INLINE_TURNS(s, lit)}  -- Stream locks without taking an xid; a fixed order, so no deadlock between batches.
  IF calls = 1 AND jsonb_array_length(batch -> 0) = 1 THEN
    PERFORM pg_advisory_xact_lock(hashtextextended(batch -> 0 -> 0 ->> 'streamId', hashtext(${lit})));
  ELSE
    FOR lock_key IN
      SELECT DISTINCT hashtextextended(x ->> 'streamId', hashtext(${lit}))
      FROM jsonb_array_elements(batch) cl, jsonb_array_elements(cl) x ORDER BY 1
    LOOP
      PERFORM pg_advisory_xact_lock(lock_key);
    END LOOP;
  END IF;

  FOR ci IN 0 .. calls - 1 LOOP
    c := batch -> ci;
    err := NULL;
    c_sid := '{}'; c_base := '{}'; c_evs := '{}'; c_first := '{}'; c_hash := '{}'; c_new := '{}';
    FOR ai IN 0 .. jsonb_array_length(c) - 1 LOOP
      a := c -> ai;
      sid := a ->> 'streamId';
      evs := a -> 'events';
      total := jsonb_array_length(evs);

      -- Idempotency, as findStoredBatch() in idempotency.ts; only ids the caller chose can be stored already.
      IF coalesce((a ->> 'idsGiven')::boolean, true) THEN
        found_count := 0;
        first_id := NULL;
        unordered_id := NULL;
        prev_version := NULL;
        FOR r IN
          SELECT x.ev ->> 'id' AS id, x.ev ->> 'digest' AS digest, e.stream_id, e.digest AS stored_digest, e.version
          FROM jsonb_array_elements(evs) WITH ORDINALITY x(ev, o)
          LEFT JOIN LATERAL (${BY_ID(s, 'e.stream_id, e.digest, e.version')}) e ON true
          ORDER BY x.o
        LOOP
          CONTINUE WHEN r.stream_id IS NULL;
          IF r.stream_id <> sid THEN
            err := '${SQLSTATE.eventIdConflict}';
            err_message := r.id;
            err_detail := format('it belongs to stream "%s", not "%s"', r.stream_id, sid);
            EXIT;
          END IF;
          IF r.stored_digest <> r.digest THEN
            err := '${SQLSTATE.eventIdConflict}';
            err_message := r.id;
            err_detail := 'its type, data, metadata or schema version differ';
            EXIT;
          END IF;
          found_count := found_count + 1;
          first_id := coalesce(first_id, r.id);
          IF unordered_id IS NULL AND prev_version IS NOT NULL AND r.version <> prev_version + 1 THEN
            unordered_id := r.id;
          END IF;
          prev_version := r.version;
        END LOOP;
        EXIT WHEN err IS NOT NULL;
        IF found_count > 0 THEN
          err := '${SQLSTATE.eventIdConflict}';
          IF found_count <> total THEN
            err_message := first_id;
            err_detail := format('%s of the %s events in this append are already stored; retry the original append unchanged, or give new events new ids', found_count, total);
            EXIT;
          END IF;
          IF unordered_id IS NOT NULL THEN
            err_message := unordered_id;
            err_detail := 'the stored events are not in this order';
            EXIT;
          END IF;
          err := NULL;
          RETURN QUERY
            SELECT ci, ai, e.id::text, e.version, e.position, e.recorded_at, e.hash, NULL::text, NULL::text, NULL::text
            FROM jsonb_array_elements(evs) WITH ORDINALITY x(ev, o)
            JOIN LATERAL (${BY_ID(s, 'e.*')}) e ON true
            ORDER BY x.o;
          CONTINUE;
        END IF;
      END IF;

${fenceCheck}      -- The head is the newest event: under the stream lock, each statement sees every earlier append to it.
      SELECT e.version, decode(e.hash, 'hex') INTO actual, head FROM ${s}.events e WHERE e.stream_id = sid ORDER BY e.version DESC LIMIT 1;
      IF NOT FOUND THEN
        actual := 0;
        head := decode('${GENESIS_HASH}', 'hex');
        c_new := c_new || sid;
      END IF;
      expected := a -> 'expectedVersion';
      holds := CASE
        WHEN jsonb_typeof(expected) = 'number' THEN expected::text::bigint = actual
        WHEN expected #>> '{}' = 'any' THEN true
        WHEN expected #>> '{}' = 'no_stream' THEN actual = 0
        WHEN expected #>> '{}' = 'exists' THEN actual > 0
        ELSE false
      END;
      IF NOT holds THEN
        err := '${SQLSTATE.concurrency}';
        err_message := actual::text;
        err_detail := sid;
        EXIT;
      END IF;

      c_sid := c_sid || sid;
      c_base := c_base || actual;
      c_evs := c_evs || evs;
      c_first := c_first || (cardinality(g_hash) + cardinality(c_hash) + 1);
      FOR i IN 0 .. total - 1 LOOP
        -- chainLink() of events/hash.ts, byte for byte.
        head := sha256(head
          || convert_to((actual + i + 1)::text || E'\\n' || (evs -> i ->> 'recordedAt') || E'\\n', 'UTF8')
          || decode(evs -> i ->> 'digest', 'hex'));
        c_hash := c_hash || encode(head, 'hex');
      END LOOP;
    END LOOP;

    IF err IS NULL THEN
      g_sid := g_sid || c_sid;
      g_base := g_base || c_base;
      g_evs := g_evs || c_evs;
      g_first := g_first || c_first;
      g_hash := g_hash || c_hash;
      g_new := g_new || c_new;
    ELSE
      RETURN QUERY SELECT ci, NULL::integer, NULL::text, NULL::integer, NULL::bigint, NULL::text, NULL::text, err, err_message, err_detail;
    END IF;
  END LOOP;

  -- Sent at commit, in this transaction (postgres/announcer.ts decides which appends carry one).
  IF announce THEN
    PERFORM pg_notify('${NOTIFY_CHANNEL}', ${lit});
  END IF;
  IF cardinality(g_hash) = 0 THEN
    RETURN;
  END IF;

  -- The mutex (see postgres.ts): the xid and the positions are drawn together, and released
  -- right after the insert (a session lock, hence the handler). Rows go in in batch order.
  BEGIN
    PERFORM pg_advisory_lock(hashtext('rewind.append'), hashtext(${lit}));
    RETURN QUERY
      WITH inserted AS (
        INSERT INTO ${s}.events (id, stream_id, version, type, schema_version, data, metadata, recorded_at, digest, hash, tx_id)
        SELECT x.ev ->> 'id', g.sid, g.base + x.o::integer, x.ev ->> 'type', (x.ev ->> 'schemaVersion')::integer,
          (x.ev ->> 'data')::json, (x.ev ->> 'metadata')::json, x.ev ->> 'recordedAt', x.ev ->> 'digest',
          g_hash[g.first + x.o::integer - 1], pg_current_xact_id()
        FROM unnest(g_sid, g_base, g_evs, g_first) g(sid, base, evs, first)
        CROSS JOIN LATERAL jsonb_array_elements(g.evs) WITH ORDINALITY x(ev, o)
        ORDER BY g.first, x.o
        RETURNING id, version, position, recorded_at, hash
      )
      SELECT NULL::integer, NULL::integer, i.id::text, i.version, i.position, i.recorded_at, i.hash, NULL::text, NULL::text, NULL::text
      FROM inserted i;
    PERFORM pg_advisory_unlock(hashtext('rewind.append'), hashtext(${lit}));
  EXCEPTION WHEN OTHERS OR query_canceled THEN
    PERFORM pg_advisory_unlock(hashtext('rewind.append'), hashtext(${lit}));
    RAISE;
  END;

  IF cardinality(g_new) > 0 THEN
    INSERT INTO ${s}.streams (stream_id) SELECT unnest(g_new) ON CONFLICT DO NOTHING;
  END IF;
END
$fn$;
`;
}
