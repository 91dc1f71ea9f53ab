import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { openStore } from '../store/open.js';
import type { EventStore } from '../store/types.js';
import { type Figure, find, fmt, measure, measureInTurns, note, rateOf, ratio, target } from './lib.js';
import type { EmmettPostgres } from './peers.js';
import { versionOf } from './versions.js';
import {
  APPENDS_PER_STREAM,
  batch,
  concurrent,
  describeErrors,
  EVENTS_PER_APPEND,
  evolve,
  FOLD_EVENTS,
  type FoldState,
  foldFigures,
  initialFold,
  optional,
  payload,
  SNAPSHOT_LAG,
} from './workload.js';

const SECTION = 'postgres';
const WRITERS = 8;
/** Rounds of the append workloads, after a warm-up one. */
const ROUNDS = 5;
type Event = { type: string; data: unknown };

/**
 * Issue 2's workloads on PostgreSQL: Rewind against raw `pg` doing the same
 * transactional work in one round trip, and Emmett's PostgreSQL store (in a
 * database of its own). The server commits synchronously (fsync on,
 * synchronous_commit on): the embedded one the bench starts is configured so.
 */
export async function benchPostgresStore(url: string, scale: number): Promise<void> {
  const streams = Math.max(WRITERS, Math.round(50 * scale));
  const appends = streams * APPENDS_PER_STREAM;
  const schema = `bench_${Date.now().toString(36)}`;
  const admin = new pg.Pool({ connectionString: url, max: WRITERS + 2 });
  const settings = await admin.query<{ name: string; setting: string }>(
    "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'server_version')",
  );
  note(
    SECTION,
    `${streams} streams × ${APPENDS_PER_STREAM} appends × ${EVENTS_PER_APPEND} events (--scale 20 for 1,000 streams); server ` +
      settings.rows.map((r) => `${r.name}=${r.setting}`).join(', '),
  );
  await admin.query(`CREATE SCHEMA ${schema}`);
  const raw = await rawPostgres(admin, schema);
  const store = await openStore(url, { schema, poolSize: WRITERS });
  const emmettModule = await optional<EmmettPostgres>('@event-driven-io/emmett-postgresql');
  if (emmettModule instanceof Error) note(SECTION, `Emmett skipped: ${emmettModule.message}`);
  const emmettDb = `emmett_${schema}`;
  let es: ReturnType<EmmettPostgres['getPostgreSQLEventStore']> | undefined;
  if (!(emmettModule instanceof Error)) {
    await admin.query(`CREATE DATABASE ${emmettDb}`);
    const emmettUrl = new URL(url);
    emmettUrl.pathname = `/${emmettDb}`;
    es = emmettModule.getPostgreSQLEventStore(emmettUrl.toString());
    await es.appendToStream('warmup-0', [{ type: 'ToolCalled', data: payload(0, 0) }]);
    note(
      SECTION,
      `Emmett ${versionOf('@event-driven-io/emmett-postgresql')} via getPostgreSQLEventStore(url) (its default pooled connections)`,
    );
  }
  try {
    // (1) Sequential appends, each awaited, and (2) WRITERS concurrent writers, each on its own streams:
    // the stores take turns, ROUNDS rounds after a warm-up one, each round on fresh streams; medians.
    type Append = (streamId: string, expected: number, events: ReturnType<typeof batch>) => Promise<unknown>;
    const appenders: [string, Append][] = [
      ['raw pg', (id, v, events) => raw.append(id, v, events)],
      ['rewind', (id, v, events) => store.append(id, events, { expectedVersion: v })],
    ];
    if (es) {
      const e = es;
      appenders.push(['emmett', (id, v, events) => e.appendToStream(id, events, { expectedStreamVersion: BigInt(v) })]);
    }
    const seqStreams = Math.max(1, Math.round(streams / 2));
    const failures = new Map<string, number>();
    const widths = [1, WRITERS] as const;
    for (const width of widths) {
      const what = width === 1 ? 'appends one by one' : `${WRITERS} concurrent writers`;
      const count = width === 1 ? seqStreams : streams;
      await measureInTurns(
        SECTION,
        'appends/s',
        ROUNDS,
        appenders.map(([name, append]) => ({
          name: `${name}: ${what}`,
          ops: count * APPENDS_PER_STREAM,
          baseline: name === 'raw pg' ? undefined : `raw pg: ${what}`,
          run: async (round) => {
            const result = await concurrent(count, width, async (s, a) => {
              await append(`${width === 1 ? 'agent' : 'w'}${round}-${s}`, a * EVENTS_PER_APPEND, batch(s, a));
            });
            if (result.failed > 0) failures.set(`${name}: ${what}: ${describeErrors(result.errors)}`, result.failed);
          },
        })),
      );
      const ours = find(SECTION, `rewind: ${what}`) as Figure;
      const theirs = find(SECTION, `emmett: ${what}`);
      if (!theirs) continue;
      const r = ratio(ours, theirs) as number;
      const rawRate = rateOf(find(SECTION, `raw pg: ${what}`) as Figure);
      const limit =
        2 * rateOf(theirs) > rawRate
          ? `2× Emmett would be ${fmt(2 * rateOf(theirs))}/s, above raw pg's ${fmt(rawRate)}/s doing the same insert with no checks; `
          : '';
      const why =
        limit +
        (width === 1
          ? `an append awaited alone is one commit whatever the store: its WAL flush and the server's work on its ${EVENTS_PER_APPEND} rows ` +
            `bound it (rewind at ${(ratio(ours) as number).toFixed(2)}× raw pg); ` +
            'Emmett takes three round trips (BEGIN, its function, COMMIT) where Rewind takes one'
          : `rewind is at ${(ratio(ours) as number).toFixed(2)}× raw pg, Emmett at ${(ratio(theirs) as number).toFixed(2)}× raw; the ${WRITERS} writers' ` +
            'appends share one commit (group commit), so what is left is the server inserting the rows (four indexes, a hash chain) ' +
            'and this process preparing them, one group after the other');
      target({ section: SECTION, what: `${what} ≥ 2× Emmett`, met: r >= 2, got: `${r.toFixed(2)}× Emmett`, why: r >= 2 ? undefined : why });
    }
    for (const [what, failed] of failures) note(SECTION, `FINDING: ${what}: ${failed} appends failed or never ran`);

    // (3) Reading every stream back.
    const RAW_READ = 'raw pg: read every stream (pg parses JSON)';
    const events = appends * EVENTS_PER_APPEND;
    const readAll = async (read: (id: string) => Promise<unknown>) => {
      for (let s = 0; s < streams; s++) await read(`w0-${s}`);
    };
    await readAll(raw.read);
    await measure(SECTION, RAW_READ, events, () => readAll(raw.read), { unit: 'events/s' });
    await readAll((id) => store.read(id));
    await measure(SECTION, 'rewind: read every stream', events, () => readAll((id) => store.read(id)), {
      unit: 'events/s',
      baseline: RAW_READ,
    });
    if (es) {
      const e = es;
      await readAll((id) => e.readStream(id));
      await measure(SECTION, 'emmett: read every stream', events, () => readAll((id) => e.readStream(id)), {
        unit: 'events/s',
        baseline: RAW_READ,
      });
    }

    // (4) Folding one 100,000-event stream.
    await foldSection(raw, store, es);
  } finally {
    await store.close();
    await es?.close().catch(() => {});
    await admin.query(`DROP SCHEMA ${schema} CASCADE`).catch(() => {});
    if (es) await admin.query(`DROP DATABASE IF EXISTS ${emmettDb} WITH (FORCE)`).catch(() => {});
    await admin.end();
  }
}

