import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { ConcurrencyError, EventIdConflictError, StoreConfigError } from '../../src/events/errors.js';
import { Store } from '../../src/store/event-store.js';
import { prefixRange, SqliteBackend } from '../../src/store/sqlite.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const writer = fileURLToPath(new URL('../fixtures/sqlite-writer.ts', import.meta.url));

const open: Store[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-sqlite-'));
  dirs.push(dir);
  return dir;
}

function openStore(file: string): { store: Store; backend: SqliteBackend } {
  const backend = SqliteBackend.open(file);
  const store = new Store(backend);
  open.push(store);
  return { store, backend };
}

const tick = (n: number, id?: string) => ({ id, type: 'tick', data: { n } });

function expectDense(positions: number[]): void {
  expect([...positions].sort((a, b) => a - b)).toEqual(positions.map((_, i) => i + 1));
}

describe('SQLite group commit', () => {
  it('commits 200 concurrent appends to distinct streams together', async () => {
    const { store, backend } = openStore(join(tempDir(), 'log.db'));
    let wakeUps = 0;
    backend.onAppend(() => wakeUps++);

    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => store.append(`s-${i}`, [tick(i)], { expectedVersion: 'no_stream' })),
    );

    expectDense(results.map((r) => r.position));
    const all = await store.readAll({ limit: 1000 });
    expect(all.map((e) => e.position)).toEqual(results.map((r) => r.position).sort((a, b) => a - b));
    await Promise.resolve();
    expect(wakeUps).toBe(1); // one flush, one transaction
    expect((await store.verify()).ok).toBe(true);
  });

  it('lets exactly one racer win a stream and isolates every refusal in the group', async () => {
    const { store } = openStore(join(tempDir(), 'log.db'));
    await store.append('race', [tick(0)]);
    await store.append('taken', [tick(0, 'taken-1')]);

    const racers = Array.from({ length: 50 }, (_, i) => store.append('race', [tick(i)], { expectedVersion: 1 }));
    const bystanders = Array.from({ length: 50 }, (_, i) => store.append(`other-${i}`, [tick(i)], { expectedVersion: 'no_stream' }));
    const conflict = store.append('taken', [tick(99, 'taken-1')]); // same id, other content
    const halfBad = store.appendMany([
      { streamId: 'half-ok', events: [tick(1)] },
      { streamId: 'race', events: [tick(2)], expectedVersion: 0 },
    ]);
    const [raced, others, conflicted, half] = await Promise.all([
      Promise.allSettled(racers),
      Promise.allSettled(bystanders),
      conflict.then(
        () => undefined,
        (e: unknown) => e,
      ),
      halfBad.then(
        () => undefined,
        (e: unknown) => e,
      ),
    ]);

    expect(raced.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const losers = raced.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
    expect(losers).toHaveLength(49);
    for (const error of losers) {
      expect(error).toBeInstanceOf(ConcurrencyError);
      expect((error as ConcurrencyError).actual).toBe(2);
    }
    expect(others.every((r) => r.status === 'fulfilled')).toBe(true);
    expect(conflicted).toBeInstanceOf(EventIdConflictError);
    expect(half).toBeInstanceOf(ConcurrencyError);
    expect(await store.streamVersion('half-ok')).toBe(0); // all or nothing within one call

    // Refused calls were rolled back to their savepoints without leaving holes.
    const all = await store.readAll({ limit: 1000 });
    expect(all).toHaveLength(2 + 1 + 50);
    expectDense(all.map((e) => e.position));
    expect(await store.headPosition()).toBe(53);
    expect((await store.verify()).ok).toBe(true);
  });

  it('treats a retry in the same group as idempotent', async () => {
    const { store } = openStore(join(tempDir(), 'log.db'));
    const [a, b] = await Promise.all([store.append('s', [tick(1, 'e-1')]), store.append('s', [tick(1, 'e-1')])]);
    expect(b).toEqual(a);
    expect(await store.streamVersion('s')).toBe(1);
  });

  it('commits appends still queued when closed', async () => {
    const file = join(tempDir(), 'log.db');
    const backend = SqliteBackend.open(file);
    const store = new Store(backend);
    const pending = store.append('s', [tick(1)]);
    await backend.close();
    await expect(pending).resolves.toMatchObject({ version: 1, position: 1 });
    await store.close();
    await store.close();
    const { store: again } = openStore(file);
    expect(await again.streamVersion('s')).toBe(1);
  });
});

