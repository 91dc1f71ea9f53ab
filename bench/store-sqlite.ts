import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openStore } from '../src/store/open.js';
import { measure } from './lib.js';

const SECTION = 'sqlite append/read';

/**
 * Rewind's SQLite appends and reads against raw better-sqlite3 doing the same
 * physical work (same pragmas, same row shape, JSON text), which is the limit.
 */
export async function benchSqliteStore(scale: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rewind-bench-'));
  const n = 2_000 * scale;
  const payload = { tool: 'search', query: 'hotels in Lisbon', results: Array.from({ length: 5 }, (_, i) => ({ id: i, score: i / 10 })) };
  try {
    const raw = new Database(join(dir, 'raw.db'));
    raw.pragma('journal_mode = WAL');
    raw.pragma('synchronous = FULL');
    raw.exec(`CREATE TABLE events (position INTEGER PRIMARY KEY, id TEXT UNIQUE, stream_id TEXT, version INTEGER, type TEXT,
      schema_version INTEGER, data TEXT, metadata TEXT, recorded_at TEXT, hash TEXT, UNIQUE(stream_id, version))`);
    const insert = raw.prepare('INSERT INTO events (id, stream_id, version, type, schema_version, data, metadata, recorded_at, hash) VALUES (?,?,?,?,?,?,?,?,?)');
    const insertOne = raw.transaction((i: number, stream: string, version: number) =>
      insert.run(`raw-${stream}-${i}`, stream, version, 'ToolCalled', 1, JSON.stringify(payload), '{}', new Date().toISOString(), 'x'.repeat(64)),
    );

    await measure(SECTION, 'raw better-sqlite3: 1 insert per commit', n, () => {
      for (let i = 0; i < n; i++) insertOne(i, 'raw-a', i + 1);
    });
    const store = await openStore(`sqlite:${join(dir, 'rewind.db')}`);
    await measure(
      SECTION,
      'rewind append, awaited one by one',
      n,
      async () => {
        for (let i = 0; i < n; i++) await store.append('seq', [{ type: 'ToolCalled', data: payload }]);
      },
      { baseline: 'raw better-sqlite3: 1 insert per commit' },
    );

    const insertMany = raw.transaction((from: number, count: number) => {
      for (let i = from; i < from + count; i++) insert.run(`raw-b-${i}`, `raw-b-${i}`, 1, 'ToolCalled', 1, JSON.stringify(payload), '{}', new Date().toISOString(), 'x'.repeat(64));
    });
    await measure(SECTION, 'raw better-sqlite3: 100 inserts per commit', n, () => {
      for (let i = 0; i < n; i += 100) insertMany(i, 100);
    });
    await measure(
      SECTION,
      'rewind append, 100 concurrent callers',
      n,
      async () => {
        for (let i = 0; i < n; i += 100) {
          await Promise.all(Array.from({ length: 100 }, (_, j) => store.append(`conc-${i + j}`, [{ type: 'ToolCalled', data: payload }])));
        }
      },
      { baseline: 'raw better-sqlite3: 100 inserts per commit' },
    );

    const select = raw.prepare('SELECT * FROM events WHERE stream_id = ? ORDER BY version');
    await measure(SECTION, 'raw select + JSON.parse of a stream', n, () => {
      for (const row of select.all('raw-a') as { data: string; metadata: string }[]) {
        JSON.parse(row.data);
        JSON.parse(row.metadata);
      }
    }, { unit: 'events/s' });
    await measure(SECTION, 'rewind read of a stream', n, async () => {
      let from = 1;
      for (;;) {
        const page = await store.read('seq', { from, limit: 10_000 });
        if (page.length === 0) break;
        from = page[page.length - 1]!.version + 1;
      }
    }, { unit: 'events/s', baseline: 'raw select + JSON.parse of a stream' });
    await store.close();
    raw.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