async function foldSection(
  raw: Awaited<ReturnType<typeof rawPostgres>>,
  store: EventStore,
  es: ReturnType<EmmettPostgres['getPostgreSQLEventStore']> | undefined,
): Promise<void> {
  const foldId = 'fold-1';
  const chunk = 1000;
  const big = (i: number) => Array.from({ length: chunk }, (_, k) => ({ type: 'ToolCalled', data: payload(1, i * chunk + k) }));
  for (let i = 0; i < FOLD_EVENTS / chunk; i++) {
    await Promise.all([
      raw.append(foldId, i * chunk, big(i)),
      store.append(foldId, big(i), { expectedVersion: i * chunk }),
      es?.appendToStream(foldId, big(i), { expectedStreamVersion: BigInt(i * chunk) }),
    ]);
  }
  const snapAt = FOLD_EVENTS - SNAPSHOT_LAG;
  const snapState = await raw.fold(foldId, 0, snapAt, initialFold());
  await raw.saveSnapshot(foldId, snapAt, snapState);
  await store.saveSnapshot(foldId, snapAt, snapState, 'bench-1');
  await foldFigures({
    section: SECTION,
    driver: 'raw pg',
    foldId,
    store,
    rawFold: (from, state) => raw.fold(foldId, from, FOLD_EVENTS, state),
    rawSnapshot: () => raw.loadSnapshot(foldId),
    emmettFold: es
      ? () => es.aggregateStream(foldId, { evolve: (s: FoldState, e: { data: unknown }) => evolve(s, e.data), initialState: initialFold })
      : undefined,
  });
}