describe('SQLite storage', () => {
  it('keeps everything across close and reopen', async () => {
    const file = join(tempDir(), 'nested', 'dir', 'log.db');
    const first = openStore(file).store;
    await first.append('a', [tick(1), tick(2)]);
    await first.appendMany([
      { streamId: 'b', events: [tick(3)] },
      { streamId: 'a', events: [tick(4)], expectedVersion: 2 },
    ]);
    await first.checkpoint('projector', 3);
    await first.saveSnapshot('a', 2, { total: 3 }, 'r1');
    const before = await first.readAll();
    await first.close();

    const { store } = openStore(file);
    expect(await store.readAll()).toEqual(before);
    expect(await store.read('a', { direction: 'backward', limit: 2 })).toEqual([before[3], before[1]]);
    expect(await store.listStreams()).toEqual([
      { streamId: 'a', version: 3, head: before[3]?.hash, position: 4 },
      { streamId: 'b', version: 1, head: before[2]?.hash, position: 3 },
    ]);
    expect(await store.checkpointOf('projector')).toBe(3);
    expect(await store.loadSnapshot('a', 'r1')).toMatchObject({ version: 2, state: { total: 3 } });
    expect(await store.loadSnapshot('a', 'r2')).toBeUndefined();
    expect(await store.verify()).toMatchObject({ ok: true, streams: 2, events: 4 });
    const db = new Database(file, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(2);
    db.close();
  });

  it('opens files of schema 1 (stream heads copied into the streams table), drops the copy and continues every chain', async () => {
    const file = join(tempDir(), 'v1.db');
    const { store } = openStore(file);
    await store.append('a', [tick(1), tick(2)]);
    await store.append('b', [tick(3)]);
    await store.close();
    // Back to the shape schema 1 gave the file: each stream's version, head and position in its row.
    const v1 = new Database(file);
    v1.exec(`ALTER TABLE streams ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE streams ADD COLUMN head TEXT NOT NULL DEFAULT '';
      ALTER TABLE streams ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
      UPDATE streams SET (version, head, position) =
        (SELECT version, hash, position FROM events e WHERE e.stream_id = streams.stream_id ORDER BY version DESC LIMIT 1);`);
    v1.pragma('user_version = 1');
    v1.close();

    const { store: again } = openStore(file);
    await again.append('a', [tick(4)], { expectedVersion: 2 });
    await again.append('c', [tick(5)], { expectedVersion: 'no_stream' });
    expect(await again.streamVersion('a')).toBe(3);
    expect((await again.listStreams()).map((s) => [s.streamId, s.version, s.position])).toEqual([
      ['a', 3, 4],
      ['b', 1, 3],
      ['c', 1, 5],
    ]);
    expect((await again.verify()).ok).toBe(true);
    const db = new Database(file, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(2);
    expect(db.prepare("SELECT name FROM pragma_table_info('streams')").pluck().all()).toEqual(['stream_id']);
    db.close();
  });

  it('keeps using files whose events table says AUTOINCREMENT, as earlier builds made them', async () => {
    const file = join(tempDir(), 'old.db');
    const old = new Database(file);
    old.exec(`CREATE TABLE events (position INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
      stream_id TEXT NOT NULL, version INTEGER NOT NULL, type TEXT NOT NULL, schema_version INTEGER NOT NULL,
      data TEXT NOT NULL, metadata TEXT NOT NULL, recorded_at TEXT NOT NULL, hash TEXT NOT NULL, digest TEXT NOT NULL,
      UNIQUE (stream_id, version)) STRICT`);
    old.pragma(`application_id = ${0x52574e44}`);
    old.close();
    const { store } = openStore(file);
    await store.append('a', [tick(1), tick(2)]);
    await store.append('b', [tick(3)]);
    expect((await store.readAll()).map((e) => e.position)).toEqual([1, 2, 3]);
    expect((await store.verify()).ok).toBe(true);
    const db = new Database(file, { readonly: true });
    expect(db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'events'").pluck().get()).toBe(3);
    db.close();
    // A new file has no sqlite_sequence: no commit writes it.
    const { store: fresh } = openStore(join(tempDir(), 'new.db'));
    await fresh.append('a', [tick(1)]);
    const other = new Database(join(dirs.at(-1) as string, 'new.db'), { readonly: true });
    expect(other.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_sequence'").pluck().get()).toBe(0);
    other.close();
  });

  it('works in memory', async () => {
    const { store, backend } = openStore(':memory:');
    await store.append('s', [tick(1)]);
    expect(await store.readAll()).toHaveLength(1);
    expect(backend.pollIntervalMs).toBe(Number.POSITIVE_INFINITY);
  });

  it('filters by stream prefix literally and case-sensitively', async () => {
    const { store } = openStore(':memory:');
    for (const id of ['a%b', 'aXb', 'a_b', 'A%b', 'a%', 'a', 'é1', 'é😀', 'éé', 'f']) await store.append(id, [tick(0)]);
    const streamsOf = async (streamPrefix: string) => (await store.readAll({ filter: { streamPrefix } })).map((e) => e.streamId);
    expect(await streamsOf('a%')).toEqual(['a%b', 'a%']);
    expect(await streamsOf('a_')).toEqual(['a_b']);
    expect(await streamsOf('é')).toEqual(['é1', 'é😀', 'éé']);
    expect(await streamsOf('')).toHaveLength(10);
    expect((await store.listStreams({ prefix: 'a' })).map((s) => s.streamId)).toEqual(['a', 'a%', 'a%b', 'aXb', 'a_b']);
    expect(await store.readAll({ filter: { streamPrefix: 'a', types: [] } })).toEqual([]);
    expect(prefixRange('a\u{10FFFF}')).toEqual(['a\u{10FFFF}', 'b']);
    expect(prefixRange('\u{D7FF}')).toEqual(['\u{D7FF}', '\u{E000}']);
  });
});

describe('SQLite read-only', () => {
  const reader = (file: string) => {
    const store = new Store(SqliteBackend.open(file, { readOnly: true }));
    open.push(store);
    return store;
  };

  it('leaves the directory as it found it: the -wal and -shm it needed are gone once it closes', async () => {
    const dir = tempDir();
    const file = join(dir, 'log.db');
    const { store } = openStore(file);
    await store.append('s', [{ type: 'A', data: {} }]);
    await store.close();
    expect(readdirSync(dir)).toEqual(['log.db']);

    const read = reader(file);
    expect((await read.read('s')).map((e) => e.type)).toEqual(['A']);
    expect(readdirSync(dir).sort()).toEqual(['log.db', 'log.db-shm', 'log.db-wal']);
    await read.close();
    expect(readdirSync(dir)).toEqual(['log.db']);
  });

  it('leaves the -wal and -shm of a writer that has the file open, and every commit in them', async () => {
    const dir = tempDir();
    const file = join(dir, 'log.db');
    const { store: writing } = openStore(file);
    await writing.append('s', [{ type: 'A', data: {} }]);
    const read = reader(file);
    expect((await read.read('s')).length).toBe(1);
    await read.close();
    // The writer's files stay, and so does what it goes on writing through them.
    expect(readdirSync(dir).sort()).toEqual(['log.db', 'log.db-shm', 'log.db-wal']);
    await writing.append('s', [{ type: 'B', data: {} }]);
    await writing.close();
    const again = reader(file);
    expect((await again.read('s')).map((e) => e.type)).toEqual(['A', 'B']);
  });
});

describe('SQLite across processes', () => {
  it('lets two processes append to one file at once', async () => {
    const file = join(tempDir(), 'shared.db');
    // Both open the file, then start on one signal. How their commits interleave is up to SQLite's
    // busy handler, which promises no fairness, so only the outcome is checked.
    const writers = [startWriter(file, 'p1', 300, 8, true), startWriter(file, 'p2', 300, 8, true)];
    await Promise.all(writers.map((w) => w.ready));
    for (const w of writers) w.child.stdin?.end('go\n');
    const [a, b] = (await Promise.all(writers.map((w) => w.done))) as [WriterRun, WriterRun];
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const { store } = openStore(file);
    const all = await store.readAll({ limit: 10_000 });
    expect(all).toHaveLength(600);
    expectDense(all.map((e) => e.position));
    expect(new Set([...a.acked, ...b.acked].map(([position]) => position)).size).toBe(600);
    expect(await store.streamVersion('shared')).toBe(120);
    expect(await store.verify()).toMatchObject({ ok: true, events: 600 });
  });

  it('lets several processes create a new file at once, none mistaking the schema another is making for a stranger file', async () => {
    const file = join(tempDir(), 'new.db');
    const writers = Array.from({ length: 6 }, (_, i) => startWriter(file, `w${i}`, 5, 1));
    const runs = (await Promise.all(writers.map((w) => w.done))) as WriterRun[];
    for (const run of runs) expect(run.code, run.stderr).toBe(0);
    const { store } = openStore(file);
    expect(await store.readAll({ limit: 100 })).toHaveLength(30);
  });

  it('keeps every acknowledged append when the writer is killed', async () => {
    const file = join(tempDir(), 'crash.db');
    const { child, acked, done } = startWriter(file, 'victim', 0, 4);
    // Listeners run in order: this one sees each chunk after startWriter has parsed it.
    child.stdout?.on('data', () => {
      if (acked.length >= 300) child.kill('SIGKILL');
    });
    const { signal } = await done;
    expect(signal).toBe('SIGKILL');
    expect(acked.length).toBeGreaterThanOrEqual(300);

    const { store } = openStore(file);
    const byPosition = new Map((await store.readAll({ limit: 100_000 })).map((e) => [e.position, e.id]));
    for (const [position, id] of acked) expect(byPosition.get(position)).toBe(id);
    expectDense([...byPosition.keys()]);
    expect((await store.verify()).ok).toBe(true);
  });
});

describe('SQLite open errors', () => {
  it('refuses a directory', () => {
    const dir = tempDir();
    expect(() => SqliteBackend.open(dir)).toThrow(StoreConfigError);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses a file that is not SQLite and leaves it alone', () => {
    const dir = tempDir();
    const file = join(dir, 'notes.txt');
    const text = 'these are notes, not a database\n'.repeat(20);
    writeFileSync(file, text);
    expect(() => SqliteBackend.open(file)).toThrow(/not a SQLite database/);
    expect(() => SqliteBackend.open(file)).toThrow(StoreConfigError);
    expect(readdirSync(dir)).toEqual(['notes.txt']);
    expect(readFileSync(file, 'utf8')).toBe(text);
  });

  it("refuses another application's database and a newer Rewind schema", async () => {
    const foreign = join(tempDir(), 'app.db');
    let db = new Database(foreign);
    db.exec('CREATE TABLE users (name TEXT)');
    db.close();
    expect(() => SqliteBackend.open(foreign)).toThrow(/another application/);
    db = new Database(foreign);
    expect(db.pragma('journal_mode', { simple: true })).toBe('delete');
    db.close();

    const future = join(tempDir(), 'future.db');
    await openStore(future).store.close();
    db = new Database(future);
    db.pragma('user_version = 99');
    db.close();
    expect(() => SqliteBackend.open(future)).toThrow(/schema version 99/);
  });

  it('refuses a path under a regular file', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'file'), 'x');
    expect(() => SqliteBackend.open(join(dir, 'file', 'log.db'))).toThrow(StoreConfigError);
    expect(readdirSync(dir)).toEqual(['file']);
  });
});

interface WriterRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  /** [position, event id] of every acknowledged append. */
  acked: [number, string][];
}

function startWriter(
  file: string,
  name: string,
  appends: number,
  writers: number,
  wait = false,
): { child: ChildProcess; ready: Promise<void>; acked: [number, string][]; done: Promise<WriterRun> } {
  const args = ['--import', 'tsx', writer, file, name, String(appends), String(writers), ...(wait ? ['wait'] : [])];
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
  const acked: [number, string][] = [];
  let signalReady!: () => void;
  const ready = new Promise<void>((resolve) => {
    signalReady = resolve;
  });
  let pending = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (line === 'ready') signalReady();
      else acked.push([Number(line.split(' ')[0]), line.split(' ')[1] as string]);
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const done = new Promise<WriterRun>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      signalReady(); // a writer that died early must not leave the test waiting
      resolve({ code, signal, stderr, acked });
    });
  });
  return { child, ready, acked, done };
}
