import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openStore } from '../store/open.js';
import { type find, measure, note, ratio, record, target } from './lib.js';
import type { EmmettSqlite } from './peers.js';
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
  sequential,
} from './workload.js';

const SECTION = 'sqlite';

/**
 * Issue 2's workloads on SQLite: Rewind against raw better-sqlite3 doing the
 * same transactional work (the physical limit) and Emmett's SQLite store.
 * All three run WAL with synchronous=FULL (Rewind's default durability): every
 * acknowledged append has been fsynced.
 */
export async function benchSqliteStore(scale: number): Promise<void> {
  const streams = Math.max(1, Math.round(100 * scale));
  const appends = streams * APPENDS_PER_STREAM;
  const dir = mkdtempSync(join(tmpdir(), 'rewind-bench-'));
  note(
    SECTION,
    `${streams} streams × ${APPENDS_PER_STREAM} appends × ${EVENTS_PER_APPEND} events of ${JSON.stringify(payload(1, 1)).length} bytes ` +
      `(--scale 10 for the issue's 1,000 streams); every store: WAL, synchronous=FULL (fsync per commit), files in ${tmpdir()}`,
  );
  try {
    const raw = rawSqlite(join(dir, 'raw.db'));
    const store = await openStore(`sqlite:${join(dir, 'rewind.db')}`);
    const emmettModule = await optional<EmmettSqlite>('@event-driven-io/emmett-sqlite');
    const emmett = emmettModule instanceof Error ? undefined : emmettModule;
    if (emmettModule instanceof Error) note(SECTION, `Emmett skipped: ${emmettModule.message}`);
    const emmettFile = join(dir, 'emmett.db');
    const es = emmett?.getSQLiteEventStore({ fileName: emmettFile });
    if (emmett && es) {
      // Schema created outside the clock; then check what durability its connections run with.
      await es.appendToStream('warmup-0', [{ type: 'ToolCalled', data: payload(0, 0) }]);
      const conn = emmett.sqliteConnection({ fileName: emmettFile });
      const sync = await conn.querySingle<{ synchronous: number }>('PRAGMA synchronous');
      const busy = await conn.querySingle<{ timeout: number }>('PRAGMA busy_timeout');
      conn.close();
      note(
        SECTION,
        `Emmett ${versionOf('@event-driven-io/emmett-sqlite')} via getSQLiteEventStore({ fileName }) (its documented default: a sqlite3 connection opened per call); ` +
          `its connections report synchronous=${sync?.synchronous} (2 = FULL), busy_timeout=${busy?.timeout} ms`,
      );
    }

    // (1) Sequential agent-style appends, each awaited.
    const RAW_SEQ = 'raw better-sqlite3: appends one by one';
    await measure(
      SECTION,
      RAW_SEQ,
      appends,
      () =>
        sequential(streams, async (s, a) => {
          raw.append(`agent-${s}`, a * EVENTS_PER_APPEND, batch(s, a));
        }),
      { unit: 'appends/s' },
    );
    const seq = await measure(
      SECTION,
      'rewind: appends one by one',
      appends,
      () =>
        sequential(streams, async (s, a) => {
          await store.append(`agent-${s}`, batch(s, a), { expectedVersion: a * EVENTS_PER_APPEND });
        }),
      { unit: 'appends/s', baseline: RAW_SEQ },
    );
    let emmettSeq: ReturnType<typeof find>;
    if (es) {
      const start = process.hrtime.bigint();
      // Width 1: the same sequential loop, but a failed append is counted (and ends its stream) instead of ending the bench.
      const result = await concurrent(streams, 1, async (s, a) => {
        await es.appendToStream(`agent-${s}`, batch(s, a), { expectedStreamVersion: BigInt(a * EVENTS_PER_APPEND) });
      });
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      emmettSeq = record({
        section: SECTION,
        name: 'emmett: appends one by one',
        ops: result.ok,
        seconds,
        unit: 'appends/s',
        baseline: RAW_SEQ,
      });
      if (result.failed > 0) {
        note(
          SECTION,
          `FINDING: Emmett, appends one by one (no concurrency at all): ${result.failed} of ${appends} appends failed or never ran: ${describeErrors(result.errors)}`,
        );
      }
    }
    const vsRaw = ratio(seq) as number;
    target({
      section: SECTION,
      what: 'sequential appends ≥ 80% of raw',
      met: vsRaw >= 0.8,
      got: `${vsRaw.toFixed(2)}× raw`,
    });
    if (emmettSeq) {
      const vsEmmett = ratio(seq, emmettSeq) as number;
      target({
        section: SECTION,
        what: 'sequential appends ≥ 10× Emmett',
        met: vsEmmett >= 10,
        got: `${vsEmmett.toFixed(2)}× Emmett`,
        why:
          vsEmmett >= 10
            ? undefined
            : 'one awaited append is one fsync for every store; Emmett is at ' +
              `${(ratio(emmettSeq) as number).toFixed(2)}× raw, so 10× Emmett would be above the physical limit`,
      });
    }

    // (2) The same appends, 64 in flight from one process (fresh streams).
    const conc = await (async () => {
      const start = process.hrtime.bigint();
      const result = await concurrent(streams, 64, async (s, a) => {
        await store.append(`agent64-${s}`, batch(s, a), { expectedVersion: a * EVENTS_PER_APPEND });
      });
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      if (result.failed > 0) note(SECTION, `rewind, 64 in flight: ${result.failed} appends failed: ${describeErrors(result.errors)}`);
      return record({
        section: SECTION,
        name: 'rewind: 64 appends in flight',
        ops: result.ok,
        seconds,
        unit: 'appends/s',
        baseline: RAW_SEQ,
      });
    })();
    const vsRawConc = ratio(conc) as number;
    target({
      section: SECTION,
      what: '64 in flight ≥ 3× the raw per-append rate',
      met: vsRawConc >= 3,
      got: `${vsRawConc.toFixed(2)}× raw one by one`,
      why: vsRawConc >= 3 ? 'group commit: the appends of one turn share a transaction and an fsync' : undefined,
    });
    if (es) {
      const start = process.hrtime.bigint();
      const result = await concurrent(streams, 64, async (s, a) => {
        await es.appendToStream(`agent64-${s}`, batch(s, a), { expectedStreamVersion: BigInt(a * EVENTS_PER_APPEND) });
      });
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      record({
        section: SECTION,
        name: 'emmett: 64 appends in flight (successful ones)',
        ops: result.ok,
        seconds,
        unit: 'appends/s',
        baseline: RAW_SEQ,
      });
      if (result.failed > 0) {
        note(
          SECTION,
          `FINDING: Emmett, 64 appends in flight: ${result.failed} of ${appends} appends failed or never ran (a failed append ends its stream): ` +
            describeErrors(result.errors),
        );
      } else note(SECTION, 'Emmett, 64 appends in flight: no append failed');
    }

    // (3) Reading every stream back.
    const RAW_READ = 'raw better-sqlite3: read every stream + JSON.parse';
    const events = appends * EVENTS_PER_APPEND;
    await measure(
      SECTION,
      RAW_READ,
      events,
      () => {
        for (let s = 0; s < streams; s++) raw.read(`agent-${s}`);
      },
      { unit: 'events/s' },
    );
    const read = await measure(
      SECTION,
      'rewind: read every stream',
      events,
      async () => {
        for (let s = 0; s < streams; s++) await store.read(`agent-${s}`);
      },
      { unit: 'events/s', baseline: RAW_READ },
    );
    if (es) {
      await measure(
        SECTION,
        'emmett: read every stream',
        events,
        async () => {
          for (let s = 0; s < streams; s++) await es.readStream(`agent-${s}`);
        },
        { unit: 'events/s', baseline: RAW_READ },
      );
    }
    const vsRawRead = ratio(read) as number;
    target({ section: SECTION, what: 'reads ≥ 80% of raw', met: vsRawRead >= 0.8, got: `${vsRawRead.toFixed(2)}× raw` });

    // (4) Folding one 100,000-event stream, with and without a snapshot.
    const foldId = 'fold-1';
    const chunk = 1000;
    const big = (i: number) => Array.from({ length: chunk }, (_, k) => ({ type: 'ToolCalled', data: payload(1, i * chunk + k) }));
    for (let i = 0; i < FOLD_EVENTS / chunk; i++) {
      raw.append(foldId, i * chunk, big(i));
      await store.append(foldId, big(i), { expectedVersion: i * chunk });
      await es?.appendToStream(foldId, big(i), { expectedStreamVersion: BigInt(i * chunk) });
    }
    const snapAt = FOLD_EVENTS - SNAPSHOT_LAG;
    const snapState = raw.fold(foldId, 0, snapAt, initialFold());
    raw.saveSnapshot(foldId, snapAt, snapState);
    await store.saveSnapshot(foldId, snapAt, snapState, 'bench-1');

    await foldFigures({
      section: SECTION,
      driver: 'raw better-sqlite3',
      foldId,
      store,
      rawFold: (from, state) => raw.fold(foldId, from, FOLD_EVENTS, state),
      rawSnapshot: () => raw.loadSnapshot(foldId),
      emmettFold: es
        ? () => es.aggregateStream(foldId, { evolve: (s: FoldState, e: { data: unknown }) => evolve(s, e.data), initialState: initialFold })
        : undefined,
    });
    if (es) note(SECTION, 'Emmett has no snapshots: its fold with a snapshot is not applicable');

    await store.close();
    raw.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The physical limit: the same rows (same table shapes, same 64-character hash
 * and digest columns, JSON text) and the same transaction per append as
 * Rewind's (BEGIN IMMEDIATE, read the stream's version from its newest event,
 * check it, insert the events, name a new stream, COMMIT), without hashing, validation or
 * canonical JSON. Same pragmas as Rewind's default: WAL, synchronous=FULL.
 */
function rawSqlite(path: string) {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(`
    CREATE TABLE events (position INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, stream_id TEXT NOT NULL,
      version INTEGER NOT NULL, type TEXT NOT NULL, schema_version INTEGER NOT NULL, data TEXT NOT NULL, metadata TEXT NOT NULL,
      recorded_at TEXT NOT NULL, hash TEXT NOT NULL, digest TEXT NOT NULL, UNIQUE (stream_id, version)) STRICT;
    CREATE TABLE streams (stream_id TEXT PRIMARY KEY) STRICT, WITHOUT ROWID;
    CREATE TABLE snapshots (stream_id TEXT NOT NULL, version INTEGER NOT NULL, state TEXT NOT NULL, PRIMARY KEY (stream_id, version)) STRICT, WITHOUT ROWID;`);
  const hash = 'f'.repeat(64);
  const getVersion = db.prepare<[string], number>('SELECT version FROM events WHERE stream_id = ? ORDER BY version DESC LIMIT 1').pluck();
  const insert = db.prepare(
    'INSERT INTO events (id, stream_id, version, type, schema_version, data, metadata, recorded_at, hash, digest) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?)',
  );
  const insertStream = db.prepare('INSERT INTO streams (stream_id) VALUES (?)');
  const select = db.prepare<[string], { data: string; metadata: string }>(
    'SELECT id, stream_id, version, position, type, schema_version, data, metadata, recorded_at, hash FROM events WHERE stream_id = ? ORDER BY version',
  );
  const selectData = db
    .prepare<[string, number, number], string>(
      'SELECT data FROM events WHERE stream_id = ? AND version > ? AND version <= ? ORDER BY version',
    )
    .pluck();
  const saveSnap = db.prepare('INSERT OR REPLACE INTO snapshots (stream_id, version, state) VALUES (?, ?, ?)');
  const loadSnap = db.prepare<[string], { version: number; state: string }>(
    'SELECT version, state FROM snapshots WHERE stream_id = ? ORDER BY version DESC LIMIT 1',
  );
  const append = db.transaction((streamId: string, expected: number, events: { type: string; data: unknown }[]) => {
    let version = getVersion.get(streamId) ?? 0;
    if (version !== expected) throw new Error(`expected ${expected}, at ${version}`);
    if (version === 0) insertStream.run(streamId);
    const now = new Date().toISOString();
    for (const e of events) insert.run(randomUUID(), streamId, ++version, e.type, JSON.stringify(e.data), '{}', now, hash, hash);
  });
  return {
    append: (streamId: string, expected: number, events: { type: string; data: unknown }[]) => append.immediate(streamId, expected, events),
    read: (streamId: string) =>
      select.all(streamId).map((row) => ({ ...row, data: JSON.parse(row.data), metadata: JSON.parse(row.metadata) })),
    fold: (streamId: string, after: number, to: number, state: FoldState) => {
      for (const data of selectData.all(streamId, after, to)) state = evolve(state, JSON.parse(data));
      return state;
    },
    saveSnapshot: (streamId: string, version: number, state: FoldState) => saveSnap.run(streamId, version, JSON.stringify(state)),
    loadSnapshot: (streamId: string) => {
      const row = loadSnap.get(streamId) as { version: number; state: string };
      return { version: row.version, state: JSON.parse(row.state) as FoldState };
    },
    close: () => db.close(),
  };
}