/**
 * The physical limit: one statement per append (one round trip, one implicit
 * transaction): move the stream row to its new version if it is at the
 * expected one, and insert the events only if it did. Same row shape as
 * Rewind's (json data, 64-character hash and digest), without hashing, the
 * global-order mutex or idempotency checks.
 */
async function rawPostgres(db: pg.Pool, schema: string) {
  await db.query(`
    CREATE TABLE ${schema}.raw_events (position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id text COLLATE "C" NOT NULL UNIQUE,
      stream_id text COLLATE "C" NOT NULL, version integer NOT NULL, type text NOT NULL, schema_version integer NOT NULL,
      data json NOT NULL, metadata json NOT NULL, recorded_at text NOT NULL, digest text NOT NULL, hash text NOT NULL,
      UNIQUE (stream_id, version));
    CREATE TABLE ${schema}.raw_snapshots (stream_id text PRIMARY KEY, version integer NOT NULL, state text NOT NULL);`);
  const hash = 'f'.repeat(64);
  // The expected version holds when that version exists and the next does not: the
  // (stream_id, version) key refuses the second, as Rewind's head comes from its newest event.
  const appendSql = `
    INSERT INTO ${schema}.raw_events (id, stream_id, version, type, schema_version, data, metadata, recorded_at, digest, hash)
    SELECT e.id, $1, $2::int + e.o::int, e.type, 1, e.data, '{}', $6, $7, $7
    FROM unnest($3::text[], $4::text[], $5::json[]) WITH ORDINALITY AS e(id, type, data, o)
    WHERE $2::int = 0 OR EXISTS (SELECT 1 FROM ${schema}.raw_events WHERE stream_id = $1 AND version = $2::int)`;
  return {
    append: async (streamId: string, expected: number, events: Event[]) => {
      const r = await db.query(appendSql, [
        streamId,
        expected,
        events.map(() => randomUUID()),
        events.map((e) => e.type),
        events.map((e) => JSON.stringify(e.data)),
        new Date().toISOString(),
        hash,
      ]);
      if (r.rowCount !== events.length) throw new Error(`stream ${streamId} is not at version ${expected}`);
    },
    read: async (streamId: string) =>
      (
        await db.query(
          `SELECT id, stream_id, version, position, type, schema_version, data, metadata, recorded_at, hash FROM ${schema}.raw_events
           WHERE stream_id = $1 ORDER BY version`,
          [streamId],
        )
      ).rows,
    fold: async (streamId: string, after: number, to: number, state: FoldState) => {
      const { rows } = await db.query<{ data: unknown }>(
        `SELECT data FROM ${schema}.raw_events WHERE stream_id = $1 AND version > $2 AND version <= $3 ORDER BY version`,
        [streamId, after, to],
      );
      for (const row of rows) state = evolve(state, row.data);
      return state;
    },
    saveSnapshot: async (streamId: string, version: number, state: FoldState) => {
      await db.query(`INSERT INTO ${schema}.raw_snapshots VALUES ($1, $2, $3)`, [streamId, version, JSON.stringify(state)]);
    },
    loadSnapshot: async (streamId: string) => {
      const { rows } = await db.query<{ version: number; state: string }>(
        `SELECT version, state FROM ${schema}.raw_snapshots WHERE stream_id = $1 ORDER BY version DESC LIMIT 1`,
        [streamId],
      );
      const row = rows[0] as { version: number; state: string };
      return { version: row.version, state: JSON.parse(row.state) as FoldState };
    },
  };
}
